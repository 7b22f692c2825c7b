/* GGUF v3 container parser. Every read goes through rd_*(), which checks the bytes are there
 * before touching them; every count is checked against the bytes left before anything is
 * sized from it, so a hostile header cannot make us allocate more than a small multiple of
 * the buffer. Multi-byte values are assembled byte by byte: the buffer may be unaligned and
 * the file is little-endian whatever the host is. */
#include "gguf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "log.h"

typedef unsigned long long ull; /* for printf: uint64_t is not always unsigned long long */

typedef struct gguf_priv {
  char *pool;                       /* keys and tensor names, NUL-separated */
  const drd_gguf_kv **kv_sorted;    /* by key, for lookups */
  const drd_gguf_tensor **t_sorted; /* by name, for lookups */
} gguf_priv;

typedef struct rd {
  const unsigned char *p;
  uint64_t size, pos;
} rd;

static uint64_t rd_left(const rd *r) { return r->size - r->pos; }

static uint64_t le(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

/* Reads an n-byte little-endian unsigned integer; 0 if the buffer ends first. */
static int rd_uint(rd *r, int n, uint64_t *v) {
  if (rd_left(r) < (uint64_t)n) return 0;
  *v = le(r->p + r->pos, n);
  r->pos += (uint64_t)n;
  return 1;
}

static int rd_u32(rd *r, uint32_t *v) {
  uint64_t x;
  if (!rd_uint(r, 4, &x)) return 0;
  *v = (uint32_t)x;
  return 1;
}

/* Not logged: model_file.c adds the file name and logs it once. */
static drd_status fail(const char *fmt, ...) DRD_PRINTF(1, 2);
static drd_status fail(const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return drd_fail(DRD_ERROR_BAD_MODEL, "GGUF: %s", msg);
}

static drd_status oom(void) {
  return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "GGUF: out of host memory while indexing");
}

const char *drd_gguf_type_name(uint32_t type) {
  static const char *names[] = {"u8",  "i8",   "u16",    "i16",   "u32", "i32", "f32",
                                "bool", "string", "array", "u64", "i64", "f64"};
  return type < sizeof names / sizeof names[0] ? names[type] : "invalid";
}

/* Bytes of one scalar of a fixed-size type; 0 for STRING, ARRAY and invalid types. */
static int scalar_size(uint32_t type) {
  switch (type) {
  case DRD_GGUF_U8: case DRD_GGUF_I8: case DRD_GGUF_BOOL: return 1;
  case DRD_GGUF_U16: case DRD_GGUF_I16: return 2;
  case DRD_GGUF_U32: case DRD_GGUF_I32: case DRD_GGUF_F32: return 4;
  case DRD_GGUF_U64: case DRD_GGUF_I64: case DRD_GGUF_F64: return 8;
  }
  return 0;
}

static double f32_of(uint64_t bits) {
  uint32_t u = (uint32_t)bits;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static double f64_of(uint64_t bits) {
  double d;
  memcpy(&d, &bits, sizeof d);
  return d;
}

static int64_t sign_extend(uint64_t v, int bytes) {
  if (bytes == 8) return (int64_t)v;
  uint64_t m = 1ull << (bytes * 8 - 1);
  return (int64_t)((v ^ m) - m); /* relies on two's complement conversion, as GCC/Clang define */
}

/* Decodes a fixed-size scalar of `type` from bits into the kv's union. */
static void set_scalar(drd_gguf_kv *kv, uint32_t type, uint64_t bits) {
  switch (type) {
  case DRD_GGUF_I8: kv->v.i = sign_extend(bits, 1); break;
  case DRD_GGUF_I16: kv->v.i = sign_extend(bits, 2); break;
  case DRD_GGUF_I32: kv->v.i = sign_extend(bits, 4); break;
  case DRD_GGUF_I64: kv->v.i = sign_extend(bits, 8); break;
  case DRD_GGUF_F32: kv->v.f = f32_of(bits); break;
  case DRD_GGUF_F64: kv->v.f = f64_of(bits); break;
  default: kv->v.u = bits; break;
  }
}

uint64_t drd_gguf_arr_uint(const drd_gguf_kv *kv, uint64_t i) {
  int n = scalar_size(kv->arr_type);
  return le(kv->arr_data + i * (uint64_t)n, n);
}

int64_t drd_gguf_arr_int(const drd_gguf_kv *kv, uint64_t i) {
  int n = scalar_size(kv->arr_type);
  return sign_extend(le(kv->arr_data + i * (uint64_t)n, n), n);
}

double drd_gguf_arr_float(const drd_gguf_kv *kv, uint64_t i) {
  int n = scalar_size(kv->arr_type);
  uint64_t bits = le(kv->arr_data + i * (uint64_t)n, n);
  return n == 4 ? f32_of(bits) : f64_of(bits);
}

int drd_gguf_str_eq(drd_gguf_str s, const char *z) {
  size_t n = strlen(z);
  return s.len == n && memcmp(s.ptr, z, n) == 0;
}

/* Growable pool of NUL-terminated names; callers keep offsets until the pool is final. */
typedef struct pool {
  char *buf;
  uint64_t len, cap;
} pool;

static int pool_add(pool *pl, const unsigned char *s, uint64_t n, uint64_t *off) {
  if (pl->cap - pl->len < n + 1) { /* n <= buffer size, so n + 1 and cap * 2 cannot wrap */
    uint64_t cap = pl->cap ? pl->cap * 2 : 4096;
    while (cap - pl->len < n + 1) cap *= 2;
    if (cap > SIZE_MAX) return 0;
    char *b = realloc(pl->buf, (size_t)cap);
    if (!b) return 0;
    pl->buf = b;
    pl->cap = cap;
  }
  memcpy(pl->buf + pl->len, s, (size_t)n);
  pl->buf[pl->len + n] = 0;
  *off = pl->len;
  pl->len += n + 1;
  return 1;
}

/* Reads a string and checks its bytes are in the buffer. Returns 0 on success, 1 when the
 * buffer ends inside the 8-byte length, 2 when the length runs past the end (*len_out says). */
static int rd_str(rd *r, drd_gguf_str *s, uint64_t *len_out) {
  uint64_t len;
  if (!rd_uint(r, 8, &len)) return 1;
  *len_out = len;
  if (len > rd_left(r)) return 2;
  s->ptr = (const char *)(r->p + r->pos);
  s->len = len;
  r->pos += len;
  return 0;
}

/* A key or tensor name: non-empty, in the buffer, without NUL bytes (we hand out C strings,
 * and an embedded NUL would make two different names compare equal). */
static drd_status rd_name(rd *r, const char *what, uint64_t idx, drd_gguf_str *s) {
  uint64_t at = r->pos, len = 0;
  int e = rd_str(r, s, &len);
  if (e == 1)
    return fail("%s #%llu: file ends inside its name length (offset %llu of %llu)", what,
                (ull)idx, (ull)at, (ull)r->size);
  if (e == 2) {
    return fail("%s #%llu: name length %llu runs past the end of the file (offset %llu of %llu)",
                what, (ull)idx, (ull)len, (ull)at, (ull)r->size);
  }
  if (len == 0) return fail("%s #%llu: empty name (offset %llu)", what, (ull)idx, (ull)at);
  if (memchr(s->ptr, 0, (size_t)len))
    return fail("%s #%llu: name holds a NUL byte (offset %llu)", what, (ull)idx, (ull)at);
  return DRD_OK;
}

static drd_status rd_value(rd *r, drd_gguf_kv *kv, const char *key) {
  uint32_t type;
  uint64_t at = r->pos;
  if (!rd_u32(r, &type)) return fail("key '%s': file ends inside its value type", key);
  if (type > DRD_GGUF_F64)
    return fail("key '%s': invalid value type %u (offset %llu)", key, type, (ull)at);
  kv->type = (drd_gguf_type)type;
  if (type == DRD_GGUF_STRING) {
    uint64_t len = 0;
    at = r->pos;
    int e = rd_str(r, &kv->v.s, &len);
    if (e == 1) return fail("key '%s': file ends inside its string length", key);
    if (e == 2)
      return fail("key '%s': string length %llu runs past the end of the file (offset %llu of %llu)",
                  key, (ull)len, (ull)at, (ull)r->size);
    return DRD_OK;
  }
  if (type != DRD_GGUF_ARRAY) {
    uint64_t bits;
    int n = scalar_size(type);
    if (!rd_uint(r, n, &bits)) return fail("key '%s': file ends inside its %s value", key,
                                           drd_gguf_type_name(type));
    if (type == DRD_GGUF_BOOL && bits > 1)
      return fail("key '%s': bool value %llu is neither 0 nor 1", key, (ull)bits);
    set_scalar(kv, type, bits);
    return DRD_OK;
  }
  uint32_t et;
  uint64_t count;
  if (!rd_u32(r, &et)) return fail("key '%s': file ends inside its array element type", key);
  if (et == DRD_GGUF_ARRAY) return fail("key '%s': nested arrays are not supported", key);
  if (et > DRD_GGUF_F64) return fail("key '%s': invalid array element type %u", key, et);
  if (!rd_uint(r, 8, &count)) return fail("key '%s': file ends inside its array length", key);
  kv->arr_type = (drd_gguf_type)et;
  kv->arr_count = count;
  kv->arr_data = r->p + r->pos;
  if (et != DRD_GGUF_STRING) {
    uint64_t n = (uint64_t)scalar_size(et);
    if (count > rd_left(r) / n)
      return fail("key '%s': array of %llu %s runs past the end of the file (offset %llu of %llu)",
                  key, (ull)count, drd_gguf_type_name(et), (ull)r->pos, (ull)r->size);
    if (et == DRD_GGUF_BOOL)
      for (uint64_t i = 0; i < count; i++)
        if (kv->arr_data[i] > 1)
          return fail("key '%s': bool element %llu is neither 0 nor 1", key, (ull)i);
    r->pos += count * n;
    return DRD_OK;
  }
  /* every string takes at least its 8-byte length, which bounds the allocation below */
  if (count > rd_left(r) / 8)
    return fail("key '%s': array of %llu strings runs past the end of the file (offset %llu of %llu)",
                key, (ull)count, (ull)r->pos, (ull)r->size);
  kv->arr_strs = malloc(count ? (size_t)count * sizeof *kv->arr_strs : 1);
  if (!kv->arr_strs) return oom();
  for (uint64_t i = 0; i < count; i++) {
    uint64_t len = 0;
    at = r->pos;
    int e = rd_str(r, &kv->arr_strs[i], &len);
    if (e == 1)
      return fail("key '%s': element %llu: file ends inside its string length", key, (ull)i);
    if (e == 2)
      return fail("key '%s': element %llu: string length %llu runs past the end of the file "
                  "(offset %llu of %llu)", key, (ull)i, (ull)len, (ull)at, (ull)r->size);
  }
  return DRD_OK;
}

static int cmp_kv(const void *a, const void *b) {
  return strcmp((*(const drd_gguf_kv *const *)a)->key, (*(const drd_gguf_kv *const *)b)->key);
}

static int cmp_tensor_name(const void *a, const void *b) {
  return strcmp((*(const drd_gguf_tensor *const *)a)->name,
                (*(const drd_gguf_tensor *const *)b)->name);
}

static int cmp_tensor_offset(const void *a, const void *b) {
  uint64_t x = (*(const drd_gguf_tensor *const *)a)->offset;
  uint64_t y = (*(const drd_gguf_tensor *const *)b)->offset;
  return x < y ? -1 : x > y;
}

/* ggml's names for the types we refuse, so the message says what the file holds. */
static const char *ggml_type_name(uint32_t t) {
  static const char *names[] = {"f32",  "f16",  "q4_0", "q4_1", "q4_2", "q4_3", "q5_0",
                                "q5_1", "q8_0", "q8_1", "q2_K", "q3_K", "q4_K", "q5_K",
                                "q6_K", "q8_K", "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s",
                                "iq4_nl", "iq3_s", "iq2_s", "iq4_xs", "i8", "i16", "i32",
                                "i64", "f64", "iq1_m", "bf16"};
  return t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

static drd_status rd_tensor_info(rd *r, drd_gguf_tensor *t, const char *name) {
  uint32_t n_dims;
  if (!rd_u32(r, &n_dims)) return fail("tensor '%s': file ends inside its n_dims", name);
  if (n_dims < 1 || n_dims > DRD_GGUF_MAX_DIMS)
    return fail("tensor '%s': n_dims %u (must be 1..%d)", name, n_dims, DRD_GGUF_MAX_DIMS);
  t->n_dims = n_dims;
  uint64_t n_el = 1;
  for (int i = 0; i < DRD_GGUF_MAX_DIMS; i++) t->ne[i] = 1;
  for (uint32_t i = 0; i < n_dims; i++) {
    if (!rd_uint(r, 8, &t->ne[i])) return fail("tensor '%s': file ends inside ne[%u]", name, i);
    if (t->ne[i] == 0) return fail("tensor '%s': ne[%u] is 0", name, i);
    if (t->ne[i] > (uint64_t)INT64_MAX || n_el > (uint64_t)INT64_MAX / t->ne[i])
      return fail("tensor '%s': element count overflows (ne[%u] = %llu)", name, i,
                  (ull)t->ne[i]);
    n_el *= t->ne[i];
  }
  t->n_elements = n_el;
  if (!rd_u32(r, &t->type)) return fail("tensor '%s': file ends inside its type", name);
  if (!drd_dtype_valid(t->type))
    return fail("tensor '%s': type %u (%s) is not supported (allowed: f32, f16, q8_0, bf16)",
                name, t->type, ggml_type_name(t->type));
  if (t->type == DRD_DTYPE_Q8_0 && t->ne[0] % DRD_Q8_0_BLOCK)
    return fail("tensor '%s': q8_0 row length %llu is not a multiple of %d", name,
                (ull)t->ne[0], DRD_Q8_0_BLOCK);
  if (!drd_dtype_nbytes(t->type, n_el, &t->nbytes))
    return fail("tensor '%s': byte size overflows", name);
  if (!rd_uint(r, 8, &t->offset)) return fail("tensor '%s': file ends inside its offset", name);
  return DRD_OK;
}

/* Everything after the header. Allocations hang off g, which the caller frees on failure. */
static drd_status parse_body(rd *r, drd_gguf *g, uint64_t n_tensors, uint64_t n_kv) {
  gguf_priv *pv = g->priv;
  pool pl = {0};
  uint64_t *kv_off = NULL, *t_off = NULL;
  const drd_gguf_tensor **by_off = NULL;
  drd_status st = DRD_OK;

  /* A KV takes at least 13 bytes (8 length + 1 name byte + 4 type) and a tensor info at least
   * 33: counts beyond that cannot be honest, and refusing them bounds every allocation. */
  if (n_kv > rd_left(r) / 13)
    return fail("kv_count %llu is impossible: only %llu bytes follow the header", (ull)n_kv,
                (ull)rd_left(r));
  if (n_tensors > rd_left(r) / 33)
    return fail("tensor_count %llu is impossible: only %llu bytes follow the header",
                (ull)n_tensors, (ull)rd_left(r));
  g->kv = calloc(n_kv ? (size_t)n_kv : 1, sizeof *g->kv);
  g->tensors = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *g->tensors);
  kv_off = malloc((n_kv ? (size_t)n_kv : 1) * sizeof *kv_off);
  t_off = malloc((n_tensors ? (size_t)n_tensors : 1) * sizeof *t_off);
  pv->kv_sorted = malloc((n_kv ? (size_t)n_kv : 1) * sizeof *pv->kv_sorted);
  pv->t_sorted = malloc((n_tensors ? (size_t)n_tensors : 1) * sizeof *pv->t_sorted);
  by_off = malloc((n_tensors ? (size_t)n_tensors : 1) * sizeof *by_off);
  if (!g->kv || !g->tensors || !kv_off || !t_off || !pv->kv_sorted || !pv->t_sorted || !by_off) {
    st = oom();
    goto done;
  }

  /* Key/value pairs. Names go to the pool as offsets: the pool may still move. */
  for (uint64_t i = 0; i < n_kv; i++) {
    drd_gguf_str s;
    g->n_kv = i + 1; /* so drd_gguf_free releases what this kv allocated */
    if ((st = rd_name(r, "kv", i, &s))) goto done;
    if (!pool_add(&pl, (const unsigned char *)s.ptr, s.len, &kv_off[i])) {
      st = oom();
      goto done;
    }
    if ((st = rd_value(r, &g->kv[i], pl.buf + kv_off[i]))) goto done;
  }
  /* Tensor infos. */
  for (uint64_t i = 0; i < n_tensors; i++) {
    drd_gguf_str s;
    if ((st = rd_name(r, "tensor", i, &s))) goto done;
    if (!pool_add(&pl, (const unsigned char *)s.ptr, s.len, &t_off[i])) {
      st = oom();
      goto done;
    }
    if ((st = rd_tensor_info(r, &g->tensors[i], pl.buf + t_off[i]))) goto done;
  }
  g->n_tensors = n_tensors;
  pv->pool = pl.buf;
  pl.buf = NULL;
  for (uint64_t i = 0; i < n_kv; i++) g->kv[i].key = pv->pool + kv_off[i];
  for (uint64_t i = 0; i < n_tensors; i++) g->tensors[i].name = pv->pool + t_off[i];

  /* Duplicates: sort, then compare neighbours. */
  for (uint64_t i = 0; i < n_kv; i++) pv->kv_sorted[i] = &g->kv[i];
  qsort(pv->kv_sorted, (size_t)n_kv, sizeof *pv->kv_sorted, cmp_kv);
  for (uint64_t i = 1; i < n_kv; i++)
    if (!strcmp(pv->kv_sorted[i - 1]->key, pv->kv_sorted[i]->key)) {
      st = fail("key '%s' appears more than once", pv->kv_sorted[i]->key);
      goto done;
    }
  for (uint64_t i = 0; i < n_tensors; i++) pv->t_sorted[i] = &g->tensors[i];
  qsort(pv->t_sorted, (size_t)n_tensors, sizeof *pv->t_sorted, cmp_tensor_name);
  for (uint64_t i = 1; i < n_tensors; i++)
    if (!strcmp(pv->t_sorted[i - 1]->name, pv->t_sorted[i]->name)) {
      st = fail("tensor '%s' appears more than once", pv->t_sorted[i]->name);
      goto done;
    }

  /* Alignment of the data section and of every tensor in it. */
  g->alignment = DRD_GGUF_DEFAULT_ALIGNMENT;
  const drd_gguf_kv *al = drd_gguf_find_kv(g, "general.alignment");
  if (al) {
    if (al->type != DRD_GGUF_U32) {
      st = fail("key 'general.alignment': type %s (must be u32)", drd_gguf_type_name(al->type));
      goto done;
    }
    if (al->v.u == 0 || (al->v.u & (al->v.u - 1))) {
      st = fail("key 'general.alignment': %llu is not a power of two", (ull)al->v.u);
      goto done;
    }
    g->alignment = (uint32_t)al->v.u;
  }
  uint64_t pad = (g->alignment - r->pos % g->alignment) % g->alignment;
  g->data_offset = r->pos + pad; /* pos <= size and pad < 2^32: no wrap */
  if (n_tensors && g->data_offset > r->size) {
    st = fail("data section would start at offset %llu, past the end of the file (%llu bytes)",
              (ull)g->data_offset, (ull)r->size);
    goto done;
  }
  uint64_t data_size = n_tensors ? r->size - g->data_offset : 0;
  for (uint64_t i = 0; i < n_tensors; i++) {
    drd_gguf_tensor *t = &g->tensors[i];
    if (t->offset % g->alignment) {
      st = fail("tensor '%s': offset %llu is not a multiple of the alignment %u", t->name,
                (ull)t->offset, g->alignment);
      goto done;
    }
    if (t->offset > data_size || t->nbytes > data_size - t->offset) {
      st = fail("tensor '%s': data [%llu, +%llu) runs past the end of the data section "
                "(%llu bytes)", t->name, (ull)t->offset, (ull)t->nbytes, (ull)data_size);
      goto done;
    }
    t->data = r->p + g->data_offset + t->offset;
    /* Readers may access f32 / f16 data in place: insist on natural alignment in memory
     * (only a general.alignment below 4, or a misaligned memory buffer, can break it). */
    uintptr_t need = t->type == DRD_DTYPE_F32 ? 4 : 2;
    if ((uintptr_t)t->data % need) {
      st = fail("tensor '%s': data at offset %llu is not %u-byte aligned in memory", t->name,
                (ull)(g->data_offset + t->offset), (unsigned)need);
      goto done;
    }
    by_off[i] = t;
  }
  qsort(by_off, (size_t)n_tensors, sizeof *by_off, cmp_tensor_offset);
  for (uint64_t i = 1; i < n_tensors; i++)
    if (by_off[i - 1]->offset + by_off[i - 1]->nbytes > by_off[i]->offset) {
      st = fail("tensors '%s' and '%s' overlap in the data section", by_off[i - 1]->name,
                by_off[i]->name);
      goto done;
    }

done:
  free(pl.buf);
  free(kv_off);
  free(t_off);
  free(by_off);
  return st;
}

drd_status drd_gguf_parse(const void *data, size_t size, drd_gguf **out) {
  *out = NULL;
  if (!data && size) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "GGUF: NULL buffer");
  rd r = {data, size, 0};
  uint64_t magic = 0, n_tensors = 0, n_kv = 0;
  uint32_t version = 0;
  if (!rd_uint(&r, 4, &magic) || magic != 0x46554747u /* "GGUF" */)
    return fail("not a GGUF file (no \"GGUF\" magic at offset 0; %llu bytes)", (ull)size);
  if (!rd_u32(&r, &version)) return fail("file ends inside the version (%llu bytes)", (ull)size);
  if (version != DRD_GGUF_VERSION) {
    if (version == 0x03000000u) return fail("big-endian GGUF files are not supported");
    return fail("version %u is not supported (need %d)", version, DRD_GGUF_VERSION);
  }
  if (!rd_uint(&r, 8, &n_tensors) || !rd_uint(&r, 8, &n_kv))
    return fail("file ends inside the header (%llu bytes)", (ull)size);

  drd_gguf *g = calloc(1, sizeof *g);
  gguf_priv *pv = calloc(1, sizeof *pv);
  if (!g || !pv) {
    free(g);
    free(pv);
    return oom();
  }
  g->base = data;
  g->size = size;
  g->version = version;
  g->priv = pv;
  drd_status st = parse_body(&r, g, n_tensors, n_kv);
  if (st != DRD_OK) {
    drd_gguf_free(g);
    return st;
  }
  *out = g;
  return DRD_OK;
}

void drd_gguf_free(drd_gguf *g) {
  if (!g) return;
  gguf_priv *pv = g->priv;
  if (g->kv)
    for (uint64_t i = 0; i < g->n_kv; i++) free(g->kv[i].arr_strs);
  free(g->kv);
  free(g->tensors);
  if (pv) {
    free(pv->pool);
    free(pv->kv_sorted);
    free(pv->t_sorted);
    free(pv);
  }
  free(g);
}

static int cmp_key_kv(const void *key, const void *elem) {
  return strcmp(key, (*(const drd_gguf_kv *const *)elem)->key);
}

static int cmp_key_tensor(const void *key, const void *elem) {
  return strcmp(key, (*(const drd_gguf_tensor *const *)elem)->name);
}

const drd_gguf_kv *drd_gguf_find_kv(const drd_gguf *g, const char *key) {
  const gguf_priv *pv = g->priv;
  if (!g->n_kv) return NULL;
  const drd_gguf_kv *const *hit =
      bsearch(key, pv->kv_sorted, (size_t)g->n_kv, sizeof *pv->kv_sorted, cmp_key_kv);
  return hit ? *hit : NULL;
}

const drd_gguf_tensor *drd_gguf_find_tensor(const drd_gguf *g, const char *name) {
  const gguf_priv *pv = g->priv;
  if (!g->n_tensors) return NULL;
  const drd_gguf_tensor *const *hit =
      bsearch(name, pv->t_sorted, (size_t)g->n_tensors, sizeof *pv->t_sorted, cmp_key_tensor);
  return hit ? *hit : NULL;
}
