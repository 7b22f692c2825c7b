/* The loader on malformed and inconsistent files: every case must return an error status with a
 * non-empty drd_last_error() (naming the key or tensor where the case says so), and never
 * crash or read outside the buffer (CI runs this under ASan + UBSan; every case is loaded from
 * a heap copy of exactly its size so an over-read shows). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "gguf.h"
#include "log.h"
#include "model_file.h"
#include "util_gguf_build.h"
#include "util_rand.h"

static int g_fail, g_cases, g_verbose; /* DRDIFF_TEST_VERBOSE=1 prints every message */
static uint64_t g_seed;

static void report(const char *fmt, ...) DRD_PRINTF(1, 2);
#include <stdarg.h>
static void report(const char *fmt, ...) {
  if (g_fail++ >= 40) return; /* the first failures say enough */
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "FAIL: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, " (seed %llu)\n", (unsigned long long)g_seed);
  va_end(ap);
}

/* Loads a heap copy of exactly n bytes; the case passes if loading fails with a message that
 * contains `needle` (when given). */
static void expect_fail(const uint8_t *p, size_t n, const char *needle, const char *what, ...)
    DRD_PRINTF(4, 5);
static void expect_fail(const uint8_t *p, size_t n, const char *needle, const char *what, ...) {
  char label[256];
  va_list ap;
  va_start(ap, what);
  vsnprintf(label, sizeof label, what, ap);
  va_end(ap);
  g_cases++;
  uint8_t *copy = malloc(n ? n : 1);
  if (!copy) {
    report("%s: out of memory", label);
    return;
  }
  if (n) memcpy(copy, p, n);
  drd_model_file *m = NULL;
  drd_status st = drd_model_file_open_memory(copy, n, &m);
  const char *err = drd_last_error();
  if (g_verbose) printf("%s -> %s\n", label, st == DRD_OK ? "(loaded)" : err);
  if (st == DRD_OK) {
    report("%s: loaded, but should fail", label);
    drd_model_file_close(m);
  } else if (m) {
    report("%s: failed but *out is not NULL", label);
  } else if (!err || !*err) {
    report("%s: failed (%s) with an empty message", label, drd_status_string(st));
  } else if (needle && !strstr(err, needle)) {
    report("%s: message \"%s\" does not mention \"%s\"", label, err, needle);
  }
  free(copy);
}

static void expect_ok(const uint8_t *p, size_t n, const char *what) {
  drd_model_file *m = NULL;
  drd_status st = drd_model_file_open_memory(p, n, &m);
  if (st != DRD_OK) report("%s: should load: %s", what, drd_last_error());
  drd_model_file_close(m);
}

static void put_le(uint8_t *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

/* A copy of f with n bytes at off replaced by v; loads it and expects failure. */
static void patch_fail(const uint8_t *f, size_t size, size_t off, uint64_t v, int n,
                       const char *needle, const char *what, uint64_t what_v) {
  uint8_t *c = malloc(size);
  if (!c) return;
  memcpy(c, f, size);
  put_le(c + off, v, n);
  expect_fail(c, size, needle, "%s = %llu (0x%llx)", what, (unsigned long long)what_v,
              (unsigned long long)v);
  free(c);
}

static drd_gguf_builder *small_builder(drd_dtype t) {
  drd_hparams hp;
  drd_test_small_hparams(&hp);
  drd_test_model_desc desc = {.hp = &hp, .seed = g_seed, .matrix_type = t};
  return drd_test_model_builder(&desc);
}

/* Writes b, expects the load to fail, mentioning needle. */
static void build_fail(drd_gguf_builder *b, const char *needle, const char *what) {
  uint8_t *buf;
  size_t size;
  if (drd_gguf_builder_write(b, &buf, &size)) {
    report("%s: builder failed", what);
    return;
  }
  expect_fail(buf, size, needle, "%s", what);
  free(buf);
}

/* ------------------------------------------------------------------ truncation */

static void test_truncation(void) {
  /* every prefix of a small model, and of a tiny one through its metadata and then sampled */
  drd_gguf_builder *b = small_builder(DRD_DTYPE_F16);
  uint8_t *buf;
  size_t size;
  if (!b || drd_gguf_builder_write(b, &buf, &size)) {
    report("small model build");
    return;
  }
  expect_ok(buf, size, "small model");
  for (size_t n = 0; n < size; n++) expect_fail(buf, n, NULL, "small model cut to %zu bytes", n);
  free(buf);
  drd_gguf_builder_destroy(b);

  drd_test_model_desc desc = {.seed = g_seed, .matrix_type = DRD_DTYPE_Q8_0};
  b = drd_test_model_builder(&desc);
  if (!b || drd_gguf_builder_write(b, &buf, &size)) {
    report("tiny model build");
    return;
  }
  expect_ok(buf, size, "tiny model");
  size_t meta = drd_gguf_builder_data_start(b);
  for (size_t n = 0; n < size; n += n < meta + 64 ? 1 : 997)
    expect_fail(buf, n, NULL, "tiny model cut to %zu bytes", n);
  for (size_t n = size - 40; n < size; n++) expect_fail(buf, n, NULL, "tiny model cut to %zu", n);
  free(buf);
  drd_gguf_builder_destroy(b);
}

/* ------------------------------------------------------------------ header and container */

static void test_header(void) {
  drd_gguf_builder *b = small_builder(DRD_DTYPE_F32);
  uint8_t *f;
  size_t size;
  if (!b || drd_gguf_builder_write(b, &f, &size)) {
    report("build");
    return;
  }
  uint64_t nt = drd_gguf_builder_tensor_count(b), nk = drd_gguf_builder_kv_count(b);
  patch_fail(f, size, 0, 0x46554748, 4, "GGUF", "magic", 0);
  patch_fail(f, size, 4, 2, 4, "version", "version", 2);
  patch_fail(f, size, 4, 4, 4, "version", "version", 4);
  patch_fail(f, size, 4, 0x03000000, 4, "big-endian", "version", 0x03000000);
  const uint64_t counts[] = {UINT64_MAX, UINT64_MAX / 2, (uint64_t)1 << 61, (uint64_t)1 << 32,
                             size, size / 13 + 1, 0};
  for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
    patch_fail(f, size, DRD_GGUF_HDR_TENSOR_COUNT, counts[i], 8, NULL, "tensor_count", counts[i]);
    patch_fail(f, size, DRD_GGUF_HDR_KV_COUNT, counts[i], 8, NULL, "kv_count", counts[i]);
  }
  for (int dlt = -3; dlt <= 3; dlt++) {
    if (!dlt) continue;
    patch_fail(f, size, DRD_GGUF_HDR_TENSOR_COUNT, nt + (uint64_t)(int64_t)dlt, 8, NULL,
               "tensor_count", nt + (uint64_t)(int64_t)dlt);
    patch_fail(f, size, DRD_GGUF_HDR_KV_COUNT, nk + (uint64_t)(int64_t)dlt, 8, NULL, "kv_count",
               nk + (uint64_t)(int64_t)dlt);
  }
  free(f);
  drd_gguf_builder_destroy(b);
}

/* Every field of every key/value and tensor info, corrupted in turn. */
static void test_fields(void) {
  drd_gguf_builder *b = small_builder(DRD_DTYPE_F16);
  uint8_t *f;
  size_t size;
  if (!b || drd_gguf_builder_write(b, &f, &size)) {
    report("build");
    return;
  }
  drd_gguf *g = NULL;
  if (drd_gguf_parse(f, size, &g) != DRD_OK) {
    report("parse of the valid file: %s", drd_last_error());
    return;
  }
  const uint64_t huge[] = {UINT64_MAX, UINT64_MAX - 7, (uint64_t)1 << 63, (uint64_t)1 << 62,
                           (uint64_t)1 << 61, (uint64_t)1 << 32, size};
  for (uint64_t i = 0; i < g->n_kv; i++) {
    const drd_gguf_kv *kv = &g->kv[i];
    drd_gguf_kv_layout l;
    if (drd_gguf_builder_kv_layout(b, kv->key, &l)) continue;
    uint64_t klen = get_le(f + l.key_len, 8);
    /* key length */
    for (size_t h = 0; h < sizeof huge / sizeof huge[0]; h++)
      patch_fail(f, size, l.key_len, huge[h], 8, NULL, kv->key, huge[h]);
    patch_fail(f, size, l.key_len, 0, 8, NULL, kv->key, 0);
    patch_fail(f, size, l.key_len, klen + 1, 8, NULL, kv->key, klen + 1);
    patch_fail(f, size, l.key_len, klen - 1, 8, NULL, kv->key, klen - 1);
    /* a NUL inside the key */
    patch_fail(f, size, l.key_len + 8 + klen / 2, 0, 1, "NUL", kv->key, klen / 2);
    /* value type: every other type, and invalid ones. A different valid type shifts the
     * parse; keys the loader needs then fail by type, the rest by what follows. */
    for (uint32_t t = 0; t <= 14; t++)
      if (t != kv->type) patch_fail(f, size, l.type, t, 4, NULL, kv->key, t);
    patch_fail(f, size, l.type, UINT32_MAX, 4, "invalid value type", kv->key, UINT32_MAX);
    if (kv->type == DRD_GGUF_STRING) {
      uint64_t len = kv->v.s.len;
      for (size_t h = 0; h < sizeof huge / sizeof huge[0]; h++)
        patch_fail(f, size, l.value, huge[h], 8, NULL, kv->key, huge[h]);
      patch_fail(f, size, l.value, len + 1, 8, NULL, kv->key, len + 1);
      if (len) patch_fail(f, size, l.value, len - 1, 8, NULL, kv->key, len - 1);
    }
    if (kv->type == DRD_GGUF_ARRAY) {
      patch_fail(f, size, l.value, DRD_GGUF_ARRAY, 4, "nested", kv->key, DRD_GGUF_ARRAY);
      patch_fail(f, size, l.value, 13, 4, "invalid array element type", kv->key, 13);
      patch_fail(f, size, l.value, UINT32_MAX, 4, NULL, kv->key, UINT32_MAX);
      for (size_t h = 0; h < sizeof huge / sizeof huge[0]; h++)
        patch_fail(f, size, l.value + 4, huge[h], 8, NULL, kv->key, huge[h]);
      /* counts whose byte size wraps around 2^64 for 4- and 8-byte elements */
      patch_fail(f, size, l.value + 4, UINT64_MAX / 4 + 1, 8, NULL, kv->key, UINT64_MAX / 4 + 1);
      patch_fail(f, size, l.value + 4, UINT64_MAX / 8 + 1, 8, NULL, kv->key, UINT64_MAX / 8 + 1);
      patch_fail(f, size, l.value + 4, kv->arr_count + 1, 8, NULL, kv->key, kv->arr_count + 1);
      if (kv->arr_type == DRD_GGUF_STRING && kv->arr_count) {
        size_t s0 = l.value + 12; /* first element's length */
        for (size_t h = 0; h < sizeof huge / sizeof huge[0]; h++)
          patch_fail(f, size, s0, huge[h], 8, NULL, kv->key, huge[h]);
      }
    }
  }
  for (uint64_t i = 0; i < g->n_tensors; i++) {
    const drd_gguf_tensor *t = &g->tensors[i];
    drd_gguf_tensor_layout l;
    if (drd_gguf_builder_tensor_layout(b, t->name, &l)) continue;
    uint64_t nlen = get_le(f + l.name_len, 8);
    for (size_t h = 0; h < sizeof huge / sizeof huge[0]; h++)
      patch_fail(f, size, l.name_len, huge[h], 8, NULL, t->name, huge[h]);
    patch_fail(f, size, l.name_len, 0, 8, NULL, t->name, 0);
    patch_fail(f, size, l.name_len + 8, 0, 1, "NUL", t->name, 0);
    (void)nlen;
    const uint32_t dims[] = {0, 5, 1000, UINT32_MAX};
    for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++)
      patch_fail(f, size, l.n_dims, dims[k], 4, "n_dims", t->name, dims[k]);
    patch_fail(f, size, l.n_dims, t->n_dims + 1, 4, NULL, t->name, t->n_dims + 1);
    patch_fail(f, size, l.n_dims, t->n_dims - 1, 4, NULL, t->name, t->n_dims - 1);
    for (uint32_t dd = 0; dd < t->n_dims; dd++) {
      size_t off = l.ne + 8 * dd;
      /* 2^62 f32 elements: the count fits, the byte size wraps around 2^64 */
      const uint64_t nes[] = {0, UINT64_MAX, (uint64_t)1 << 63, (uint64_t)1 << 62, INT64_MAX,
                              (uint64_t)1 << 32, (uint64_t)1 << 40, t->ne[dd] + 1, t->ne[dd] * 2,
                              t->ne[dd] + 32};
      for (size_t k = 0; k < sizeof nes / sizeof nes[0]; k++)
        patch_fail(f, size, off, nes[k], 8, t->name, t->name, nes[k]);
    }
    const uint32_t types[] = {2, 3, 6, 9, 12, 28, 31, 1000, UINT32_MAX};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++)
      patch_fail(f, size, l.type, types[k], 4, t->name, t->name, types[k]);
    const uint64_t offs[] = {t->offset + 1, t->offset + 16, UINT64_MAX, UINT64_MAX - 31,
                             (uint64_t)1 << 63, size, size - size % 32, t->offset + size};
    for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++)
      patch_fail(f, size, l.offset, offs[k], 8, t->name, t->name, offs[k]);
    /* overlapping the previous / next tensor */
    if (i > 0)
      patch_fail(f, size, l.offset, g->tensors[i - 1].offset, 8, "overlap", t->name,
                 g->tensors[i - 1].offset);
    if (i + 1 < g->n_tensors)
      patch_fail(f, size, l.offset, g->tensors[i + 1].offset, 8, t->name, t->name,
                 g->tensors[i + 1].offset);
    /* norms and biases must be f32: store one as f16 (half the bytes: the size stays valid) */
    if (t->n_dims == 1) patch_fail(f, size, l.type, DRD_DTYPE_F16, 4, "must be f32", t->name, 1);
  }
  drd_gguf_free(g);
  free(f);
  drd_gguf_builder_destroy(b);
}

static void test_alignment(void) {
  drd_gguf_builder *b = small_builder(DRD_DTYPE_F32);
  uint8_t *f;
  size_t size;
  drd_gguf_kv_layout l;
  if (!b || drd_gguf_builder_write(b, &f, &size) ||
      drd_gguf_builder_kv_layout(b, "general.alignment", &l)) {
    report("build");
    return;
  }
  const uint32_t bad[] = {0, 3, 6, 48, 100, 0x80000000u, UINT32_MAX, 1u << 20, 64, 128};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    patch_fail(f, size, l.value, bad[i], 4, NULL, "general.alignment", bad[i]);
  free(f);
  drd_gguf_builder_destroy(b);
  /* wrong type */
  b = small_builder(DRD_DTYPE_F32);
  drd_gguf_set_u64(b, "general.alignment", 32);
  build_fail(b, "general.alignment", "general.alignment as u64");
  drd_gguf_builder_destroy(b);
  /* alignment 1 lets f32 data sit at an odd address: refused rather than handed out. Vary a
   * name's length until the metadata ends at an odd offset. */
  int tried = 0;
  for (int len = 1; len <= 4 && !tried; len++) {
    b = small_builder(DRD_DTYPE_F32);
    drd_gguf_set_u32(b, "general.alignment", 1);
    char nm[8] = "abcd";
    nm[len] = 0;
    drd_gguf_set_str(b, "general.name", nm);
    uint8_t *buf;
    if (!drd_gguf_builder_write(b, &buf, &size)) {
      if (drd_gguf_builder_data_start(b) % 2) {
        expect_fail(buf, size, "aligned", "alignment 1");
        tried = 1;
      }
      free(buf);
    }
    drd_gguf_builder_destroy(b);
  }
  if (!tried) report("alignment 1: no odd layout found");
}

/* ------------------------------------------------------------------ keys */

static const char *const k_u32_keys[] = {
    "drdiff.vocab_size", "drdiff.embed_dim", "drdiff.hidden_dim", "drdiff.block_count",
    "drdiff.head_count", "drdiff.time_embed_dim", "drdiff.expert_count",
    "drdiff.expert_hidden_dim", "drdiff.expert_max_used", "drdiff.context_length",
    "drdiff.hsa.block_size", "drdiff.hsa.dense_max", "drdiff.sampler.steps"};
static const char *const k_f32_keys[] = {
    "drdiff.expert_route_p", "drdiff.rope_theta", "drdiff.norm_eps",
    "drdiff.diffusion.time_scale", "drdiff.sas.gamma", "drdiff.sas.temperature",
    "drdiff.sas.start"};
static const char *const k_str_keys[] = {"general.architecture", "drdiff.diffusion.schedule",
                                         "tokenizer.ggml.model"};
static const char *const k_arr_keys[] = {"drdiff.hsa.mode_max", "drdiff.hsa.window",
                                         "drdiff.hsa.dilation", "drdiff.hsa.dilated_hops",
                                         "drdiff.hsa.global_blocks"};
#define COUNT(a) (sizeof a / sizeof a[0])

static void test_keys(void) {
  drd_gguf_builder *b;
  /* each required key missing */
  const char *const *lists[4] = {k_u32_keys, k_f32_keys, k_str_keys, k_arr_keys};
  const size_t lens[4] = {COUNT(k_u32_keys), COUNT(k_f32_keys), COUNT(k_str_keys),
                          COUNT(k_arr_keys)};
  for (int li = 0; li < 4; li++)
    for (size_t k = 0; k < lens[li]; k++) {
      const char *key = lists[li][k];
      char what[128];
      b = small_builder(DRD_DTYPE_F32);
      drd_gguf_remove_kv(b, key);
      snprintf(what, sizeof what, "missing %s", key);
      build_fail(b, key, what);
      drd_gguf_builder_destroy(b);
      /* and with the wrong type */
      for (int w = 0; w < 5; w++) {
        b = small_builder(DRD_DTYPE_F32);
        const char *strs[1] = {"x"};
        switch (w) {
        case 0: li == 0 ? drd_gguf_set_f32(b, key, 4) : drd_gguf_set_u32(b, key, 4); break;
        case 1: drd_gguf_set_i32(b, key, 4); break;
        case 2: drd_gguf_set_u64(b, key, 4); break;
        case 3: li == 2 ? drd_gguf_set_str_array(b, key, strs, 1) : drd_gguf_set_str(b, key, "4"); break;
        case 4: {
          unsigned char f64[8];
          double v = 4;
          memcpy(f64, &v, 8);
          drd_gguf_set_raw(b, key, DRD_GGUF_F64, f64, 8);
          break;
        }
        }
        snprintf(what, sizeof what, "%s with a wrong type (%d)", key, w);
        build_fail(b, key, what);
        drd_gguf_builder_destroy(b);
      }
      if (li == 3) { /* arrays: wrong element type, wrong length */
        const uint32_t v4[4] = {1, 1, 1, 1};
        const float fv[3] = {1, 1, 1};
        b = small_builder(DRD_DTYPE_F32);
        drd_gguf_set_f32_array(b, key, fv, 3);
        snprintf(what, sizeof what, "%s as f32[]", key);
        build_fail(b, key, what);
        drd_gguf_builder_destroy(b);
        for (size_t n = 0; n <= 4; n++) {
          uint32_t want = !strcmp(key, "drdiff.hsa.mode_max") ? 2 : 3;
          if (n == want) continue;
          b = small_builder(DRD_DTYPE_F32);
          drd_gguf_set_u32_array(b, key, v4, n);
          snprintf(what, sizeof what, "%s with %zu entries", key, n);
          build_fail(b, key, what);
          drd_gguf_builder_destroy(b);
        }
      }
    }
  /* architecture */
  b = small_builder(DRD_DTYPE_F32);
  drd_gguf_set_str(b, "general.architecture", "llama");
  build_fail(b, "general.architecture", "architecture llama");
  drd_gguf_builder_destroy(b);
  /* duplicate keys: add a key one letter off and patch it to collide */
  b = small_builder(DRD_DTYPE_F32);
  drd_gguf_set_u32(b, "drdiff.vocab_sizX", 260);
  uint8_t *f;
  size_t size;
  drd_gguf_kv_layout l;
  if (!drd_gguf_builder_write(b, &f, &size) &&
      !drd_gguf_builder_kv_layout(b, "drdiff.vocab_sizX", &l)) {
    f[l.type - 1] = 'e';
    expect_fail(f, size, "more than once", "duplicate key");
    free(f);
  }
  drd_gguf_builder_destroy(b);
  /* bools must be 0 or 1 (an unknown key: only the container check can catch it) */
  b = small_builder(DRD_DTYPE_F32);
  uint8_t two = 2;
  drd_gguf_set_raw(b, "extra.bool", DRD_GGUF_BOOL, &two, 1);
  build_fail(b, "extra.bool", "bool value 2");
  drd_gguf_builder_destroy(b);
  b = small_builder(DRD_DTYPE_F32);
  const unsigned char barr[4 + 8 + 2] = {DRD_GGUF_BOOL, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 7};
  drd_gguf_set_raw(b, "extra.bools", DRD_GGUF_ARRAY, barr, sizeof barr);
  build_fail(b, "extra.bools", "bool array element 7");
  drd_gguf_builder_destroy(b);
}

/* ------------------------------------------------------------------ hyperparameter ranges */

typedef void (*hp_edit)(drd_hparams *hp);
#define EDIT(name, body) static void name(drd_hparams *hp) { body; }
EDIT(e_V0, hp->V = 0)
EDIT(e_de0, hp->de = 0)
EDIT(e_d0, hp->d = 0)
EDIT(e_L0, hp->L = 0)
EDIT(e_H0, hp->H = 0)
EDIT(e_dt0, hp->dt = 0)
EDIT(e_E0, hp->E = 0)
EDIT(e_dff0, hp->dff = 0)
EDIT(e_H3, hp->H = 3)               /* 3 does not divide 8 */
EDIT(e_H8, hp->H = 8)               /* dh = 1, odd */
EDIT(e_dt5, hp->dt = 5)
EDIT(e_kmax0, hp->kmax = 0)
EDIT(e_kmax3, hp->kmax = 3)         /* > E = 2 */
EDIT(e_p0, hp->route_p = 0)
EDIT(e_pneg, hp->route_p = -0.5f)
EDIT(e_pbig, hp->route_p = 1.5f)
EDIT(e_pnan, hp->route_p = NAN)
EDIT(e_theta0, hp->rope_theta = 0)
EDIT(e_thetainf, hp->rope_theta = INFINITY)
EDIT(e_eps0, hp->norm_eps = 0)
EDIT(e_epsneg, hp->norm_eps = -1e-6f)
EDIT(e_epsnan, hp->norm_eps = NAN)
EDIT(e_tsinf, hp->time_scale = INFINITY)
EDIT(e_tsnan, hp->time_scale = NAN)
EDIT(e_B0, hp->B = 0)
EDIT(e_N1, hp->N1 = hp->N2 + 1)
EDIT(e_N2, hp->N2 = hp->N3 + 1)
EDIT(e_dil0, hp->dilation[0] = 0)
EDIT(e_dil2, hp->dilation[2] = 0)
EDIT(e_sched, hp->schedule = (drd_schedule)7) /* the builder writes "bogus" */
EDIT(e_gneg, hp->sas_gamma = -0.1f)
EDIT(e_gbig, hp->sas_gamma = 1.5f)
EDIT(e_gnan, hp->sas_gamma = NAN)
EDIT(e_tau0, hp->sas_temperature = 0)
EDIT(e_taunan, hp->sas_temperature = NAN)
EDIT(e_steps0, hp->steps = 0)
EDIT(e_usneg, hp->sas_start = -0.1f)
EDIT(e_usbig, hp->sas_start = 1.1f)

static void test_ranges(void) {
  static const struct { hp_edit f; const char *needle; } cases[] = {
      {e_V0, NULL}, {e_de0, NULL}, {e_d0, NULL}, {e_L0, "drdiff.block_count"},
      {e_H0, "drdiff.head_count"}, {e_dt0, NULL}, {e_E0, NULL}, {e_dff0, NULL},
      {e_H3, "drdiff.head_count"}, {e_H8, "drdiff.head_count"}, {e_dt5, "drdiff.time_embed_dim"},
      {e_kmax0, "drdiff.expert_max_used"}, {e_kmax3, "drdiff.expert_max_used"},
      {e_p0, "drdiff.expert_route_p"}, {e_pneg, "drdiff.expert_route_p"},
      {e_pbig, "drdiff.expert_route_p"}, {e_pnan, "drdiff.expert_route_p"},
      {e_theta0, "drdiff.rope_theta"}, {e_thetainf, "drdiff.rope_theta"},
      {e_eps0, "drdiff.norm_eps"}, {e_epsneg, "drdiff.norm_eps"}, {e_epsnan, "drdiff.norm_eps"},
      {e_tsinf, "drdiff.diffusion.time_scale"}, {e_tsnan, "drdiff.diffusion.time_scale"},
      {e_B0, "drdiff.hsa.block_size"}, {e_N1, "dense_max"}, {e_N2, "mode_max"},
      {e_dil0, "drdiff.hsa.dilation"}, {e_dil2, "drdiff.hsa.dilation"},
      {e_sched, "drdiff.diffusion.schedule"}, {e_gneg, "drdiff.sas.gamma"},
      {e_gbig, "drdiff.sas.gamma"}, {e_gnan, "drdiff.sas.gamma"},
      {e_tau0, "drdiff.sas.temperature"}, {e_taunan, "drdiff.sas.temperature"},
      {e_steps0, "drdiff.sampler.steps"}, {e_usneg, "drdiff.sas.start"},
      {e_usbig, "drdiff.sas.start"},
  };
  for (size_t i = 0; i < COUNT(cases); i++) {
    drd_hparams hp;
    drd_test_small_hparams(&hp);
    cases[i].f(&hp);
    drd_test_model_desc desc = {.hp = &hp, .seed = g_seed};
    drd_gguf_builder *b = drd_test_model_builder(&desc);
    if (!b) {
      report("range case %zu: build", i);
      continue;
    }
    char what[64];
    snprintf(what, sizeof what, "range case %zu", i);
    build_fail(b, cases[i].needle, what);
    drd_gguf_builder_destroy(b);
  }
  /* a vocabulary too large for int32 token ids */
  drd_gguf_builder *vb = small_builder(DRD_DTYPE_F32);
  drd_gguf_set_u32(vb, "drdiff.vocab_size", 0x80000000u);
  build_fail(vb, "drdiff.vocab_size", "V = 2^31");
  drd_gguf_builder_destroy(vb);
  /* a block count the tensors cannot back: no huge allocation, the first missing tensor named */
  const uint32_t Ls[] = {2, 1000, UINT32_MAX};
  for (size_t i = 0; i < COUNT(Ls); i++) {
    drd_gguf_builder *b = small_builder(DRD_DTYPE_F32);
    drd_gguf_set_u32(b, "drdiff.block_count", Ls[i]);
    build_fail(b, "blk.1.attn_norm.weight: missing", "block_count too large");
    drd_gguf_builder_destroy(b);
  }
}

/* ------------------------------------------------------------------ tokenizer */

static void test_vocab(void) {
  drd_test_vocab *v = drd_test_vocab_create(260);
  if (!v) {
    report("vocab");
    return;
  }
  drd_gguf_builder *b;
  const char **tok = (const char **)v->tokens;
  /* wrong counts */
  b = small_builder(DRD_DTYPE_F32);
  drd_gguf_set_str_array(b, "tokenizer.ggml.tokens", tok, 259);
  build_fail(b, "tokenizer.ggml.tokens", "259 tokens for V = 260");
  drd_gguf_builder_destroy(b);
  b = small_builder(DRD_DTYPE_F32);
  drd_gguf_set_u32(b, "drdiff.vocab_size", 261);
  build_fail(b, NULL, "V = 261 with 260 tokens");
  drd_gguf_builder_destroy(b);
  b = small_builder(DRD_DTYPE_F32);
  drd_gguf_set_str_array(b, "tokenizer.ggml.tokens", tok, 0);
  build_fail(b, "tokenizer.ggml.tokens", "no tokens");
  drd_gguf_builder_destroy(b);
  /* wrong types */
  const uint32_t ids[3] = {1, 2, 3};
  const char *const keys[] = {"tokenizer.ggml.tokens", "tokenizer.ggml.merges"};
  for (int k = 0; k < 2; k++) {
    b = small_builder(DRD_DTYPE_F32);
    drd_gguf_set_u32_array(b, keys[k], ids, 3);
    build_fail(b, keys[k], "token/merge array of u32");
    drd_gguf_builder_destroy(b);
    b = small_builder(DRD_DTYPE_F32);
    drd_gguf_set_str(b, keys[k], "a b");
    build_fail(b, keys[k], "token/merge list as a string");
    drd_gguf_builder_destroy(b);
  }
  b = small_builder(DRD_DTYPE_F32);
  drd_gguf_remove_kv(b, "tokenizer.ggml.merges");
  build_fail(b, "tokenizer.ggml.merges", "merges missing");
  drd_gguf_builder_destroy(b);
  /* malformed merges */
  const char *bad_merges[] = {"ab", " ab", "ab ", " ", "", "a"};
  for (size_t i = 0; i < COUNT(bad_merges); i++) {
    const char *m[2] = {"a b", bad_merges[i]};
    b = small_builder(DRD_DTYPE_F32);
    drd_gguf_set_str_array(b, "tokenizer.ggml.merges", m, 2);
    build_fail(b, "tokenizer.ggml.merges[1]", "bad merge");
    drd_gguf_builder_destroy(b);
  }
  /* special token ids: out of range or the wrong type */
  const char *const sp[] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                            "tokenizer.ggml.padding_token_id"};
  for (int k = 0; k < 3; k++) {
    const uint32_t badv[] = {260, 261, UINT32_MAX, 0x80000000u};
    for (size_t i = 0; i < COUNT(badv); i++) {
      b = small_builder(DRD_DTYPE_F32);
      drd_gguf_set_u32(b, sp[k], badv[i]);
      build_fail(b, sp[k], "special id out of range");
      drd_gguf_builder_destroy(b);
    }
    b = small_builder(DRD_DTYPE_F32);
    drd_gguf_set_i32(b, sp[k], 5);
    build_fail(b, sp[k], "special id as i32");
    drd_gguf_builder_destroy(b);
  }
  /* a NUL byte inside a token and inside a merge */
  for (int k = 0; k < 2; k++) {
    b = small_builder(DRD_DTYPE_F32);
    uint8_t *f;
    size_t size;
    drd_gguf_kv_layout l;
    if (!drd_gguf_builder_write(b, &f, &size) && !drd_gguf_builder_kv_layout(b, keys[k], &l)) {
      f[l.value + 12 + 8] = 0; /* first byte of element 0 */
      expect_fail(f, size, "NUL", "NUL in %s[0]", keys[k]);
      free(f);
    }
    drd_gguf_builder_destroy(b);
  }
  drd_test_vocab_free(v);
}

/* ------------------------------------------------------------------ tensors */

static const char *const k_global_tensors[] = {
    "token_embd.weight", "in_proj.weight", "in_proj.bias", "time_mlp.0.weight",
    "time_mlp.0.bias", "time_mlp.2.weight", "time_mlp.2.bias", "output_norm.weight",
    "out_proj.weight", "out_proj.bias"};
static const char *const k_layer_tensors[] = {
    "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate_inp",
    "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};

static void tensor_cases(const char *name) {
  drd_gguf_builder *b;
  char what[160];
  /* missing */
  b = small_builder(DRD_DTYPE_F32);
  drd_gguf_remove_tensor(b, name);
  snprintf(what, sizeof what, "%s missing", name);
  build_fail(b, name, what);
  drd_gguf_builder_destroy(b);
  /* wrong shapes: one dimension off, transposed, an extra or a missing dimension */
  uint32_t nd = 0;
  uint64_t ne[4] = {1, 1, 1, 1}, n = 1;
  uint8_t *f = NULL;
  size_t size;
  drd_gguf *g = NULL;
  b = small_builder(DRD_DTYPE_F32);
  if (b && !drd_gguf_builder_write(b, &f, &size) && drd_gguf_parse(f, size, &g) == DRD_OK) {
    const drd_gguf_tensor *t = drd_gguf_find_tensor(g, name);
    if (t) {
      nd = t->n_dims;
      memcpy(ne, t->ne, sizeof ne);
      n = t->n_elements;
    }
    drd_gguf_free(g);
  }
  free(f);
  drd_gguf_builder_destroy(b);
  if (!nd) {
    report("%s: not found in the small model", name);
    return;
  }
  float *zeros = calloc((size_t)n * 4 + 64, sizeof *zeros);
  if (!zeros) return;
  for (int v = 0; v < 5; v++) {
    uint64_t ne2[4];
    memcpy(ne2, ne, sizeof ne2);
    uint32_t nd2 = nd;
    switch (v) {
    case 0: ne2[0] += 1; break;
    case 1: ne2[nd - 1] += 1; break;
    case 2: if (nd < 2 || ne[0] == ne[1]) continue; ne2[0] = ne[1], ne2[1] = ne[0]; break;
    case 3: ne2[nd] = 1, nd2 = nd + 1; break;  /* [1, ...] */
    case 4: if (nd < 2) continue; ne2[nd - 2] *= ne2[nd - 1], nd2 = nd - 1; break; /* flattened */
    }
    uint64_t n2 = 1;
    for (uint32_t i = 0; i < nd2; i++) n2 *= ne2[i];
    b = small_builder(DRD_DTYPE_F32);
    drd_gguf_add_tensor_raw(b, name, DRD_DTYPE_F32, nd2, ne2, zeros, (size_t)n2 * 4);
    snprintf(what, sizeof what, "%s: wrong shape %d", name, v);
    build_fail(b, "but hyperparameters need", what);
    drd_gguf_builder_destroy(b);
  }
  /* a q8_0 tensor whose rows are not a multiple of 32 long */
  if (ne[0] % 32) {
    b = small_builder(DRD_DTYPE_F32);
    drd_gguf_add_tensor_raw(b, name, DRD_DTYPE_Q8_0, nd, ne, zeros, (size_t)n / 32 * 34 + 34);
    snprintf(what, sizeof what, "%s: q8_0 with rows of %llu", name, (unsigned long long)ne[0]);
    build_fail(b, "multiple of 32", what);
    drd_gguf_builder_destroy(b);
  }
  /* a type SPEC does not allow, named in the message */
  b = small_builder(DRD_DTYPE_F32);
  drd_gguf_add_tensor_raw(b, name, 2 /* q4_0 */, nd, ne, zeros, (size_t)n);
  snprintf(what, sizeof what, "%s: q4_0", name);
  build_fail(b, "q4_0", what);
  drd_gguf_builder_destroy(b);
  free(zeros);
}

static void test_tensors(void) {
  for (size_t i = 0; i < COUNT(k_global_tensors); i++) tensor_cases(k_global_tensors[i]);
  char name[64];
  for (size_t i = 0; i < COUNT(k_layer_tensors); i++) {
    snprintf(name, sizeof name, "blk.0.%s.weight", k_layer_tensors[i]);
    tensor_cases(name);
  }
  /* duplicate tensor names */
  drd_gguf_builder *b = small_builder(DRD_DTYPE_F32);
  float x[8] = {0};
  uint64_t shape[1] = {8};
  drd_gguf_add_tensor_f32(b, "in_proj.biaX", DRD_DTYPE_F32, 1, shape, x);
  uint8_t *f;
  size_t size;
  drd_gguf_tensor_layout l;
  if (!drd_gguf_builder_write(b, &f, &size) &&
      !drd_gguf_builder_tensor_layout(b, "in_proj.biaX", &l)) {
    f[l.n_dims - 1] = 's';
    expect_fail(f, size, "more than once", "duplicate tensor");
    free(f);
  }
  drd_gguf_builder_destroy(b);
  /* a matrix of another (allowed) type is fine; a bias of bf16 is not */
  b = small_builder(DRD_DTYPE_F32);
  float bias[8] = {0};
  drd_gguf_add_tensor_f32(b, "out_proj.bias", DRD_DTYPE_BF16, 1, (uint64_t[]){4}, bias);
  build_fail(b, "out_proj.bias", "bf16 bias");
  drd_gguf_builder_destroy(b);
}

/* ------------------------------------------------------------------ random damage */

/* Random byte damage to a small model: whatever happens, no crash, and a failure has a
 * message (some damage hits weights only and still loads, which is fine). */
static void test_random_damage(void) {
  drd_gguf_builder *b = small_builder(DRD_DTYPE_Q8_0);
  uint8_t *f;
  size_t size;
  if (!b || drd_gguf_builder_write(b, &f, &size)) {
    report("build");
    return;
  }
  size_t meta = drd_gguf_builder_data_start(b);
  drd_gguf_builder_destroy(b);
  drd_rng r = {g_seed ^ 0xdead};
  uint8_t *c = malloc(size);
  if (!c) return;
  for (int it = 0; it < 3000; it++) {
    memcpy(c, f, size);
    int k = (int)drd_rng_range(&r, 1, 4);
    for (int j = 0; j < k; j++) {
      size_t at = drd_rng_range(&r, 0, (uint32_t)meta - 1); /* the metadata is what matters */
      switch (drd_rng_range(&r, 0, 3)) {
      case 0: c[at] = (uint8_t)drd_rng_next(&r); break;
      case 1: c[at] ^= (uint8_t)(1u << drd_rng_range(&r, 0, 7)); break;
      case 2: c[at] = 0xff; break;
      case 3: c[at] = 0; break;
      }
    }
    size_t n = drd_rng_range(&r, 0, 9) ? size : drd_rng_range(&r, 0, (uint32_t)size);
    uint8_t *exact = malloc(n ? n : 1);
    if (!exact) break;
    memcpy(exact, c, n);
    drd_model_file *m = NULL;
    drd_status st = drd_model_file_open_memory(exact, n, &m);
    g_cases++;
    if (st != DRD_OK && !*drd_last_error()) report("random damage %d: empty message", it);
    if (st == DRD_OK) {
      /* a file that loads must be usable: touch every view */
      float tmp[64];
      const drd_tensor_view *v = &m->t.token_embd;
      drd_tensor_to_f32(v, 0, v->n_elements < 64 ? v->n_elements : 64, tmp);
      for (uint32_t i = 0; i < m->vocab.n_tokens; i++) (void)strlen(m->vocab.tokens[i]);
      drd_model_file_close(m);
    }
    free(exact);
  }
  free(c);
  free(f);
}

static void quiet(drd_log_level level, const char *msg, void *user) {
  (void)level, (void)msg, (void)user;
}

int main(void) {
  g_seed = drd_test_seed();
  g_verbose = getenv("DRDIFF_TEST_VERBOSE") && *getenv("DRDIFF_TEST_VERBOSE") == '1';
  drd_log_set(quiet, NULL, DRD_LOG_ERROR); /* thousands of expected errors */
  test_truncation();
  test_header();
  test_fields();
  test_alignment();
  test_keys();
  test_ranges();
  test_vocab();
  test_tensors();
  test_random_damage();
  if (g_fail) {
    fprintf(stderr, "test_gguf_malformed: %d of %d cases failed (seed %llu)\n", g_fail, g_cases,
            (unsigned long long)g_seed);
    return 1;
  }
  printf("test_gguf_malformed: ok (%d cases)\n", g_cases);
  return 0;
}
