/* Random DrDiff models as GGUF: the file is streamed (header, then one tensor at a time in
 * chunks), so base-220m (about 1.5 GB as f16) needs well under 1 MiB of buffers. Everything is
 * written little-endian byte by byte, as GGUF requires, whatever the host's byte order. */
#include "random_model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "gguf.h"
#include "log.h"
#include "philox.h"

/* ------------------------------------------------------------------ configurations */

/* random_model.py's CONFIGS (its _COMMON in the last two lines of each). */
static const drd_hparams k_tiny = {
    .V = 300, .de = 16, .d = 64, .L = 2, .H = 4, .dt = 32, .E = 4, .dff = 96, .kmax = 2, .route_p = 0.7f,
    .context_length = 512, .steps = 8, .B = 8, .N1 = 32, .N2 = 64, .N3 = 128, .window = {1, 1, 2},
    .dilation = {2, 3, 4}, .hops = {1, 2, 2}, .global = {1, 2, 2},
    .rope_theta = 10000.0f, .norm_eps = 1e-6f, .schedule = DRD_SCHEDULE_SQRT, .time_scale = 2000.0f,
    .sas_gamma = 0.5f, .sas_temperature = 0.1f, .sas_start = 0.5f};
static const drd_hparams k_base_220m = {
    .V = 32768, .de = 128, .d = 1024, .L = 12, .H = 16, .dt = 256, .E = 8, .dff = 2304, .kmax = 2,
    .route_p = 0.9f, .context_length = 16384, .steps = 20, .B = 64, .N1 = 1024, .N2 = 4096, .N3 = 8192,
    .window = {4, 4, 4}, .dilation = {2, 4, 8}, .hops = {4, 4, 4}, .global = {2, 4, 8},
    .rope_theta = 10000.0f, .norm_eps = 1e-6f, .schedule = DRD_SCHEDULE_SQRT, .time_scale = 2000.0f,
    .sas_gamma = 0.5f, .sas_temperature = 0.1f, .sas_start = 0.5f};

drd_status drd_random_model_config(const char *name, drd_hparams *hp) {
  if (name && !strcmp(name, "tiny")) *hp = k_tiny;
  else if (name && !strcmp(name, "base-220m")) *hp = k_base_220m;
  else
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "unknown model configuration '%s' (choose tiny or base-220m)",
                    name ? name : "(null)");
  return DRD_OK;
}

/* ------------------------------------------------------------------ the tensor list */

enum { INIT_EMBED, INIT_MATRIX, INIT_NORM, INIT_BIAS };

typedef struct rm_tensor {
  char name[64];
  uint32_t ndim;
  uint64_t shape[3]; /* logical, rows first */
  int init;
} rm_tensor;

static uint32_t tensor_count(const drd_hparams *hp) { return 10 + 10 * hp->L; }

static void set(rm_tensor *t, const char *name, int init, uint32_t ndim, uint64_t s0, uint64_t s1, uint64_t s2) {
  snprintf(t->name, sizeof t->name, "%s", name);
  t->init = init;
  t->ndim = ndim;
  t->shape[0] = s0, t->shape[1] = s1, t->shape[2] = s2;
}

/* Tensor i in the file order of ModelConfig.tensor_shapes (models/drdiff/model.py). */
static void tensor_at(const drd_hparams *hp, uint32_t i, rm_tensor *t) {
  const uint64_t V = hp->V, de = hp->de, d = hp->d, dt = hp->dt, E = hp->E, dff = hp->dff;
  switch (i) {
  case 0: set(t, "token_embd.weight", INIT_EMBED, 2, V, de, 0); return;
  case 1: set(t, "in_proj.weight", INIT_MATRIX, 2, d, de, 0); return;
  case 2: set(t, "in_proj.bias", INIT_BIAS, 1, d, 0, 0); return;
  case 3: set(t, "time_mlp.0.weight", INIT_MATRIX, 2, d, dt, 0); return;
  case 4: set(t, "time_mlp.0.bias", INIT_BIAS, 1, d, 0, 0); return;
  case 5: set(t, "time_mlp.2.weight", INIT_MATRIX, 2, d, d, 0); return;
  case 6: set(t, "time_mlp.2.bias", INIT_BIAS, 1, d, 0, 0); return;
  }
  const uint32_t tail = 7 + 10 * hp->L;
  if (i == tail) set(t, "output_norm.weight", INIT_NORM, 1, d, 0, 0);
  if (i == tail + 1) set(t, "out_proj.weight", INIT_MATRIX, 2, de, d, 0);
  if (i == tail + 2) set(t, "out_proj.bias", INIT_BIAS, 1, de, 0, 0);
  if (i >= tail) return;
  const uint32_t l = (i - 7) / 10, k = (i - 7) % 10;
  static const char *const what[10] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                       "ffn_norm", "ffn_gate_inp", "ffn_gate_exps", "ffn_up_exps",
                                       "ffn_down_exps"};
  char name[64];
  snprintf(name, sizeof name, "blk.%u.%s.weight", l, what[k]);
  switch (k) {
  case 0: case 5: set(t, name, INIT_NORM, 1, d, 0, 0); return;
  case 6: set(t, name, INIT_MATRIX, 2, E, d, 0); return;
  case 7: case 8: set(t, name, INIT_MATRIX, 3, E, dff, d); return;
  case 9: set(t, name, INIT_MATRIX, 3, E, d, dff); return;
  default: set(t, name, INIT_MATRIX, 2, d, d, 0); return; /* q, k, v, output */
  }
}

static uint64_t elements(const rm_tensor *t) {
  uint64_t n = 1;
  for (uint32_t i = 0; i < t->ndim; i++) n *= t->shape[i];
  return n;
}

/* random_model.py's storage_type: norms and biases f32; Q8_0 needs rows of 32. */
static drd_dtype storage_type(const rm_tensor *t, drd_dtype matrix_type) {
  if (t->init == INIT_NORM || t->init == INIT_BIAS) return DRD_DTYPE_F32;
  if (matrix_type == DRD_DTYPE_Q8_0 && t->shape[t->ndim - 1] % DRD_Q8_0_BLOCK) return DRD_DTYPE_F16;
  return matrix_type;
}

uint64_t drd_random_model_param_count(const drd_hparams *hp) {
  uint64_t n = 0;
  rm_tensor t;
  for (uint32_t i = 0; i < tensor_count(hp); i++) {
    tensor_at(hp, i, &t);
    n += elements(&t);
  }
  return n;
}

/* ------------------------------------------------------------------ little-endian output */

typedef struct wr {
  FILE *f;
  uint64_t pos; /* bytes written so far */
  int err;      /* errno of the first failure */
} wr;

static void put(wr *w, const void *p, size_t n) {
  if (!w->err && n && fwrite(p, 1, n, w->f) != n) w->err = errno ? errno : EIO;
  w->pos += n;
}

static void put_le(wr *w, uint64_t v, int n) {
  unsigned char b[8];
  for (int i = 0; i < n; i++) b[i] = (unsigned char)(v >> (8 * i));
  put(w, b, (size_t)n);
}

static void put_str(wr *w, const char *s) {
  size_t n = strlen(s);
  put_le(w, n, 8);
  put(w, s, n);
}

static void pad_to(wr *w, uint64_t alignment) {
  static const unsigned char zeros[DRD_GGUF_DEFAULT_ALIGNMENT];
  put(w, zeros, (size_t)((alignment - w->pos % alignment) % alignment));
}

static void kv_head(wr *w, const char *key, uint32_t type) {
  put_str(w, key);
  put_le(w, type, 4);
}

static void kv_u32(wr *w, const char *key, uint32_t v) {
  kv_head(w, key, DRD_GGUF_U32);
  put_le(w, v, 4);
}

static void kv_f32(wr *w, const char *key, float v) {
  uint32_t bits;
  memcpy(&bits, &v, sizeof bits);
  kv_head(w, key, DRD_GGUF_F32);
  put_le(w, bits, 4);
}

static void kv_str(wr *w, const char *key, const char *s) {
  kv_head(w, key, DRD_GGUF_STRING);
  put_str(w, s);
}

static void kv_u32_arr(wr *w, const char *key, const uint32_t *v, uint32_t n) {
  kv_head(w, key, DRD_GGUF_ARRAY);
  put_le(w, DRD_GGUF_U32, 4);
  put_le(w, n, 8);
  for (uint32_t i = 0; i < n; i++) put_le(w, v[i], 4);
}

/* ------------------------------------------------------------------ vocabulary */

/* GPT-2's byte-to-unicode map as UTF-8 (docs/tokenizer.md): printable Latin-1 bytes stand for
 * themselves, the other 68 become U+0100 onwards in byte order. */
static void byte_symbols(char sym[256][3]) {
  unsigned next = 256;
  for (unsigned b = 0; b < 256; b++) {
    int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    unsigned cp = printable ? b : next++;
    if (cp < 0x80) {
      sym[b][0] = (char)cp, sym[b][1] = 0;
    } else {
      sym[b][0] = (char)(0xC0 | (cp >> 6)), sym[b][1] = (char)(0x80 | (cp & 0x3F)), sym[b][2] = 0;
    }
  }
}

/* Lower-case letters first, then space, capitals, digits, other ASCII, the rest. */
static int byte_rank(unsigned b) {
  if (b >= 'a' && b <= 'z') return 0;
  if (b == ' ') return 1;
  if (b >= 'A' && b <= 'Z') return 2;
  if (b >= '0' && b <= '9') return 3;
  if (b >= 0x21 && b <= 0x7E) return 4;
  return 5;
}

#define MAX_MERGES (256u * 256u) /* every two-byte token once */

/* The first n byte pairs (left << 8 | right) in merge-rank order: common English bigrams and
 * space + letter first (so text finds merges even in tiny's 41), then every pair by class.
 * Every merge joins two single-byte tokens into a new two-byte token, so the vocabulary is
 * valid by construction. */
static drd_status byte_pairs(uint32_t n, uint16_t *pair) {
  static const char common[] = "th he in er an re on at en nd ti es or te of ed is it al ar st to nt ng se ha "
                               "as ou io le ve co me de hi ri ro ic ne ea ra ce li ch ll be ma si om ur ld wo "
                               " t  a  s  w  o  i  h  b  c  m  f  p  d  l  r  n  e  g  u  y ";
  uint8_t *used = calloc(MAX_MERGES / 8, 1);
  if (!used) return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "random model: out of host memory");
  uint32_t k = 0;
#define TAKE(l, r)                                                  \
  do {                                                              \
    unsigned p_ = (unsigned)(l) << 8 | (unsigned)(r);               \
    if (k < n && !(used[p_ >> 3] & (1u << (p_ & 7)))) {             \
      used[p_ >> 3] |= (uint8_t)(1u << (p_ & 7));                   \
      pair[k++] = (uint16_t)p_;                                     \
    }                                                               \
  } while (0)
  for (size_t i = 0; i + 1 < sizeof common; i += 3) TAKE((unsigned char)common[i], (unsigned char)common[i + 1]);
  for (int level = 0; level <= 5 && k < n; level++)
    for (unsigned l = 0; l < 256 && k < n; l++)
      for (unsigned r = 0; r < 256 && k < n; r++) {
        int rl = byte_rank(l), rr = byte_rank(r);
        if ((rl > rr ? rl : rr) == level) TAKE(l, r);
      }
#undef TAKE
  free(used);
  return DRD_OK;
}

/* tokenizer.ggml.*: ids 0..255 the bytes, then one token per merge, then <|bos|>, <|eos|>,
 * <|pad|> at V-3, V-2, V-1 (random_vocab's layout). */
static void write_vocab(wr *w, uint32_t V, const uint16_t *pair) {
  static const char *const specials[3] = {"<|bos|>", "<|eos|>", "<|pad|>"};
  char sym[256][3], s[8];
  byte_symbols(sym);
  const uint32_t n_merges = V - 259;
  kv_str(w, "tokenizer.ggml.model", "gpt2");
  kv_head(w, "tokenizer.ggml.tokens", DRD_GGUF_ARRAY);
  put_le(w, DRD_GGUF_STRING, 4);
  put_le(w, V, 8);
  for (uint32_t b = 0; b < 256; b++) put_str(w, sym[b]);
  for (uint32_t k = 0; k < n_merges; k++) {
    snprintf(s, sizeof s, "%s%s", sym[pair[k] >> 8], sym[pair[k] & 255]);
    put_str(w, s);
  }
  for (int i = 0; i < 3; i++) put_str(w, specials[i]);
  kv_head(w, "tokenizer.ggml.merges", DRD_GGUF_ARRAY);
  put_le(w, DRD_GGUF_STRING, 4);
  put_le(w, n_merges, 8);
  for (uint32_t k = 0; k < n_merges; k++) {
    snprintf(s, sizeof s, "%s %s", sym[pair[k] >> 8], sym[pair[k] & 255]);
    put_str(w, s);
  }
  kv_u32(w, "tokenizer.ggml.bos_token_id", V - 3);
  kv_u32(w, "tokenizer.ggml.eos_token_id", V - 2);
  kv_u32(w, "tokenizer.ggml.padding_token_id", V - 1);
}

/* ------------------------------------------------------------------ metadata */

/* general.architecture, then SPEC section 2's keys in random_model.py's metadata_values order. */
static void write_hparams(wr *w, const drd_hparams *hp) {
  static const char *const sched[3] = {"sqrt", "cosine", "linear_logsnr"};
  kv_str(w, "general.architecture", "drdiff");
  kv_u32(w, "drdiff.vocab_size", hp->V);
  kv_u32(w, "drdiff.embed_dim", hp->de);
  kv_u32(w, "drdiff.hidden_dim", hp->d);
  kv_u32(w, "drdiff.block_count", hp->L);
  kv_u32(w, "drdiff.head_count", hp->H);
  kv_u32(w, "drdiff.time_embed_dim", hp->dt);
  kv_u32(w, "drdiff.expert_count", hp->E);
  kv_u32(w, "drdiff.expert_hidden_dim", hp->dff);
  kv_u32(w, "drdiff.expert_max_used", hp->kmax);
  kv_f32(w, "drdiff.expert_route_p", hp->route_p);
  kv_f32(w, "drdiff.rope_theta", hp->rope_theta);
  kv_f32(w, "drdiff.norm_eps", hp->norm_eps);
  kv_u32(w, "drdiff.context_length", hp->context_length);
  kv_str(w, "drdiff.diffusion.schedule", sched[hp->schedule]);
  kv_f32(w, "drdiff.diffusion.time_scale", hp->time_scale);
  kv_u32(w, "drdiff.hsa.block_size", hp->B);
  kv_u32(w, "drdiff.hsa.dense_max", hp->N1);
  const uint32_t mode_max[2] = {hp->N2, hp->N3};
  kv_u32_arr(w, "drdiff.hsa.mode_max", mode_max, 2);
  kv_u32_arr(w, "drdiff.hsa.window", hp->window, 3);
  kv_u32_arr(w, "drdiff.hsa.dilation", hp->dilation, 3);
  kv_u32_arr(w, "drdiff.hsa.dilated_hops", hp->hops, 3);
  kv_u32_arr(w, "drdiff.hsa.global_blocks", hp->global, 3);
  kv_u32(w, "drdiff.sampler.steps", hp->steps);
  kv_f32(w, "drdiff.sas.gamma", hp->sas_gamma);
  kv_f32(w, "drdiff.sas.temperature", hp->sas_temperature);
  kv_f32(w, "drdiff.sas.start", hp->sas_start);
}
#define N_KV (1 + 26 + 6) /* architecture, SPEC keys, tokenizer keys */

/* ------------------------------------------------------------------ weights */

/* Elements per chunk: a multiple of 4 (one Philox block) and of 32 (one Q8_0 block). */
#define CHUNK 16384u

static uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* x[i] = standard normal number first + i of the stream `key` (first a multiple of 4). One
 * Philox block gives four words, two Box-Muller pairs; f32 math is plenty for weights. */
static void normals(uint64_t key, uint64_t first, float *x, size_t n) {
  const uint32_t k[2] = {(uint32_t)key, (uint32_t)(key >> 32)};
  for (size_t i = 0; i < n; i += 4) {
    const uint64_t j = (first + i) / 4;
    const uint32_t ctr[4] = {(uint32_t)j, (uint32_t)(j >> 32), 0, 0};
    uint32_t r[4];
    drd_philox4x32_10(ctr, k, r);
    float z[4];
    for (int p = 0; p < 2; p++) {
      const float u1 = ((float)(r[2 * p] >> 8) + 1.0f) * 0x1p-24f; /* (0, 1]: finite log */
      const float u2 = (float)(r[2 * p + 1] >> 8) * 0x1p-24f;
      const float radius = sqrtf(-2.0f * logf(u1)), angle = 6.28318530717958648f * u2;
      z[2 * p] = radius * cosf(angle);
      z[2 * p + 1] = radius * sinf(angle);
    }
    for (size_t q = 0; q < 4 && i + q < n; q++) x[i + q] = z[q];
  }
}

/* Encodes n values as type into out; returns the byte count. */
static size_t encode(drd_dtype type, const float *x, size_t n, unsigned char *out) {
  switch (type) {
  case DRD_DTYPE_F16:
  case DRD_DTYPE_BF16:
    for (size_t i = 0; i < n; i++) {
      uint16_t h = type == DRD_DTYPE_F16 ? drd_f32_to_f16(x[i]) : drd_f32_to_bf16(x[i]);
      out[2 * i] = (unsigned char)h, out[2 * i + 1] = (unsigned char)(h >> 8);
    }
    return 2 * n;
  case DRD_DTYPE_Q8_0:
    drd_f32_to_q8_0(x, n, out);
    return n / DRD_Q8_0_BLOCK * DRD_Q8_0_BLOCK_BYTES;
  default:
    for (size_t i = 0; i < n; i++) {
      uint32_t u;
      memcpy(&u, &x[i], sizeof u);
      for (int b = 0; b < 4; b++) out[4 * i + (size_t)b] = (unsigned char)(u >> (8 * b));
    }
    return 4 * n;
  }
}

/* random_model.py's _init: norms 1 + 0.1 z, biases 0.1 z, token_embd z, other matrices
 * z / sqrt(fan_in) with fan_in the last (input) dimension. Each tensor has its own Philox
 * key from (seed, index), like Python's per-tensor generator. */
static void write_weights(wr *w, const rm_tensor *t, uint32_t index, uint64_t seed, drd_dtype type, float *x,
                          unsigned char *bytes) {
  const uint64_t key = splitmix64(seed ^ splitmix64(index)), n = elements(t);
  const float scale = t->init == INIT_MATRIX  ? 1.0f / sqrtf((float)t->shape[t->ndim - 1])
                      : t->init == INIT_EMBED ? 1.0f
                                              : 0.1f;
  const float offset = t->init == INIT_NORM ? 1.0f : 0.0f;
  for (uint64_t first = 0; first < n && !w->err; first += CHUNK) {
    const size_t m = (size_t)(n - first < CHUNK ? n - first : CHUNK);
    normals(key, first, x, m);
    for (size_t i = 0; i < m; i++) x[i] = offset + scale * x[i];
    put(w, bytes, encode(type, x, m, bytes));
  }
  pad_to(w, DRD_GGUF_DEFAULT_ALIGNMENT);
}

/* ------------------------------------------------------------------ the file */

drd_status drd_random_model_write(const drd_hparams *hp, uint64_t seed, drd_dtype matrix_type, const char *path) {
  if (!hp || !path) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "drd_random_model_write: NULL argument");
  if (hp->V < 259 || hp->V - 259 > MAX_MERGES)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "random model: V = %u, but the vocabulary needs 259..%u", hp->V,
                    259 + MAX_MERGES);
  if (!drd_dtype_valid(matrix_type) || (unsigned)hp->schedule > DRD_SCHEDULE_LINEAR_LOGSNR)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "random model: unknown weight type %d or schedule %d",
                    (int)matrix_type, (int)hp->schedule);
  const uint32_t n_merges = hp->V - 259, nt = tensor_count(hp);
  uint16_t *pair = malloc((n_merges ? n_merges : 1) * sizeof *pair);
  float *x = malloc(CHUNK * sizeof *x);
  unsigned char *bytes = malloc(CHUNK * 4); /* the widest encoding: f32 */
  FILE *f = fopen(path, "wb");
  drd_status st = DRD_OK;
  if (!f) {
    st = drd_fail(DRD_ERROR_IO, "cannot create '%s': %s", path, strerror(errno));
    goto done;
  }
  if (!pair || !x || !bytes) {
    st = drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "random model: out of host memory");
    goto done;
  }
  if ((st = byte_pairs(n_merges, pair)) != DRD_OK) goto done;
  wr w = {.f = f};
  put(&w, "GGUF", 4);
  put_le(&w, DRD_GGUF_VERSION, 4);
  put_le(&w, nt, 8);
  put_le(&w, N_KV, 8);
  write_hparams(&w, hp);
  write_vocab(&w, hp->V, pair);
  /* tensor infos: name, n_dims, ne (fastest first), type, offset in the data section */
  uint64_t offset = 0;
  rm_tensor t;
  for (uint32_t i = 0; i < nt; i++) {
    tensor_at(hp, i, &t);
    const drd_dtype type = storage_type(&t, matrix_type);
    uint64_t nbytes = 0;
    drd_dtype_nbytes(type, elements(&t), &nbytes); /* cannot fail: Q8_0 rows are checked above */
    put_str(&w, t.name);
    put_le(&w, t.ndim, 4);
    for (uint32_t k = t.ndim; k-- > 0;) put_le(&w, t.shape[k], 8);
    put_le(&w, type, 4);
    put_le(&w, offset, 8);
    offset = (offset + nbytes + DRD_GGUF_DEFAULT_ALIGNMENT - 1) / DRD_GGUF_DEFAULT_ALIGNMENT * DRD_GGUF_DEFAULT_ALIGNMENT;
  }
  pad_to(&w, DRD_GGUF_DEFAULT_ALIGNMENT);
  for (uint32_t i = 0; i < nt && !w.err; i++) {
    tensor_at(hp, i, &t);
    write_weights(&w, &t, i, seed, storage_type(&t, matrix_type), x, bytes);
  }
  if (w.err) st = drd_fail(DRD_ERROR_IO, "cannot write '%s': %s", path, strerror(w.err));
done:
  if (f && fclose(f) != 0 && st == DRD_OK) st = drd_fail(DRD_ERROR_IO, "cannot write '%s': %s", path, strerror(errno));
  free(pair);
  free(x);
  free(bytes);
  return st;
}
