/* What drdiff.h lets a caller read of a model: drd_model_get_info against the hyperparameters the
 * file was built from (and the parameter count against SPEC section 3's formula in
 * host/random_model.c), drd_tokenize / drd_detokenize against the tokenizer itself on random
 * texts of odd lengths, with their buffer protocol (size queries, cut-short buffers that are
 * never overrun), bad arguments, and drd_generate giving the same tokens for prompt_text as
 * for the ids drd_tokenize returns for it. CPU only. */
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "random_model.h"
#include "tokenizer.h"
#include "util_expect.h"
#include "util_gguf_build.h"
#include "util_rand.h"


static const char *k_words[] = {"the", " the", " history", " of", "city", ",", " and", "\n", "  ", "e", "!?",
                                "\xc3\xa9t\xc3\xa9", " 1999", "\t"};

/* a random text of len bytes: words of the test vocabulary's merges, and arbitrary bytes */
static void random_text(drd_rng *r, char *out, size_t len) {
  size_t i = 0;
  while (i < len) {
    if (drd_rng_range(r, 0, 4) == 0) {
      out[i++] = (char)drd_rng_range(r, 0, 255);
      continue;
    }
    const char *w = k_words[drd_rng_range(r, 0, sizeof k_words / sizeof *k_words - 1)];
    for (size_t k = 0; w[k] && i < len; k++) out[i++] = w[k];
  }
}

static void check_info(const drd_model *m, const drd_hparams *hp) {
  drd_model_info info;
  memset(&info, 0xab, sizeof info);
  EXPECT(drd_model_get_info(m, &info) == DRD_OK, "drd_model_get_info: %s", drd_last_error());
  EXPECT(info.vocab_size == hp->V && info.embed_dim == hp->de && info.model_dim == hp->d, "V %u de %u d %u",
         info.vocab_size, info.embed_dim, info.model_dim);
  EXPECT(info.layers == hp->L && info.heads == hp->H && info.experts == hp->E && info.experts_max == hp->kmax,
         "L %u H %u E %u kmax %u", info.layers, info.heads, info.experts, info.experts_max);
  EXPECT(info.context_length == hp->context_length && info.default_steps == hp->steps, "context %u steps %u",
         info.context_length, info.default_steps);
  EXPECT(info.parameters == drd_random_model_param_count(hp), "parameters %llu, SPEC's count %llu",
         (unsigned long long)info.parameters, (unsigned long long)drd_random_model_param_count(hp));
  /* the test vocabulary's special tokens are its last three ids */
  EXPECT(info.bos_id == (int32_t)hp->V - 3 && info.eos_id == (int32_t)hp->V - 2 && info.pad_id == (int32_t)hp->V - 1,
         "bos %d eos %d pad %d", info.bos_id, info.eos_id, info.pad_id);
  EXPECT(info.max_tokens >= hp->context_length, "max_tokens %u", info.max_tokens);

  /* the limit it reports is the one drd_generate enforces */
  drd_gen_params p;
  drd_gen_params_default(&p);
  p.backend = DRD_BACKEND_CPU;
  p.new_tokens = info.max_tokens;
  int32_t one = 5;
  p.prompt_ids = &one;
  p.prompt_len = 1;
  drd_gen_result r = {0};
  EXPECT(drd_generate(NULL, m, &p, &r) == DRD_ERROR_INVALID_ARGUMENT, "1 + max_tokens accepted: %s",
         drd_last_error());
  drd_gen_result_free(&r);

  EXPECT(drd_model_get_info(NULL, &info) == DRD_ERROR_INVALID_ARGUMENT, "NULL model");
  EXPECT(drd_model_get_info(m, NULL) == DRD_ERROR_INVALID_ARGUMENT, "NULL out");
}

/* one text through the API and through the tokenizer itself */
static void check_text(const drd_model *m, const drd_tokenizer *t, const char *text, size_t len) {
  int32_t *want = NULL;
  size_t n_want = 0;
  if (drd_tokenizer_encode(t, text, len, &want, &n_want) != DRD_OK) {
    FAIL("tokenizer: %s", drd_last_error());
    return;
  }
  uint32_t n = 12345;
  EXPECT(drd_tokenize(m, text, len, NULL, 0, &n) == DRD_OK && n == n_want, "size query %u, want %zu", n, n_want);
  int32_t *ids = malloc((n_want + 1) * sizeof *ids);
  const int32_t sentinel = -77;
  /* every buffer size from 0 to the whole, and one past it */
  for (uint32_t max = 0; max <= n_want + 1; max += max < 4 || max + 4 > n_want ? 1 : (uint32_t)n_want / 3) {
    for (size_t i = 0; i <= n_want; i++) ids[i] = sentinel;
    uint32_t cap = max <= n_want ? max : (uint32_t)n_want + 1;
    EXPECT(drd_tokenize(m, text, len, ids, cap, &n) == DRD_OK && n == n_want, "max %u: n %u, want %zu", cap, n,
           n_want);
    uint32_t k = cap < n_want ? cap : (uint32_t)n_want;
    EXPECT(!memcmp(ids, want, k * sizeof *ids), "max %u: ids differ from the tokenizer's", cap);
    EXPECT(ids[k] == sentinel, "max %u: wrote past %u ids", cap, k);
  }

  /* back to bytes: exact (byte-level BPE), with special tokens around contributing nothing */
  drd_model_info info;
  drd_model_get_info(m, &info);
  int32_t *framed = malloc((n_want + 3) * sizeof *framed);
  framed[0] = info.bos_id;
  memcpy(framed + 1, want, n_want * sizeof *framed);
  framed[n_want + 1] = info.eos_id;
  framed[n_want + 2] = info.pad_id;
  size_t nb = 0;
  EXPECT(drd_detokenize(m, framed, (uint32_t)n_want + 3, NULL, 0, &nb) == DRD_OK && nb == len,
         "detokenize size %zu, text %zu bytes", nb, len);
  char *back = malloc(len + 2);
  for (size_t max = 0; max <= len + 2; max += max < 3 || max + 3 > len ? 1 : len / 4 + 1) {
    memset(back, 0x5a, len + 2);
    EXPECT(drd_detokenize(m, framed, (uint32_t)n_want + 3, max ? back : NULL, max, &nb) == DRD_OK && nb == len,
           "max %zu: %zu bytes, want %zu", max, nb, len);
    if (!max) continue;
    size_t k = max - 1 < len ? max - 1 : len;
    EXPECT(!memcmp(back, text, k) && back[k] == '\0', "max %zu: bytes or NUL wrong", max);
    EXPECT(k + 1 >= len + 2 || (unsigned char)back[k + 1] == 0x5a, "max %zu: wrote past the NUL", max);
  }
  free(back);
  free(framed);
  free(ids);
  free(want);
}

static void check_tokenizer(const drd_model *m, const drd_tokenizer *t) {
  drd_rng r = {0x70c3};
  char text[1000];
  for (size_t len = 0; len < sizeof text; len = len * 2 + 1 + drd_rng_range(&r, 0, 6)) {
    random_text(&r, text, len);
    check_text(m, t, text, len);
  }
  uint32_t n;
  size_t nb;
  int32_t ids[4] = {1, 2, 3, 4};
  char buf[8] = "keep";
  EXPECT(drd_tokenize(NULL, "a", 1, ids, 4, &n) == DRD_ERROR_INVALID_ARGUMENT, "NULL model");
  EXPECT(drd_tokenize(m, NULL, 3, ids, 4, &n) == DRD_ERROR_INVALID_ARGUMENT, "NULL text of 3 bytes");
  EXPECT(drd_tokenize(m, "abc", 3, NULL, 4, &n) == DRD_ERROR_INVALID_ARGUMENT, "NULL ids with max 4");
  EXPECT(drd_tokenize(m, "abc", 3, ids, 4, NULL) == DRD_ERROR_INVALID_ARGUMENT, "NULL n_ids");
  EXPECT(drd_tokenize(m, NULL, 0, NULL, 0, &n) == DRD_OK && n == 0, "empty text: n %u", n);
  drd_model_info info;
  drd_model_get_info(m, &info);
  const int32_t bad[2][2] = {{3, (int32_t)info.vocab_size}, {-1, 3}};
  for (int i = 0; i < 2; i++) {
    EXPECT(drd_detokenize(m, bad[i], 2, buf, sizeof buf, &nb) == DRD_ERROR_INVALID_ARGUMENT,
           "id %d accepted", bad[i][i ? 0 : 1]);
    EXPECT(strstr(drd_last_error(), "id") != NULL, "the message does not name the id: %s", drd_last_error());
  }
  EXPECT(drd_detokenize(m, NULL, 2, buf, sizeof buf, &nb) == DRD_ERROR_INVALID_ARGUMENT, "NULL ids");
  EXPECT(drd_detokenize(m, ids, 2, NULL, 8, &nb) == DRD_ERROR_INVALID_ARGUMENT, "NULL text with max 8");
  EXPECT(drd_detokenize(m, ids, 2, buf, sizeof buf, NULL) == DRD_ERROR_INVALID_ARGUMENT, "NULL n_bytes");
  EXPECT(drd_detokenize(m, NULL, 0, buf, sizeof buf, &nb) == DRD_OK && nb == 0 && !buf[0], "no ids: %zu", nb);
}

/* prompt_text and the ids drd_tokenize gives for it are the same request */
static void check_prompt(const drd_model *m) {
  const char *prompt = "the history of the city, and 1999";
  int32_t ids[64];
  uint32_t n = 0;
  EXPECT(drd_tokenize(m, prompt, strlen(prompt), ids, 64, &n) == DRD_OK && n > 0 && n <= 64, "n %u", n);
  drd_gen_params p;
  drd_gen_params_default(&p);
  p.backend = DRD_BACKEND_CPU;
  p.new_tokens = 6;
  p.steps = 2;
  p.seed = 11;
  p.prompt_text = prompt;
  drd_gen_result a = {0}, b = {0};
  EXPECT(drd_generate(NULL, m, &p, &a) == DRD_OK, "text prompt: %s", drd_last_error());
  p.prompt_text = NULL;
  p.prompt_ids = ids;
  p.prompt_len = n;
  EXPECT(drd_generate(NULL, m, &p, &b) == DRD_OK, "id prompt: %s", drd_last_error());
  EXPECT(a.n_tokens == 6 && b.n_tokens == 6 && !memcmp(a.tokens, b.tokens, 6 * sizeof *a.tokens),
         "the text prompt and its ids generate different tokens");
  drd_gen_result_free(&a);
  drd_gen_result_free(&b);
}

int main(void) {
  drd_hparams hp;
  drd_test_tiny_hparams(&hp);
  drd_test_model_desc md = {.hp = &hp, .seed = 3};
  char path[256];
  if (drd_test_model_temp_file(&md, "api-model", path, sizeof path)) return 1;
  drd_model *m = NULL;
  drd_model_file *f = NULL;
  drd_tokenizer *t = NULL;
  drd_model_desc desc = {.path = path};
  if (drd_model_create(&desc, &m) != DRD_OK || drd_model_file_open(path, &f) != DRD_OK ||
      drd_tokenizer_create(&f->vocab, &t) != DRD_OK) {
    fprintf(stderr, "FAIL: loading %s: %s\n", path, drd_last_error());
    remove(path);
    return 1;
  }
  check_info(m, &hp);
  check_tokenizer(m, t);
  check_prompt(m);
  drd_tokenizer_destroy(t);
  drd_model_file_close(f);
  drd_model_destroy(m);
  remove(path);
  if (drd_test_failures) {
    fprintf(stderr, "%d failures\n", drd_test_failures);
    return 1;
  }
  printf("PASS\n");
  return 0;
}
