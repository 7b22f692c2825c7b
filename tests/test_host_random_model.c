/* host/random_model.c: the random models `drdiff bench` writes load and validate (loader and
 * tokenizer), have the hyperparameters, tensor types and parameter counts of
 * models/drdiff/random_model.py's configurations, are reproducible from the seed, and have
 * Python's initialisation scales (so activations stay well-behaved). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drdiff.h"
#include "dtype.h"
#include "model_file.h"
#include "random_model.h"
#include "tokenizer.h"
#include "util_expect.h"

/* Sum over ModelConfig.tensor_shapes() of the element counts, from Python:
 *   PYTHONPATH=models python3 -c "import numpy as np; from drdiff.random_model import CONFIGS;
 *     print({k: sum(int(np.prod(s)) for s in c.tensor_shapes().values()) for k, c in CONFIGS.items()})"
 * (tiny 30 tensors, base-220m 130). */
#define PY_PARAMS_TINY 194256ull
#define PY_PARAMS_BASE_220M 735703168ull

static char *temp_path(void) {
  const char *dir = getenv("TMPDIR");
  char *p = malloc(4096);
  snprintf(p, 4096, "%s/drdiff-test-random-XXXXXX", dir && *dir ? dir : "/tmp");
  int fd = mkstemp(p);
  if (fd < 0) {
    free(p);
    return NULL;
  }
  close(fd);
  return p;
}

static unsigned char *read_all(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
  *n = b ? fread(b, 1, (size_t)len, f) : 0;
  fclose(f);
  return b;
}

/* Mean and standard deviation of a tensor's values. */
static void moments(const drd_tensor_view *t, double *mean, double *sd) {
  float *x = malloc(t->n_elements * sizeof *x);
  drd_tensor_to_f32(t, 0, t->n_elements, x);
  double s = 0, s2 = 0;
  for (uint64_t i = 0; i < t->n_elements; i++) s += x[i], s2 += (double)x[i] * x[i];
  *mean = s / t->n_elements;
  *sd = sqrt(s2 / t->n_elements - *mean * *mean);
  free(x);
}

static void check_scales(const drd_model_file *m) {
  double mean, sd;
  const drd_hparams *hp = &m->hp;
  moments(&m->t.token_embd, &mean, &sd);
  EXPECT(fabs(mean) < 0.05 && fabs(sd - 1) < 0.05, "token_embd: mean %g sd %g, want N(0, 1)", mean, sd);
  moments(&m->t.layers[0].attn_q, &mean, &sd);
  const double want = 1 / sqrt((double)hp->d);
  EXPECT(fabs(mean) < 0.1 * want && fabs(sd / want - 1) < 0.05, "attn_q: mean %g sd %g, want sd %g", mean, sd, want);
  moments(&m->t.layers[1].ffn_down_exps, &mean, &sd);
  EXPECT(fabs(sd * sqrt((double)hp->dff) - 1) < 0.05, "ffn_down_exps: sd %g, want 1/sqrt(dff)", sd);
  moments(&m->t.layers[0].attn_norm, &mean, &sd);
  EXPECT(fabs(mean - 1) < 0.05 && fabs(sd - 0.1) < 0.04, "attn_norm: mean %g sd %g, want 1 + N(0, 0.01)", mean, sd);
  moments(&m->t.time_mlp0_b, &mean, &sd);
  EXPECT(fabs(mean) < 0.05 && fabs(sd - 0.1) < 0.04, "time_mlp.0.bias: mean %g sd %g, want N(0, 0.01)", mean, sd);
}

static void check_tiny(const char *path, drd_dtype type) {
  drd_hparams want;
  drd_random_model_config("tiny", &want);
  EXPECT(drd_random_model_write(&want, 7, type, path) == DRD_OK, "write tiny %s: %s", drd_dtype_name(type),
         drd_last_error());
  drd_model_file *m = NULL;
  drd_status st = drd_model_file_open(path, &m);
  EXPECT(st == DRD_OK, "tiny %s does not load: %s", drd_dtype_name(type), drd_last_error());
  if (st != DRD_OK) return;
  const drd_hparams *hp = &m->hp;
  EXPECT(hp->V == 300 && hp->de == 16 && hp->d == 64 && hp->L == 2 && hp->H == 4 && hp->dt == 32 && hp->E == 4 &&
             hp->dff == 96 && hp->kmax == 2 && hp->context_length == 512 && hp->steps == 8,
         "tiny sizes differ from the config");
  EXPECT(hp->route_p == 0.7f && hp->sas_gamma == 0.5f && hp->sas_start == 0.5f && hp->sas_temperature == 0.1f &&
             hp->time_scale == 2000.0f && hp->schedule == DRD_SCHEDULE_SQRT,
         "tiny float keys differ from the config");
  EXPECT(hp->B == 8 && hp->N1 == 32 && hp->N2 == 64 && hp->N3 == 128 && hp->window[2] == 2 && hp->dilation[1] == 3 &&
             hp->hops[0] == 1 && hp->global[2] == 2,
         "tiny HSA keys differ from the config");
  /* storage types as random_model.py's storage_type: Q8_0 rows of 16 (in_proj) fall back to f16 */
  EXPECT(m->t.layers[0].attn_q.type == type, "attn_q stored as %s", drd_dtype_name(m->t.layers[0].attn_q.type));
  EXPECT(m->t.in_proj_w.type == (type == DRD_DTYPE_Q8_0 ? DRD_DTYPE_F16 : type), "in_proj stored as %s",
         drd_dtype_name(m->t.in_proj_w.type));
  EXPECT(m->t.layers[1].ffn_norm.type == DRD_DTYPE_F32 && m->t.out_proj_b.type == DRD_DTYPE_F32,
         "norms and biases must be f32");
  EXPECT(m->vocab.bos_id == 297 && m->vocab.eos_id == 298 && m->vocab.pad_id == 299 && m->vocab.n_merges == 41,
         "vocabulary layout: bos %d eos %d pad %d, %u merges", m->vocab.bos_id, m->vocab.eos_id, m->vocab.pad_id,
         m->vocab.n_merges);
  if (type != DRD_DTYPE_Q8_0) check_scales(m);

  /* the tokenizer accepts the vocabulary and text round-trips through it */
  drd_tokenizer *tok = NULL;
  st = drd_tokenizer_create(&m->vocab, &tok);
  EXPECT(st == DRD_OK, "tokenizer refuses the vocabulary: %s", drd_last_error());
  if (st == DRD_OK) {
    const char *text = "hello world, 42 times";
    int32_t *ids = NULL;
    size_t n = 0, len = 0;
    char *back = NULL;
    EXPECT(drd_tokenizer_encode(tok, text, strlen(text), &ids, &n) == DRD_OK, "encode: %s", drd_last_error());
    EXPECT(n > 0 && n < strlen(text), "'%s' took %zu tokens: no merge fired", text, n);
    EXPECT(drd_tokenizer_decode(tok, ids, n, &back, &len) == DRD_OK && back && !strcmp(back, text),
           "decode gives '%s'", back ? back : "(null)");
    free(ids);
    free(back);
  }
  drd_tokenizer_destroy(tok);
  drd_model_file_close(m);

  /* and the public loader takes it */
  drd_model *pm = NULL;
  EXPECT(drd_model_create(&(drd_model_desc){.path = path}, &pm) == DRD_OK, "drd_model_create: %s", drd_last_error());
  drd_model_destroy(pm);
}

static void check_reproducible(const char *a, const char *b) {
  drd_hparams hp;
  drd_random_model_config("tiny", &hp);
  size_t na = 0, nb = 0;
  drd_random_model_write(&hp, 11, DRD_DTYPE_F16, a);
  drd_random_model_write(&hp, 11, DRD_DTYPE_F16, b);
  unsigned char *x = read_all(a, &na), *y = read_all(b, &nb);
  EXPECT(x && y && na == nb && na > 0 && !memcmp(x, y, na), "the same seed gave different files");
  free(y);
  drd_random_model_write(&hp, 12, DRD_DTYPE_F16, b);
  y = read_all(b, &nb);
  EXPECT(x && y && na == nb && memcmp(x, y, na), "seeds 11 and 12 gave the same file");
  free(x);
  free(y);
}

int main(void) {
  drd_hparams hp;
  EXPECT(drd_random_model_config("tiny", &hp) == DRD_OK, "tiny unknown");
  EXPECT(drd_random_model_param_count(&hp) == PY_PARAMS_TINY, "tiny: %llu parameters, Python has %llu",
         (unsigned long long)drd_random_model_param_count(&hp), PY_PARAMS_TINY);
  EXPECT(drd_random_model_config("base-220m", &hp) == DRD_OK, "base-220m unknown");
  EXPECT(drd_random_model_param_count(&hp) == PY_PARAMS_BASE_220M, "base-220m: %llu parameters, Python has %llu",
         (unsigned long long)drd_random_model_param_count(&hp), PY_PARAMS_BASE_220M);
  EXPECT(drd_random_model_config("huge", &hp) == DRD_ERROR_INVALID_ARGUMENT && strstr(drd_last_error(), "huge"),
         "an unknown configuration must be refused by name");

  char *a = temp_path(), *b = temp_path();
  EXPECT(a && b, "no temporary file");
  if (a && b) {
    const drd_dtype types[] = {DRD_DTYPE_F16, DRD_DTYPE_F32, DRD_DTYPE_BF16, DRD_DTYPE_Q8_0};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) check_tiny(a, types[i]);
    check_reproducible(a, b);
    drd_random_model_config("tiny", &hp);
    EXPECT(drd_random_model_write(&hp, 0, DRD_DTYPE_F16, "/nonexistent-dir/x.gguf") == DRD_ERROR_IO,
           "an unwritable path must give DRD_ERROR_IO");
  }
  if (a) unlink(a);
  if (b) unlink(b);
  free(a);
  free(b);
  if (drd_test_failures) fprintf(stderr, "test_host_random_model: %d failures\n", drd_test_failures);
  return drd_test_failures ? 1 : 0;
}
