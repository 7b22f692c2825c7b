/* In-memory GGUF writer for tests and the random DrDiff test models built with it. */
#include "util_gguf_build.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dtype.h"
#include "gguf.h"
#include "util_rand.h"

/* ------------------------------------------------------------------ byte buffer */

typedef struct bbuf {
  unsigned char *p;
  size_t len, cap;
  int failed;
} bbuf;

static void bb_put(bbuf *b, const void *src, size_t n) {
  if (b->failed) return;
  if (b->cap - b->len < n) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p) {
      b->failed = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->len, src, n);
  b->len += n;
}

static void bb_le(bbuf *b, uint64_t v, int n) {
  unsigned char t[8];
  for (int i = 0; i < n; i++) t[i] = (unsigned char)(v >> (8 * i));
  bb_put(b, t, (size_t)n);
}

static void bb_str(bbuf *b, const char *s, size_t n) {
  bb_le(b, n, 8);
  bb_put(b, s, n);
}

/* ------------------------------------------------------------------ builder */

typedef struct bkv {
  char *key;
  uint32_t type;
  unsigned char *val;
  size_t val_len;
  drd_gguf_kv_layout lay;
} bkv;

typedef struct btensor {
  char *name;
  uint32_t type, n_dims;
  uint64_t ne[4];
  unsigned char *data;
  size_t nbytes;
  float *source; /* f32 values it came from, or NULL */
  drd_gguf_tensor_layout lay;
} btensor;

struct drd_gguf_builder {
  bkv *kv;
  size_t n_kv, cap_kv;
  btensor *t;
  size_t n_t, cap_t;
  size_t data_start;
  int failed;
};

drd_gguf_builder *drd_gguf_builder_create(void) { return calloc(1, sizeof(drd_gguf_builder)); }

static void free_kv(bkv *k) {
  free(k->key);
  free(k->val);
}

static void free_tensor(btensor *t) {
  free(t->name);
  free(t->data);
  free(t->source);
}

void drd_gguf_builder_destroy(drd_gguf_builder *b) {
  if (!b) return;
  for (size_t i = 0; i < b->n_kv; i++) free_kv(&b->kv[i]);
  for (size_t i = 0; i < b->n_t; i++) free_tensor(&b->t[i]);
  free(b->kv);
  free(b->t);
  free(b);
}

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

static int set_encoded(drd_gguf_builder *b, const char *key, uint32_t type, bbuf *val) {
  if (val->failed || b->failed) {
    free(val->p);
    b->failed = 1;
    return -1;
  }
  for (size_t i = 0; i < b->n_kv; i++)
    if (!strcmp(b->kv[i].key, key)) {
      free(b->kv[i].val);
      b->kv[i].type = type;
      b->kv[i].val = val->p;
      b->kv[i].val_len = val->len;
      return 0;
    }
  if (b->n_kv == b->cap_kv) {
    size_t cap = b->cap_kv ? b->cap_kv * 2 : 64;
    bkv *kv = realloc(b->kv, cap * sizeof *kv);
    if (!kv) goto fail;
    b->kv = kv;
    b->cap_kv = cap;
  }
  bkv *k = &b->kv[b->n_kv];
  memset(k, 0, sizeof *k);
  if (!(k->key = dup_str(key))) goto fail;
  k->type = type;
  k->val = val->p;
  k->val_len = val->len;
  b->n_kv++;
  return 0;
fail:
  free(val->p);
  b->failed = 1;
  return -1;
}

int drd_gguf_set_raw(drd_gguf_builder *b, const char *key, uint32_t type, const void *value,
                     size_t nbytes) {
  bbuf v = {0};
  bb_put(&v, value, nbytes);
  return set_encoded(b, key, type, &v);
}

static int set_scalar(drd_gguf_builder *b, const char *key, uint32_t type, uint64_t bits, int n) {
  bbuf v = {0};
  bb_le(&v, bits, n);
  return set_encoded(b, key, type, &v);
}

static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

int drd_gguf_set_u32(drd_gguf_builder *b, const char *key, uint32_t v) {
  return set_scalar(b, key, DRD_GGUF_U32, v, 4);
}
int drd_gguf_set_i32(drd_gguf_builder *b, const char *key, int32_t v) {
  return set_scalar(b, key, DRD_GGUF_I32, (uint32_t)v, 4);
}
int drd_gguf_set_u64(drd_gguf_builder *b, const char *key, uint64_t v) {
  return set_scalar(b, key, DRD_GGUF_U64, v, 8);
}
int drd_gguf_set_f32(drd_gguf_builder *b, const char *key, float v) {
  return set_scalar(b, key, DRD_GGUF_F32, f32_bits(v), 4);
}
int drd_gguf_set_bool(drd_gguf_builder *b, const char *key, int v) {
  return set_scalar(b, key, DRD_GGUF_BOOL, v ? 1 : 0, 1);
}

int drd_gguf_set_str(drd_gguf_builder *b, const char *key, const char *s) {
  bbuf v = {0};
  bb_str(&v, s, strlen(s));
  return set_encoded(b, key, DRD_GGUF_STRING, &v);
}

int drd_gguf_set_u32_array(drd_gguf_builder *b, const char *key, const uint32_t *x, size_t n) {
  bbuf v = {0};
  bb_le(&v, DRD_GGUF_U32, 4);
  bb_le(&v, n, 8);
  for (size_t i = 0; i < n; i++) bb_le(&v, x[i], 4);
  return set_encoded(b, key, DRD_GGUF_ARRAY, &v);
}

int drd_gguf_set_f32_array(drd_gguf_builder *b, const char *key, const float *x, size_t n) {
  bbuf v = {0};
  bb_le(&v, DRD_GGUF_F32, 4);
  bb_le(&v, n, 8);
  for (size_t i = 0; i < n; i++) bb_le(&v, f32_bits(x[i]), 4);
  return set_encoded(b, key, DRD_GGUF_ARRAY, &v);
}

int drd_gguf_set_str_array(drd_gguf_builder *b, const char *key, const char *const *x, size_t n) {
  bbuf v = {0};
  bb_le(&v, DRD_GGUF_STRING, 4);
  bb_le(&v, n, 8);
  for (size_t i = 0; i < n; i++) bb_str(&v, x[i], strlen(x[i]));
  return set_encoded(b, key, DRD_GGUF_ARRAY, &v);
}

int drd_gguf_remove_kv(drd_gguf_builder *b, const char *key) {
  for (size_t i = 0; i < b->n_kv; i++)
    if (!strcmp(b->kv[i].key, key)) {
      free_kv(&b->kv[i]);
      memmove(&b->kv[i], &b->kv[i + 1], (b->n_kv - i - 1) * sizeof *b->kv);
      b->n_kv--;
      return 0;
    }
  return -1;
}

int drd_gguf_remove_tensor(drd_gguf_builder *b, const char *name) {
  for (size_t i = 0; i < b->n_t; i++)
    if (!strcmp(b->t[i].name, name)) {
      free_tensor(&b->t[i]);
      memmove(&b->t[i], &b->t[i + 1], (b->n_t - i - 1) * sizeof *b->t);
      b->n_t--;
      return 0;
    }
  return -1;
}

/* Takes ownership of data and source. */
static int add_tensor(drd_gguf_builder *b, const char *name, uint32_t type, uint32_t n_dims,
                      const uint64_t *ne, unsigned char *data, size_t nbytes, float *source) {
  btensor *t = NULL;
  if (b->failed) goto fail;
  for (size_t i = 0; i < b->n_t; i++)
    if (!strcmp(b->t[i].name, name)) {
      t = &b->t[i];
      free(t->data);
      free(t->source);
      break;
    }
  if (!t) {
    if (b->n_t == b->cap_t) {
      size_t cap = b->cap_t ? b->cap_t * 2 : 64;
      btensor *nt = realloc(b->t, cap * sizeof *nt);
      if (!nt) goto fail;
      b->t = nt;
      b->cap_t = cap;
    }
    t = &b->t[b->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = dup_str(name))) goto fail;
    b->n_t++;
  }
  t->type = type;
  t->n_dims = n_dims;
  for (uint32_t i = 0; i < 4; i++) t->ne[i] = i < n_dims ? ne[i] : 1;
  t->data = data;
  t->nbytes = nbytes;
  t->source = source;
  return 0;
fail:
  free(data);
  free(source);
  b->failed = 1;
  return -1;
}

int drd_gguf_add_tensor_raw(drd_gguf_builder *b, const char *name, uint32_t type, uint32_t n_dims,
                            const uint64_t *ne, const void *data, size_t nbytes) {
  unsigned char *copy = malloc(nbytes ? nbytes : 1);
  if (!copy) {
    b->failed = 1;
    return -1;
  }
  if (nbytes) memcpy(copy, data, nbytes);
  return add_tensor(b, name, type, n_dims > 4 ? 4 : n_dims, ne, copy, nbytes, NULL);
}

int drd_gguf_add_tensor_f32(drd_gguf_builder *b, const char *name, drd_dtype type, uint32_t ndim,
                            const uint64_t *shape, const float *values) {
  uint64_t ne[4], n = 1, nbytes;
  if (ndim < 1 || ndim > 4) return -1;
  for (uint32_t i = 0; i < ndim; i++) {
    ne[i] = shape[ndim - 1 - i];
    n *= shape[i];
  }
  if (!drd_dtype_nbytes(type, n, &nbytes) || (type == DRD_DTYPE_Q8_0 && ne[0] % DRD_Q8_0_BLOCK))
    return -1;
  unsigned char *data = malloc(nbytes ? (size_t)nbytes : 1);
  float *src = malloc(n ? (size_t)n * sizeof *src : 1);
  if (!data || !src) {
    free(data);
    free(src);
    b->failed = 1;
    return -1;
  }
  memcpy(src, values, (size_t)n * sizeof *src);
  switch (type) {
  case DRD_DTYPE_F32:
    for (uint64_t i = 0; i < n; i++) {
      uint32_t u = f32_bits(values[i]);
      for (int k = 0; k < 4; k++) data[4 * i + (uint64_t)k] = (unsigned char)(u >> (8 * k));
    }
    break;
  case DRD_DTYPE_F16:
  case DRD_DTYPE_BF16:
    for (uint64_t i = 0; i < n; i++) {
      uint16_t h = type == DRD_DTYPE_F16 ? drd_f32_to_f16(values[i]) : drd_f32_to_bf16(values[i]);
      data[2 * i] = (unsigned char)h;
      data[2 * i + 1] = (unsigned char)(h >> 8);
    }
    break;
  case DRD_DTYPE_Q8_0: drd_f32_to_q8_0(values, (size_t)n, data); break;
  }
  return add_tensor(b, name, (uint32_t)type, ndim, ne, data, (size_t)nbytes, src);
}

static const btensor *find_t(const drd_gguf_builder *b, const char *name) {
  for (size_t i = 0; i < b->n_t; i++)
    if (!strcmp(b->t[i].name, name)) return &b->t[i];
  return NULL;
}

const void *drd_gguf_tensor_bytes(const drd_gguf_builder *b, const char *name, size_t *nbytes) {
  const btensor *t = find_t(b, name);
  if (!t) return NULL;
  if (nbytes) *nbytes = t->nbytes;
  return t->data;
}

const float *drd_gguf_tensor_source(const drd_gguf_builder *b, const char *name) {
  const btensor *t = find_t(b, name);
  return t ? t->source : NULL;
}

static size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

int drd_gguf_builder_write(drd_gguf_builder *b, uint8_t **out, size_t *size) {
  *out = NULL;
  *size = 0;
  if (b->failed) return -1;
  size_t alignment = DRD_GGUF_DEFAULT_ALIGNMENT;
  for (size_t i = 0; i < b->n_kv; i++)
    if (!strcmp(b->kv[i].key, "general.alignment") && b->kv[i].type == DRD_GGUF_U32 &&
        b->kv[i].val_len == 4) {
      uint32_t a = (uint32_t)b->kv[i].val[0] | (uint32_t)b->kv[i].val[1] << 8 |
                   (uint32_t)b->kv[i].val[2] << 16 | (uint32_t)b->kv[i].val[3] << 24;
      if (a && !(a & (a - 1))) alignment = a;
    }
  bbuf f = {0};
  bb_put(&f, "GGUF", 4);
  bb_le(&f, DRD_GGUF_VERSION, 4);
  bb_le(&f, b->n_t, 8);
  bb_le(&f, b->n_kv, 8);
  for (size_t i = 0; i < b->n_kv; i++) {
    bkv *k = &b->kv[i];
    k->lay.key_len = f.len;
    bb_str(&f, k->key, strlen(k->key));
    k->lay.type = f.len;
    bb_le(&f, k->type, 4);
    k->lay.value = f.len;
    bb_put(&f, k->val, k->val_len);
    k->lay.end = f.len;
  }
  uint64_t cur = 0;
  for (size_t i = 0; i < b->n_t; i++) {
    btensor *t = &b->t[i];
    t->lay.name_len = f.len;
    bb_str(&f, t->name, strlen(t->name));
    t->lay.n_dims = f.len;
    bb_le(&f, t->n_dims, 4);
    t->lay.ne = f.len;
    for (uint32_t d = 0; d < t->n_dims; d++) bb_le(&f, t->ne[d], 8);
    t->lay.type = f.len;
    bb_le(&f, t->type, 4);
    t->lay.offset = f.len;
    bb_le(&f, cur, 8);
    t->lay.data = (size_t)cur; /* made absolute below */
    cur = align_up((size_t)cur + t->nbytes, alignment);
  }
  /* The data section; no padding after the last tensor, so every proper prefix of a file
   * with tensors is truncated somewhere that matters. */
  static const unsigned char zeros[256];
  size_t pad = b->n_t ? align_up(f.len, alignment) - f.len : 0;
  b->data_start = f.len + pad;
  while (pad) {
    size_t n = pad < sizeof zeros ? pad : sizeof zeros;
    bb_put(&f, zeros, n);
    pad -= n;
  }
  for (size_t i = 0; i < b->n_t; i++) {
    btensor *t = &b->t[i];
    t->lay.data += b->data_start;
    while (f.len < t->lay.data && !f.failed) {
      size_t n = t->lay.data - f.len;
      bb_put(&f, zeros, n < sizeof zeros ? n : sizeof zeros);
    }
    bb_put(&f, t->data, t->nbytes);
  }
  if (f.failed) {
    free(f.p);
    return -1;
  }
  *out = f.p;
  *size = f.len;
  return 0;
}

int drd_gguf_builder_kv_layout(const drd_gguf_builder *b, const char *key, drd_gguf_kv_layout *l) {
  for (size_t i = 0; i < b->n_kv; i++)
    if (!strcmp(b->kv[i].key, key)) {
      *l = b->kv[i].lay;
      return 0;
    }
  return -1;
}

int drd_gguf_builder_tensor_layout(const drd_gguf_builder *b, const char *name,
                                   drd_gguf_tensor_layout *l) {
  const btensor *t = find_t(b, name);
  if (!t) return -1;
  *l = t->lay;
  return 0;
}

size_t drd_gguf_builder_data_start(const drd_gguf_builder *b) { return b->data_start; }
size_t drd_gguf_builder_kv_count(const drd_gguf_builder *b) { return b->n_kv; }
size_t drd_gguf_builder_tensor_count(const drd_gguf_builder *b) { return b->n_t; }

/* ------------------------------------------------------------------ test vocabulary */

/* Open-addressing string set, so generating tens of thousands of merges stays linear. */
typedef struct strset {
  const char **slot;
  size_t cap;
} strset;

static uint64_t fnv1a(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* 1 if s was added, 0 if it was already there. */
static int strset_add(strset *st, const char *s) {
  size_t i = (size_t)fnv1a(s) & (st->cap - 1);
  while (st->slot[i]) {
    if (!strcmp(st->slot[i], s)) return 0;
    i = (i + 1) & (st->cap - 1);
  }
  st->slot[i] = s;
  return 1;
}

static size_t utf8_put(char *out, unsigned cp) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  out[0] = (char)(0xC0 | (cp >> 6));
  out[1] = (char)(0x80 | (cp & 0x3F));
  return 2; /* GPT-2's byte map never goes beyond U+0143 */
}

#define G "\xC4\xA0" /* "Ġ": GPT-2's symbol for the space byte */

/* Common English merges first, so the test tokenizer has a realistic start (ordered so that
 * BPE actually reaches each one: "Ġ in" rather than "Ġi n", since "i n" ranks higher). */
static const char *const k_natural[][2] = {
    {G, "t"},  {"h", "e"},  {"i", "n"}, {G, "a"},     {"e", "r"}, {"o", "n"},  {G "t", "he"},
    {"r", "e"}, {"a", "t"}, {"e", "n"}, {"o", "r"},   {G, "s"},   {"e", "d"},  {"in", "g"},
    {G, "w"},  {G, "o"},    {"i", "s"}, {"e", "s"},   {"a", "n"}, {G, "c"},    {"i", "t"},
    {G, "b"},  {"a", "r"},  {G, "f"},   {G, "p"},     {"o", "u"}, {G, "m"},    {"a", "l"},
    {"l", "e"}, {G, "d"},   {G "o", "f"}, {G "a", "n"}, {G "an", "d"}, {G, "i"}, {G, "h"},
    {G "t", "o"}, {G, "in"}, {"l", "l"}, {"a", "s"},  {"t", "h"}, {G, "is"},
};

void drd_test_vocab_free(drd_test_vocab *v) {
  if (!v) return;
  if (v->tokens)
    for (uint32_t i = 0; i < v->n_tokens; i++) free(v->tokens[i]);
  if (v->merges)
    for (uint32_t i = 0; i < v->n_merges; i++) free(v->merges[i]);
  free(v->tokens);
  free(v->merges);
  free(v);
}

/* Appends merge "l r" and token l+r unless l+r exists. 1 added, 0 skipped, -1 no memory. */
static int add_merge(drd_test_vocab *v, strset *st, const char *l, const char *r) {
  size_t nl = strlen(l), nr = strlen(r);
  char *tok = malloc(nl + nr + 1), *mrg = malloc(nl + nr + 2);
  if (!tok || !mrg) {
    free(tok);
    free(mrg);
    return -1;
  }
  memcpy(tok, l, nl);
  memcpy(tok + nl, r, nr + 1);
  memcpy(mrg, l, nl);
  mrg[nl] = ' ';
  memcpy(mrg + nl + 1, r, nr + 1);
  if (!strset_add(st, tok)) {
    free(tok);
    free(mrg);
    return 0;
  }
  v->tokens[v->n_tokens++] = tok;
  v->merges[v->n_merges++] = mrg;
  return 1;
}

drd_test_vocab *drd_test_vocab_create(uint32_t V) {
  if (V > 40000) return NULL;
  drd_test_vocab *v = calloc(1, sizeof *v);
  strset st = {0};
  if (!v) return NULL;
  v->bos_id = v->eos_id = v->pad_id = -1;
  v->tokens = calloc(V ? V : 1, sizeof *v->tokens);
  v->merges = calloc(V ? V : 1, sizeof *v->merges);
  for (st.cap = 1; st.cap < 2 * (size_t)V + 2; st.cap *= 2) {}
  st.slot = calloc(st.cap, sizeof *st.slot);
  if (!v->tokens || !v->merges || !st.slot) goto fail;

  /* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the rest are
   * shifted to U+0100 and up in byte order. */
  char bytesym[256][3];
  unsigned next = 256;
  for (unsigned c = 0; c < 256; c++) {
    int printable = (c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174);
    size_t n = utf8_put(bytesym[c], printable ? c : next++);
    bytesym[c][n] = 0;
  }
  uint32_t n_bytes = V < 259 ? V : 256;
  for (uint32_t c = 0; c < n_bytes; c++) {
    if (!(v->tokens[v->n_tokens] = dup_str(bytesym[c]))) goto fail;
    strset_add(&st, v->tokens[v->n_tokens++]);
  }
  if (V < 259) {
    free(st.slot);
    return v;
  }
  uint32_t want = V - 3;
  for (size_t i = 0; i < sizeof k_natural / sizeof k_natural[0] && v->n_tokens < want; i++)
    if (add_merge(v, &st, k_natural[i][0], k_natural[i][1]) < 0) goto fail;
  /* Then systematic ones: "xy", "Ġx", "Ġxy", "xyz", "Ġxyz" for letters x, y, z. */
  char l[8], r[8];
  for (int pass = 0; pass < 5 && v->n_tokens < want; pass++) {
    int n_outer = pass == 1 ? 1 : pass >= 3 ? 26 * 26 : 26;
    for (int a = 0; a < n_outer && v->n_tokens < want; a++)
      for (int z = 0; z < 26 && v->n_tokens < want; z++) {
        char x = (char)('a' + (pass >= 3 ? a / 26 : a)), y = (char)('a' + a % 26);
        switch (pass) {
        case 0: snprintf(l, sizeof l, "%c", x); break;
        case 1: snprintf(l, sizeof l, G); break;
        case 2: snprintf(l, sizeof l, G "%c", x); break;
        case 3: snprintf(l, sizeof l, "%c%c", x, y); break;
        case 4: snprintf(l, sizeof l, G "%c%c", x, y); break;
        }
        snprintf(r, sizeof r, "%c", 'a' + z);
        if (add_merge(v, &st, l, r) < 0) goto fail;
      }
  }
  if (v->n_tokens < want) goto fail; /* V beyond what this scheme makes */
  static const char *const specials[3] = {"<|bos|>", "<|endoftext|>", "<|pad|>"};
  for (int i = 0; i < 3; i++)
    if (!(v->tokens[v->n_tokens++] = dup_str(specials[i]))) goto fail;
  v->bos_id = (int32_t)V - 3;
  v->eos_id = (int32_t)V - 2;
  v->pad_id = (int32_t)V - 1;
  free(st.slot);
  return v;
fail:
  free(st.slot);
  drd_test_vocab_free(v);
  return NULL;
}

/* ------------------------------------------------------------------ test models */

void drd_test_tiny_hparams(drd_hparams *hp) {
  memset(hp, 0, sizeof *hp);
  hp->V = 300, hp->de = 16, hp->d = 64, hp->L = 2, hp->H = 4, hp->dt = 32;
  hp->E = 4, hp->dff = 96, hp->kmax = 2;
  hp->route_p = 0.7f, hp->rope_theta = 10000.0f, hp->norm_eps = 1e-6f;
  hp->context_length = 256;
  hp->schedule = DRD_SCHEDULE_SQRT;
  hp->time_scale = 2000.0f;
  hp->B = 8, hp->N1 = 32, hp->N2 = 64, hp->N3 = 128;
  const uint32_t window[3] = {1, 1, 2}, dilation[3] = {2, 3, 4}, hops[3] = {1, 2, 2},
                 global[3] = {1, 2, 2};
  memcpy(hp->window, window, sizeof window);
  memcpy(hp->dilation, dilation, sizeof dilation);
  memcpy(hp->hops, hops, sizeof hops);
  memcpy(hp->global, global, sizeof global);
  hp->steps = 8;
  hp->sas_gamma = 0.5f, hp->sas_temperature = 0.1f, hp->sas_start = 0.5f;
}

void drd_test_small_hparams(drd_hparams *hp) {
  drd_test_tiny_hparams(hp);
  hp->V = 260, hp->de = 4, hp->d = 8, hp->L = 1, hp->H = 2, hp->dt = 4;
  hp->E = 2, hp->dff = 32, hp->kmax = 1;
}

static const char *k_schedules[] = {"sqrt", "cosine", "linear_logsnr"};

static int put_hparams(drd_gguf_builder *b, const drd_hparams *hp) {
  int e = 0;
  e |= drd_gguf_set_str(b, "general.architecture", "drdiff");
  e |= drd_gguf_set_str(b, "general.name", "drdiff-test");
  e |= drd_gguf_set_u32(b, "general.alignment", DRD_GGUF_DEFAULT_ALIGNMENT);
  e |= drd_gguf_set_u32(b, "drdiff.vocab_size", hp->V);
  e |= drd_gguf_set_u32(b, "drdiff.embed_dim", hp->de);
  e |= drd_gguf_set_u32(b, "drdiff.hidden_dim", hp->d);
  e |= drd_gguf_set_u32(b, "drdiff.block_count", hp->L);
  e |= drd_gguf_set_u32(b, "drdiff.head_count", hp->H);
  e |= drd_gguf_set_u32(b, "drdiff.time_embed_dim", hp->dt);
  e |= drd_gguf_set_u32(b, "drdiff.expert_count", hp->E);
  e |= drd_gguf_set_u32(b, "drdiff.expert_hidden_dim", hp->dff);
  e |= drd_gguf_set_u32(b, "drdiff.expert_max_used", hp->kmax);
  e |= drd_gguf_set_f32(b, "drdiff.expert_route_p", hp->route_p);
  e |= drd_gguf_set_f32(b, "drdiff.rope_theta", hp->rope_theta);
  e |= drd_gguf_set_f32(b, "drdiff.norm_eps", hp->norm_eps);
  e |= drd_gguf_set_u32(b, "drdiff.context_length", hp->context_length);
  e |= drd_gguf_set_str(b, "drdiff.diffusion.schedule",
                        (unsigned)hp->schedule < 3 ? k_schedules[hp->schedule] : "bogus");
  e |= drd_gguf_set_f32(b, "drdiff.diffusion.time_scale", hp->time_scale);
  e |= drd_gguf_set_u32(b, "drdiff.hsa.block_size", hp->B);
  e |= drd_gguf_set_u32(b, "drdiff.hsa.dense_max", hp->N1);
  const uint32_t mode_max[2] = {hp->N2, hp->N3};
  e |= drd_gguf_set_u32_array(b, "drdiff.hsa.mode_max", mode_max, 2);
  e |= drd_gguf_set_u32_array(b, "drdiff.hsa.window", hp->window, 3);
  e |= drd_gguf_set_u32_array(b, "drdiff.hsa.dilation", hp->dilation, 3);
  e |= drd_gguf_set_u32_array(b, "drdiff.hsa.dilated_hops", hp->hops, 3);
  e |= drd_gguf_set_u32_array(b, "drdiff.hsa.global_blocks", hp->global, 3);
  e |= drd_gguf_set_u32(b, "drdiff.sampler.steps", hp->steps);
  e |= drd_gguf_set_f32(b, "drdiff.sas.gamma", hp->sas_gamma);
  e |= drd_gguf_set_f32(b, "drdiff.sas.temperature", hp->sas_temperature);
  e |= drd_gguf_set_f32(b, "drdiff.sas.start", hp->sas_start);
  return e ? -1 : 0;
}

static int put_vocab(drd_gguf_builder *b, uint32_t V, int no_specials) {
  drd_test_vocab *v = drd_test_vocab_create(V);
  if (!v) return -1;
  int e = 0;
  e |= drd_gguf_set_str(b, "tokenizer.ggml.model", "gpt2");
  e |= drd_gguf_set_str_array(b, "tokenizer.ggml.tokens", (const char *const *)v->tokens,
                              v->n_tokens);
  e |= drd_gguf_set_str_array(b, "tokenizer.ggml.merges", (const char *const *)v->merges,
                              v->n_merges);
  if (!no_specials && v->bos_id >= 0) {
    e |= drd_gguf_set_u32(b, "tokenizer.ggml.bos_token_id", (uint32_t)v->bos_id);
    e |= drd_gguf_set_u32(b, "tokenizer.ggml.eos_token_id", (uint32_t)v->eos_id);
    e |= drd_gguf_set_u32(b, "tokenizer.ggml.padding_token_id", (uint32_t)v->pad_id);
  }
  drd_test_vocab_free(v);
  return e ? -1 : 0;
}

typedef struct model_gen {
  drd_gguf_builder *b;
  drd_rng rng;
  const drd_test_model_desc *desc;
  unsigned n_matrices; /* for mixed_types */
  int failed;
} model_gen;

/* kind: 0 matrix (values in +-scale), 1 norm (1 +- 0.1, f32), 2 bias (+-0.1, f32). */
static void gen_tensor(model_gen *g, const char *name, uint32_t ndim, uint64_t s0, uint64_t s1,
                       uint64_t s2, int kind, float scale) {
  if (g->failed) return;
  uint64_t shape[3] = {s0, s1, s2}, n = 1;
  for (uint32_t i = 0; i < ndim; i++) n *= shape[i];
  float *x = malloc(n ? (size_t)n * sizeof *x : 1);
  if (!x) {
    g->failed = 1;
    return;
  }
  for (uint64_t i = 0; i < n; i++)
    x[i] = kind == 1   ? 1.0f + drd_rng_uniform(&g->rng, -0.1f, 0.1f)
           : kind == 2 ? drd_rng_uniform(&g->rng, -0.1f, 0.1f)
                       : drd_rng_uniform(&g->rng, -scale, scale);
  drd_dtype type = DRD_DTYPE_F32;
  if (kind == 0) {
    static const drd_dtype cycle[4] = {DRD_DTYPE_F32, DRD_DTYPE_F16, DRD_DTYPE_Q8_0,
                                       DRD_DTYPE_BF16};
    type = g->desc->mixed_types ? cycle[g->n_matrices++ % 4] : g->desc->matrix_type;
    if (type == DRD_DTYPE_Q8_0 && shape[ndim - 1] % DRD_Q8_0_BLOCK) type = DRD_DTYPE_F16;
  }
  if (drd_gguf_add_tensor_f32(g->b, name, type, ndim, shape, x)) g->failed = 1;
  free(x);
}

drd_gguf_builder *drd_test_model_builder(const drd_test_model_desc *desc) {
  drd_hparams tiny;
  const drd_hparams *hp = desc->hp;
  if (!hp) {
    drd_test_tiny_hparams(&tiny);
    hp = &tiny;
  }
  model_gen g = {drd_gguf_builder_create(), {desc->seed}, desc, 0, 0};
  if (!g.b) return NULL;
  if (put_hparams(g.b, hp) || put_vocab(g.b, hp->V, desc->no_special_tokens)) g.failed = 1;
  uint64_t V = hp->V, de = hp->de, d = hp->d, dt = hp->dt, E = hp->E, dff = hp->dff;
  float sd = 1.0f / sqrtf((float)(d ? d : 1)), sde = 1.0f / sqrtf((float)(de ? de : 1));
  float sdt = 1.0f / sqrtf((float)(dt ? dt : 1)), sdff = 1.0f / sqrtf((float)(dff ? dff : 1));
  gen_tensor(&g, "token_embd.weight", 2, V, de, 0, 0, 1.0f);
  gen_tensor(&g, "in_proj.weight", 2, d, de, 0, 0, sde);
  gen_tensor(&g, "in_proj.bias", 1, d, 0, 0, 2, 0);
  gen_tensor(&g, "time_mlp.0.weight", 2, d, dt, 0, 0, sdt);
  gen_tensor(&g, "time_mlp.0.bias", 1, d, 0, 0, 2, 0);
  gen_tensor(&g, "time_mlp.2.weight", 2, d, d, 0, 0, sd);
  gen_tensor(&g, "time_mlp.2.bias", 1, d, 0, 0, 2, 0);
  char name[64];
  for (uint32_t l = 0; l < hp->L && !g.failed; l++) {
#define LN(what) (snprintf(name, sizeof name, "blk.%u.%s.weight", l, what), name)
    gen_tensor(&g, LN("attn_norm"), 1, d, 0, 0, 1, 0);
    gen_tensor(&g, LN("attn_q"), 2, d, d, 0, 0, sd);
    gen_tensor(&g, LN("attn_k"), 2, d, d, 0, 0, sd);
    gen_tensor(&g, LN("attn_v"), 2, d, d, 0, 0, sd);
    gen_tensor(&g, LN("attn_output"), 2, d, d, 0, 0, sd);
    gen_tensor(&g, LN("ffn_norm"), 1, d, 0, 0, 1, 0);
    gen_tensor(&g, LN("ffn_gate_inp"), 2, E, d, 0, 0, sd);
    gen_tensor(&g, LN("ffn_gate_exps"), 3, E, dff, d, 0, sd);
    gen_tensor(&g, LN("ffn_up_exps"), 3, E, dff, d, 0, sd);
    gen_tensor(&g, LN("ffn_down_exps"), 3, E, d, dff, 0, sdff);
#undef LN
  }
  gen_tensor(&g, "output_norm.weight", 1, d, 0, 0, 1, 0);
  gen_tensor(&g, "out_proj.weight", 2, de, d, 0, 0, sd);
  gen_tensor(&g, "out_proj.bias", 1, de, 0, 0, 2, 0);
  if (g.failed) {
    drd_gguf_builder_destroy(g.b);
    return NULL;
  }
  return g.b;
}

int drd_test_model_bytes(const drd_test_model_desc *desc, uint8_t **out, size_t *size) {
  *out = NULL;
  *size = 0;
  drd_gguf_builder *b = drd_test_model_builder(desc);
  if (!b) return -1;
  int r = drd_gguf_builder_write(b, out, size);
  drd_gguf_builder_destroy(b);
  return r;
}

int drd_test_model_write_file(const drd_test_model_desc *desc, const char *path) {
  uint8_t *data;
  size_t size;
  if (drd_test_model_bytes(desc, &data, &size)) return -1;
  FILE *f = fopen(path, "wb");
  int ok = f && fwrite(data, 1, size, f) == size;
  if (f && fclose(f)) ok = 0;
  free(data);
  return ok ? 0 : -1;
}

int drd_test_model_temp_file(const drd_test_model_desc *desc, const char *tag, char *path, size_t len) {
  int fd = -1;
  if ((size_t)snprintf(path, len, "/tmp/drdiff-%s-XXXXXX", tag) < len) fd = mkstemp(path);
  if (fd >= 0) close(fd);
  if (fd < 0 || drd_test_model_write_file(desc, path)) {
    fprintf(stderr, "FAIL: cannot write the test model to %s\n", path);
    return -1;
  }
  return 0;
}
