/* Loads a DrDiff model from GGUF (SPEC sections 2-3): maps the file, lets gguf.c check the
 * container, then checks every hyperparameter, tensor shape/type and the tokenizer keys so
 * that nothing after loading needs to re-validate. Every message names the key or tensor. */
#include "model_file.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dtype.h"
#include "gguf.h"
#include "log.h"

typedef unsigned long long ull;

typedef struct mf_priv {
  drd_gguf *g;
  void *map; /* mmap of the file, or NULL for drd_model_file_open_memory */
  size_t map_size;
  char *vocab_pool; /* tokens and merges, NUL-terminated */
} mf_priv;

/* What the loader needs while it runs: the index and the name to put in front of errors. */
typedef struct ld {
  const char *src;
  const drd_gguf *g;
} ld;

static drd_status bad(const ld *c, const char *fmt, ...) DRD_PRINTF(2, 3);
static drd_status bad(const ld *c, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return drd_fail(DRD_ERROR_BAD_MODEL, "%s: %s", c->src, msg);
}

/* ------------------------------------------------------------------ keys */

static drd_status get_kv(const ld *c, const char *key, drd_gguf_type type,
                         const drd_gguf_kv **out) {
  const drd_gguf_kv *kv = drd_gguf_find_kv(c->g, key);
  if (!kv) return bad(c, "%s: missing", key);
  if (kv->type != type)
    return bad(c, "%s: type %s but must be %s", key, drd_gguf_type_name(kv->type),
               drd_gguf_type_name(type));
  *out = kv;
  return DRD_OK;
}

static drd_status get_u32(const ld *c, const char *key, uint32_t *v) {
  const drd_gguf_kv *kv = NULL;
  drd_status st = get_kv(c, key, DRD_GGUF_U32, &kv);
  if (st == DRD_OK) *v = (uint32_t)kv->v.u;
  return st;
}

static drd_status get_f32(const ld *c, const char *key, float *v) {
  const drd_gguf_kv *kv = NULL;
  drd_status st = get_kv(c, key, DRD_GGUF_F32, &kv);
  if (st == DRD_OK) *v = (float)kv->v.f; /* exact: the double was widened from an f32 */
  return st;
}

static drd_status get_str(const ld *c, const char *key, drd_gguf_str *v) {
  const drd_gguf_kv *kv = NULL;
  drd_status st = get_kv(c, key, DRD_GGUF_STRING, &kv);
  if (st == DRD_OK) *v = kv->v.s;
  return st;
}

/* An array of exactly n u32. */
static drd_status get_u32_arr(const ld *c, const char *key, uint32_t n, uint32_t *v) {
  const drd_gguf_kv *kv = drd_gguf_find_kv(c->g, key);
  if (!kv) return bad(c, "%s: missing", key);
  if (kv->type != DRD_GGUF_ARRAY)
    return bad(c, "%s: type %s but must be u32[%u]", key, drd_gguf_type_name(kv->type), n);
  if (kv->arr_type != DRD_GGUF_U32 || kv->arr_count != n)
    return bad(c, "%s: array of %llu %s but must be u32[%u]", key, (ull)kv->arr_count,
               drd_gguf_type_name(kv->arr_type), n);
  for (uint32_t i = 0; i < n; i++) v[i] = (uint32_t)drd_gguf_arr_uint(kv, i);
  return DRD_OK;
}

/* An optional u32 token id below V; -1 when absent. */
static drd_status get_token_id(const ld *c, const char *key, uint32_t V, int32_t *id) {
  *id = -1;
  if (!drd_gguf_find_kv(c->g, key)) return DRD_OK;
  uint32_t v;
  drd_status st = get_u32(c, key, &v);
  if (st != DRD_OK) return st;
  if (v >= V) return bad(c, "%s: %u is not below drdiff.vocab_size = %u", key, v, V);
  *id = (int32_t)v;
  return DRD_OK;
}

#define TRY(x)                                                                                 \
  do {                                                                                         \
    drd_status st_ = (x);                                                                      \
    if (st_ != DRD_OK) return st_;                                                             \
  } while (0)

static drd_status read_hparams(const ld *c, drd_hparams *hp) {
  drd_gguf_str arch = {0}, sched = {0};
  TRY(get_str(c, "general.architecture", &arch));
  if (!drd_gguf_str_eq(arch, "drdiff"))
    return bad(c, "general.architecture: \"%.*s\" but must be \"drdiff\"",
               (int)(arch.len > 64 ? 64 : arch.len), arch.ptr);

  TRY(get_u32(c, "drdiff.vocab_size", &hp->V));
  TRY(get_u32(c, "drdiff.embed_dim", &hp->de));
  TRY(get_u32(c, "drdiff.hidden_dim", &hp->d));
  TRY(get_u32(c, "drdiff.block_count", &hp->L));
  TRY(get_u32(c, "drdiff.head_count", &hp->H));
  TRY(get_u32(c, "drdiff.time_embed_dim", &hp->dt));
  TRY(get_u32(c, "drdiff.expert_count", &hp->E));
  TRY(get_u32(c, "drdiff.expert_hidden_dim", &hp->dff));
  TRY(get_u32(c, "drdiff.expert_max_used", &hp->kmax));
  TRY(get_f32(c, "drdiff.expert_route_p", &hp->route_p));
  TRY(get_f32(c, "drdiff.rope_theta", &hp->rope_theta));
  TRY(get_f32(c, "drdiff.norm_eps", &hp->norm_eps));
  TRY(get_u32(c, "drdiff.context_length", &hp->context_length));
  TRY(get_str(c, "drdiff.diffusion.schedule", &sched));
  TRY(get_f32(c, "drdiff.diffusion.time_scale", &hp->time_scale));
  TRY(get_u32(c, "drdiff.hsa.block_size", &hp->B));
  TRY(get_u32(c, "drdiff.hsa.dense_max", &hp->N1));
  uint32_t mode_max[2];
  TRY(get_u32_arr(c, "drdiff.hsa.mode_max", 2, mode_max));
  hp->N2 = mode_max[0];
  hp->N3 = mode_max[1];
  TRY(get_u32_arr(c, "drdiff.hsa.window", 3, hp->window));
  TRY(get_u32_arr(c, "drdiff.hsa.dilation", 3, hp->dilation));
  TRY(get_u32_arr(c, "drdiff.hsa.dilated_hops", 3, hp->hops));
  TRY(get_u32_arr(c, "drdiff.hsa.global_blocks", 3, hp->global));
  TRY(get_u32(c, "drdiff.sampler.steps", &hp->steps));
  TRY(get_f32(c, "drdiff.sas.gamma", &hp->sas_gamma));
  TRY(get_f32(c, "drdiff.sas.temperature", &hp->sas_temperature));
  TRY(get_f32(c, "drdiff.sas.start", &hp->sas_start));

  if (drd_gguf_str_eq(sched, "sqrt")) hp->schedule = DRD_SCHEDULE_SQRT;
  else if (drd_gguf_str_eq(sched, "cosine")) hp->schedule = DRD_SCHEDULE_COSINE;
  else if (drd_gguf_str_eq(sched, "linear_logsnr")) hp->schedule = DRD_SCHEDULE_LINEAR_LOGSNR;
  else
    return bad(c, "drdiff.diffusion.schedule: \"%.*s\" but must be sqrt, cosine or linear_logsnr",
               (int)(sched.len > 64 ? 64 : sched.len), sched.ptr);
  return DRD_OK;
}

/* The ranges of SPEC section 2. Float tests are written so that NaN fails them. */
static drd_status check_hparams(const ld *c, const drd_hparams *hp) {
  const struct { const char *key; uint32_t v; } pos[] = {
      {"drdiff.vocab_size", hp->V},        {"drdiff.embed_dim", hp->de},
      {"drdiff.hidden_dim", hp->d},        {"drdiff.block_count", hp->L},
      {"drdiff.head_count", hp->H},        {"drdiff.time_embed_dim", hp->dt},
      {"drdiff.expert_count", hp->E},      {"drdiff.expert_hidden_dim", hp->dff},
      {"drdiff.hsa.block_size", hp->B},    {"drdiff.sampler.steps", hp->steps},
  };
  for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
    if (pos[i].v < 1) return bad(c, "%s: 0 but must be at least 1", pos[i].key);
  if (hp->V > INT32_MAX) /* token ids travel as int32_t */
    return bad(c, "drdiff.vocab_size: %u is above 2^31 - 1", hp->V);
  if (hp->d % hp->H)
    return bad(c, "drdiff.head_count: %u does not divide drdiff.hidden_dim = %u", hp->H, hp->d);
  if ((hp->d / hp->H) % 2)
    return bad(c, "drdiff.head_count: head width %u / %u = %u is odd (RoPE needs it even)", hp->d,
               hp->H, hp->d / hp->H);
  if (hp->dt % 2) return bad(c, "drdiff.time_embed_dim: %u is odd (must be even)", hp->dt);
  if (hp->kmax < 1 || hp->kmax > hp->E)
    return bad(c, "drdiff.expert_max_used: %u but must be in 1..drdiff.expert_count (%u)",
               hp->kmax, hp->E);
  if (!(hp->route_p > 0.0f && hp->route_p <= 1.0f))
    return bad(c, "drdiff.expert_route_p: %g but must be in (0, 1]", (double)hp->route_p);
  if (!(hp->rope_theta > 0.0f && isfinite(hp->rope_theta)))
    return bad(c, "drdiff.rope_theta: %g but must be finite and > 0", (double)hp->rope_theta);
  if (!(hp->norm_eps > 0.0f && isfinite(hp->norm_eps)))
    return bad(c, "drdiff.norm_eps: %g but must be finite and > 0", (double)hp->norm_eps);
  if (!isfinite(hp->time_scale))
    return bad(c, "drdiff.diffusion.time_scale: %g but must be finite", (double)hp->time_scale);
  if (hp->N1 > hp->N2 || hp->N2 > hp->N3)
    return bad(c, "drdiff.hsa.dense_max / mode_max: %u, %u, %u but must not decrease", hp->N1,
               hp->N2, hp->N3);
  for (int m = 0; m < 3; m++)
    if (hp->dilation[m] < 1)
      return bad(c, "drdiff.hsa.dilation: mode %d is 0 but must be at least 1", m + 1);
  if (!(hp->sas_gamma >= 0.0f && hp->sas_gamma <= 1.0f))
    return bad(c, "drdiff.sas.gamma: %g but must be in [0, 1]", (double)hp->sas_gamma);
  if (!(hp->sas_temperature > 0.0f && isfinite(hp->sas_temperature)))
    return bad(c, "drdiff.sas.temperature: %g but must be finite and > 0",
               (double)hp->sas_temperature);
  if (!(hp->sas_start >= 0.0f && hp->sas_start <= 1.0f))
    return bad(c, "drdiff.sas.start: %g but must be in [0, 1]", (double)hp->sas_start);
  return DRD_OK;
}

/* ------------------------------------------------------------------ tokenizer */

static drd_status read_vocab(const ld *c, uint32_t V, drd_vocab *vb, char **pool_out) {
  const drd_gguf_kv *tok = NULL, *mrg = NULL;
  drd_gguf_str model = {0};
  TRY(get_str(c, "tokenizer.ggml.model", &model));
  TRY(get_kv(c, "tokenizer.ggml.tokens", DRD_GGUF_ARRAY, &tok));
  if (tok->arr_type != DRD_GGUF_STRING)
    return bad(c, "tokenizer.ggml.tokens: array of %s but must be an array of strings",
               drd_gguf_type_name(tok->arr_type));
  if (tok->arr_count != V)
    return bad(c, "tokenizer.ggml.tokens: %llu entries but drdiff.vocab_size is %u",
               (ull)tok->arr_count, V);
  TRY(get_kv(c, "tokenizer.ggml.merges", DRD_GGUF_ARRAY, &mrg));
  if (mrg->arr_type != DRD_GGUF_STRING)
    return bad(c, "tokenizer.ggml.merges: array of %s but must be an array of strings",
               drd_gguf_type_name(mrg->arr_type));
  if (mrg->arr_count > UINT32_MAX)
    return bad(c, "tokenizer.ggml.merges: %llu entries (too many)", (ull)mrg->arr_count);
  TRY(get_token_id(c, "tokenizer.ggml.bos_token_id", V, &vb->bos_id));
  TRY(get_token_id(c, "tokenizer.ggml.eos_token_id", V, &vb->eos_id));
  TRY(get_token_id(c, "tokenizer.ggml.padding_token_id", V, &vb->pad_id));

  /* Both arrays lie inside the file, so these sums are bounded by its size plus the counts. */
  uint64_t n_mrg = mrg->arr_count, bytes = 0;
  for (uint64_t i = 0; i < V; i++) {
    drd_gguf_str s = tok->arr_strs[i];
    if (memchr(s.ptr, 0, (size_t)s.len))
      return bad(c, "tokenizer.ggml.tokens[%llu]: holds a NUL byte", (ull)i);
    bytes += s.len + 1;
  }
  for (uint64_t i = 0; i < n_mrg; i++) {
    drd_gguf_str s = mrg->arr_strs[i];
    if (memchr(s.ptr, 0, (size_t)s.len))
      return bad(c, "tokenizer.ggml.merges[%llu]: holds a NUL byte", (ull)i);
    /* "left right": a space with something on both sides (BPE tokens never hold a raw
     * space, GPT-2's byte map turns it into "Ġ") */
    const char *sp = s.len > 2 ? memchr(s.ptr + 1, ' ', (size_t)s.len - 2) : NULL;
    if (!sp)
      return bad(c, "tokenizer.ggml.merges[%llu]: \"%.*s\" is not of the form \"left right\"",
                 (ull)i, (int)(s.len > 64 ? 64 : s.len), s.ptr);
    bytes += s.len + 1;
  }
  if (bytes > SIZE_MAX) return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "%s: vocabulary too large", c->src);
  char *pool = malloc(bytes ? (size_t)bytes : 1);
  vb->tokens = malloc((V ? (size_t)V : 1) * sizeof *vb->tokens);
  vb->merges = malloc((n_mrg ? (size_t)n_mrg : 1) * sizeof *vb->merges);
  if (!pool || !vb->tokens || !vb->merges) {
    free(pool);
    return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory for the vocabulary",
                    c->src);
  }
  *pool_out = pool;
  char *p = pool;
  for (uint64_t i = 0; i < V; i++) {
    drd_gguf_str s = tok->arr_strs[i];
    memcpy(p, s.ptr, (size_t)s.len);
    p[s.len] = 0;
    vb->tokens[i] = p;
    p += s.len + 1;
  }
  for (uint64_t i = 0; i < n_mrg; i++) {
    drd_gguf_str s = mrg->arr_strs[i];
    memcpy(p, s.ptr, (size_t)s.len);
    p[s.len] = 0;
    vb->merges[i] = p;
    p += s.len + 1;
  }
  vb->n_tokens = V;
  vb->n_merges = (uint32_t)n_mrg;
  return DRD_OK;
}

/* ------------------------------------------------------------------ tensors */

static void fmt_shape(char *buf, size_t cap, uint32_t ndim, const uint64_t *shape) {
  size_t n = (size_t)snprintf(buf, cap, "[");
  for (uint32_t i = 0; i < ndim && n < cap; i++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%llu", i ? ", " : "", (ull)shape[i]);
  if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* Finds `name`, checks its logical shape (rows first) and, for norms and biases, that it is
 * f32, and fills the view. */
static drd_status get_tensor(const ld *c, const char *name, uint32_t ndim, const uint64_t *shape,
                             int f32_only, drd_tensor_view *v) {
  const drd_gguf_tensor *t = drd_gguf_find_tensor(c->g, name);
  if (!t) return bad(c, "%s: missing", name);
  uint64_t have[4];
  for (uint32_t i = 0; i < t->n_dims; i++) have[i] = t->ne[t->n_dims - 1 - i];
  int ok = t->n_dims == ndim;
  for (uint32_t i = 0; ok && i < ndim; i++) ok = have[i] == shape[i];
  if (!ok) {
    char a[128], b[128];
    fmt_shape(a, sizeof a, t->n_dims, have);
    fmt_shape(b, sizeof b, ndim, shape);
    return bad(c, "%s: shape %s but hyperparameters need %s", name, a, b);
  }
  if (f32_only && t->type != DRD_DTYPE_F32)
    return bad(c, "%s: type %s but norm weights and biases must be f32", name,
               drd_dtype_name(t->type));
  v->name = t->name;
  v->type = (drd_dtype)t->type;
  v->ndim = ndim;
  for (uint32_t i = 0; i < 4; i++) v->shape[i] = i < ndim ? shape[i] : 1;
  v->n_elements = t->n_elements;
  v->data = t->data;
  v->nbytes = (size_t)t->nbytes; /* the data lies in the buffer, so it fits in size_t */
  return DRD_OK;
}

static drd_status get_1d(const ld *c, const char *name, uint64_t n, drd_tensor_view *v) {
  uint64_t s[1] = {n};
  return get_tensor(c, name, 1, s, 1, v);
}

static drd_status get_2d(const ld *c, const char *name, uint64_t rows, uint64_t cols,
                         drd_tensor_view *v) {
  uint64_t s[2] = {rows, cols};
  return get_tensor(c, name, 2, s, 0, v);
}

static drd_status get_3d(const ld *c, const char *name, uint64_t a, uint64_t b, uint64_t d,
                         drd_tensor_view *v) {
  uint64_t s[3] = {a, b, d};
  return get_tensor(c, name, 3, s, 0, v);
}

static const char *const k_layer_tensors[] = {
    "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm",
    "ffn_gate_inp", "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps",
};
#define N_LAYER_TENSORS (sizeof k_layer_tensors / sizeof k_layer_tensors[0])

static void layer_name(char *buf, size_t cap, uint32_t l, const char *what) {
  snprintf(buf, cap, "blk.%u.%s.weight", l, what);
}

static drd_status read_tensors(const ld *c, const drd_hparams *hp, drd_model_tensors *t) {
  uint64_t V = hp->V, de = hp->de, d = hp->d, dt = hp->dt, E = hp->E, dff = hp->dff;
  TRY(get_2d(c, "token_embd.weight", V, de, &t->token_embd));
  TRY(get_2d(c, "in_proj.weight", d, de, &t->in_proj_w));
  TRY(get_1d(c, "in_proj.bias", d, &t->in_proj_b));
  TRY(get_2d(c, "time_mlp.0.weight", d, dt, &t->time_mlp0_w));
  TRY(get_1d(c, "time_mlp.0.bias", d, &t->time_mlp0_b));
  TRY(get_2d(c, "time_mlp.2.weight", d, d, &t->time_mlp2_w));
  TRY(get_1d(c, "time_mlp.2.bias", d, &t->time_mlp2_b));
  TRY(get_1d(c, "output_norm.weight", d, &t->output_norm));
  TRY(get_2d(c, "out_proj.weight", de, d, &t->out_proj_w));
  TRY(get_1d(c, "out_proj.bias", de, &t->out_proj_b));

  /* A block count the tensors cannot back would otherwise size a huge allocation: with fewer
   * than L * 10 tensors some layer tensor must be missing, so name the first one. */
  char name[64];
  if (hp->L > c->g->n_tensors / N_LAYER_TENSORS) {
    for (uint32_t l = 0; l < hp->L; l++)
      for (size_t k = 0; k < N_LAYER_TENSORS; k++) {
        layer_name(name, sizeof name, l, k_layer_tensors[k]);
        if (!drd_gguf_find_tensor(c->g, name))
          return bad(c, "%s: missing (drdiff.block_count = %u)", name, hp->L);
      }
  }
  t->layers = calloc(hp->L, sizeof *t->layers);
  if (!t->layers) return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory", c->src);
  for (uint32_t l = 0; l < hp->L; l++) {
    drd_layer_tensors *ly = &t->layers[l];
#define LN(what) (layer_name(name, sizeof name, l, what), name)
    TRY(get_1d(c, LN("attn_norm"), d, &ly->attn_norm));
    TRY(get_2d(c, LN("attn_q"), d, d, &ly->attn_q));
    TRY(get_2d(c, LN("attn_k"), d, d, &ly->attn_k));
    TRY(get_2d(c, LN("attn_v"), d, d, &ly->attn_v));
    TRY(get_2d(c, LN("attn_output"), d, d, &ly->attn_output));
    TRY(get_1d(c, LN("ffn_norm"), d, &ly->ffn_norm));
    TRY(get_2d(c, LN("ffn_gate_inp"), E, d, &ly->ffn_gate_inp));
    TRY(get_3d(c, LN("ffn_gate_exps"), E, dff, d, &ly->ffn_gate_exps));
    TRY(get_3d(c, LN("ffn_up_exps"), E, dff, d, &ly->ffn_up_exps));
    TRY(get_3d(c, LN("ffn_down_exps"), E, d, dff, &ly->ffn_down_exps));
#undef LN
  }
  return DRD_OK;
}

/* ------------------------------------------------------------------ open / close */

static drd_status load(const char *src, const void *data, size_t size, void *map,
                       drd_model_file **out) {
  drd_model_file *m = calloc(1, sizeof *m);
  mf_priv *pv = calloc(1, sizeof *pv);
  if (!m || !pv) {
    free(m);
    free(pv);
    return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory", src);
  }
  m->priv = pv;
  pv->map = map;
  pv->map_size = size;
  m->vocab.bos_id = m->vocab.eos_id = m->vocab.pad_id = -1;

  drd_status st = drd_gguf_parse(data, size, &pv->g);
  if (st != DRD_OK) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", drd_last_error()); /* drd_fail rewrites that buffer */
    st = drd_fail(st, "%s: %s", src, msg);
  } else {
    ld c = {src, pv->g};
    if ((st = read_hparams(&c, &m->hp)) == DRD_OK && (st = check_hparams(&c, &m->hp)) == DRD_OK &&
        (st = read_vocab(&c, m->hp.V, &m->vocab, &pv->vocab_pool)) == DRD_OK)
      st = read_tensors(&c, &m->hp, &m->t);
  }
  if (st != DRD_OK) {
    drd_model_file_close(m); /* also unmaps */
    return st;
  }
  drd_log(DRD_LOG_INFO, "%s: DrDiff model V=%u de=%u d=%u L=%u H=%u E=%u dff=%u kmax=%u, %llu tensors",
          src, m->hp.V, m->hp.de, m->hp.d, m->hp.L, m->hp.H, m->hp.E, m->hp.dff, m->hp.kmax,
          (ull)pv->g->n_tensors);
  *out = m;
  return DRD_OK;
}

drd_status drd_model_file_open(const char *path, drd_model_file **out) {
  if (!out || !path) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "drd_model_file_open: NULL argument");
  *out = NULL;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return drd_fail(DRD_ERROR_IO, "cannot open model file '%s': %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    int e = errno;
    close(fd);
    return drd_fail(DRD_ERROR_IO, "cannot stat model file '%s': %s", path, strerror(e));
  }
  if (!S_ISREG(sb.st_mode)) {
    close(fd);
    return drd_fail(DRD_ERROR_IO, "model file '%s' is not a regular file", path);
  }
  if ((uint64_t)sb.st_size > SIZE_MAX) {
    close(fd);
    return drd_fail(DRD_ERROR_IO, "model file '%s' is too large to map", path);
  }
  size_t size = (size_t)sb.st_size;
  void *map = NULL;
  if (size > 0) { /* mmap of 0 bytes fails; an empty file is reported by the parser */
    map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      int e = errno;
      close(fd);
      return drd_fail(DRD_ERROR_IO, "cannot map model file '%s': %s", path, strerror(e));
    }
  }
  close(fd); /* the mapping keeps the file */
  return load(path, map, size, map, out);
}

drd_status drd_model_file_open_memory(const void *data, size_t size, drd_model_file **out) {
  if (!out || (!data && size))
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "drd_model_file_open_memory: NULL argument");
  *out = NULL;
  return load("<memory>", data, size, NULL, out);
}

void drd_model_file_close(drd_model_file *m) {
  if (!m) return;
  mf_priv *pv = m->priv;
  free(m->t.layers);
  free(m->vocab.tokens);
  free(m->vocab.merges);
  if (pv) {
    free(pv->vocab_pool);
    drd_gguf_free(pv->g);
    if (pv->map) munmap(pv->map, pv->map_size);
    free(pv);
  }
  free(m);
}
