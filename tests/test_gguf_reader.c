/* The GGUF reader and model loader on valid files: a built model loads from memory and from a
 * file, every hyperparameter, vocabulary entry and tensor view matches what was written, and
 * the f16 / bf16 / Q8_0 conversions are exact where they must be (f16 exhaustively).
 *
 * `test_gguf_reader --write-fuzz-corpus DIR` writes the seed files of tests/fuzz/corpus_gguf. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dtype.h"
#include "gguf.h"
#include "log.h"
#include "model_file.h"
#include "util_gguf_build.h"
#include "util_rand.h"

static int g_fail;
static uint64_t g_seed;

#define CHECK(cond, ...)                                                                       \
  do {                                                                                         \
    if (!(cond) && g_fail++ < 30) { /* the first failures say enough */                         \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                     \
      fprintf(stderr, __VA_ARGS__);                                                            \
      fprintf(stderr, " (seed %llu)\n", (unsigned long long)g_seed);                           \
    }                                                                                          \
  } while (0)

static uint32_t fbits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static float bitsf(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* ------------------------------------------------------------------ conversions */

/* f16 value by the IEEE formula, independently of dtype.c. */
static double f16_ref(uint16_t h) {
  int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
  return s ? -v : v;
}

static void test_f16(void) {
  /* f16 -> f32: every value, against the formula; NaN keeps its payload bits. */
  for (uint32_t h = 0; h < 65536; h++) {
    float f = drd_f16_to_f32((uint16_t)h);
    double r = f16_ref((uint16_t)h);
    if (isnan(r)) {
      CHECK(isnan(f) && (fbits(f) >> 31) == (h >> 15) && ((fbits(f) >> 13) & 1023) == (h & 1023),
            "f16 %04x: NaN payload", h);
    } else {
      CHECK((double)f == r && !signbit(f) == !signbit(r), "f16 %04x -> %g, want %g", h, (double)f, r);
    }
    /* round trip through f32 is the identity (NaN: stays NaN, quieted) */
    uint16_t back = drd_f32_to_f16(f);
    if (isnan(r))
      CHECK((back & 0x7c00) == 0x7c00 && (back & 0x3ff), "f16 %04x: NaN round trip %04x", h, back);
    else
      CHECK(back == h, "f16 %04x round trip gives %04x", h, back);
  }
  /* f32 -> f16 on exact midpoints between neighbours: ties go to the even one; and just
   * either side of each midpoint go to the nearer one. */
  for (uint32_t h = 0; h < 0x7bff; h++) { /* 0x7bff..inf: below */
    for (int sgn = 0; sgn < 2; sgn++) {
      uint16_t a = (uint16_t)(h | (sgn << 15)), b = (uint16_t)((h + 1) | (sgn << 15));
      double mid = (f16_ref(a) + f16_ref(b)) / 2; /* needs 12 bits: exact in f32 */
      float m = (float)mid;
      CHECK((double)m == mid, "midpoint not exact");
      uint16_t want = (h & 1) ? b : a;
      CHECK(drd_f32_to_f16(m) == want, "tie %g -> %04x, want %04x", mid, drd_f32_to_f16(m), want);
      float below = nextafterf(m, 0.0f), above = nextafterf(m, sgn ? -INFINITY : INFINITY);
      CHECK(drd_f32_to_f16(below) == a, "%.9g -> %04x, want %04x", (double)below,
            drd_f32_to_f16(below), a);
      CHECK(drd_f32_to_f16(above) == b, "%.9g -> %04x, want %04x", (double)above,
            drd_f32_to_f16(above), b);
    }
  }
  /* overflow and underflow edges */
  CHECK(drd_f32_to_f16(65504.0f) == 0x7bff, "65504");
  CHECK(drd_f32_to_f16(nextafterf(65520.0f, 0)) == 0x7bff, "just below 65520");
  CHECK(drd_f32_to_f16(65520.0f) == 0x7c00, "65520 ties to inf");
  CHECK(drd_f32_to_f16(1e30f) == 0x7c00 && drd_f32_to_f16(-1e30f) == 0xfc00, "overflow");
  CHECK(drd_f32_to_f16(INFINITY) == 0x7c00 && drd_f32_to_f16(-INFINITY) == 0xfc00, "inf");
  CHECK(drd_f32_to_f16(ldexpf(1, -25)) == 0x0000, "2^-25 ties to 0");
  CHECK(drd_f32_to_f16(nextafterf(ldexpf(1, -25), 1)) == 0x0001, "above 2^-25");
  CHECK(drd_f32_to_f16(-ldexpf(1, -26)) == 0x8000, "-2^-26 -> -0");
  CHECK(drd_f32_to_f16(1e-30f) == 0 && drd_f32_to_f16(-0.0f) == 0x8000, "tiny, -0");
  CHECK(drd_f32_to_f16(bitsf(1)) == 0, "f32 subnormal");
  uint16_t qn = drd_f32_to_f16(NAN);
  CHECK((qn & 0x7c00) == 0x7c00 && (qn & 0x3ff), "NaN -> %04x", qn);
  CHECK((drd_f32_to_f16(bitsf(0x7f800001u)) & 0x3ff) != 0, "signalling NaN stays NaN");

  /* random f32 across the whole range: the result is the nearest f16 (ties even) */
  drd_rng r = {g_seed ^ 0x1234};
  for (int i = 0; i < 200000; i++) {
    uint32_t u = (uint32_t)drd_rng_next(&r);
    if (i & 1) u = (u & 0x807fffffu) | ((uint32_t)(100 + i % 45) << 23); /* f16's range */
    float f = bitsf(u);
    if (isnan(f)) continue;
    uint16_t h = drd_f32_to_f16(f);
    double x = f, v = f16_ref(h);
    if (isinf(v)) {
      CHECK(fabs(x) >= 65520.0, "%.9g -> inf", x);
      continue;
    }
    for (int k = -1; k <= 1; k += 2) {
      int n = (int)(h & 0x7fff) + k;
      if (n < 0 || n > 0x7bff) continue;
      double w = f16_ref((uint16_t)((h & 0x8000) | n));
      CHECK(fabs(x - v) < fabs(x - w) || (fabs(x - v) == fabs(x - w) && !(h & 1)),
            "%.9g -> %04x is not the nearest", x, h);
    }
#if defined(__FLT16_MAX__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic" /* _Float16 is an extension in C11 */
    _Float16 c = (_Float16)f; /* the compiler's own conversion, as a second opinion */
#pragma GCC diagnostic pop
    uint16_t cb;
    memcpy(&cb, &c, 2);
    CHECK(cb == h, "%.9g: %04x vs compiler %04x", x, h, cb);
#endif
  }
}

static void test_bf16(void) {
  CHECK(drd_bf16_to_f32(0x3f80) == 1.0f && drd_bf16_to_f32(0xc000) == -2.0f, "bf16 values");
  CHECK(isinf(drd_bf16_to_f32(0x7f80)) && drd_bf16_to_f32(0xff80) < 0, "bf16 inf");
  CHECK(isnan(drd_bf16_to_f32(0x7fc1)), "bf16 nan");
  CHECK(drd_bf16_to_f32(0x0001) == ldexpf(1, -133), "bf16 subnormal");
  for (uint32_t h = 0; h < 65536; h++) {
    float f = drd_bf16_to_f32((uint16_t)h);
    CHECK(fbits(f) == h << 16, "bf16 %04x", h);
    if (!isnan(f)) CHECK(drd_f32_to_bf16(f) == h, "bf16 %04x round trip", h);
    else CHECK(isnan(drd_bf16_to_f32(drd_f32_to_bf16(f))), "bf16 NaN round trip");
    /* the midpoint to the next value ties to even */
    if ((h & 0x7f80) != 0x7f80 && (h & 0x7fff) != 0x7f7f) {
      float mid = bitsf((h << 16) | 0x8000u);
      uint16_t want = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
      CHECK(drd_f32_to_bf16(mid) == want, "bf16 tie %04x", h);
      CHECK(drd_f32_to_bf16(bitsf((h << 16) | 0x8001u)) == (uint16_t)(h + 1), "bf16 above tie");
      CHECK(drd_f32_to_bf16(bitsf((h << 16) | 0x7fffu)) == h, "bf16 below tie");
    }
  }
}

static void test_q8_0(void) {
  /* three hand-made blocks: scales 0.5, -2^-14 (smallest normal f16 scale), 3 */
  unsigned char blk[3 * DRD_Q8_0_BLOCK_BYTES];
  const uint16_t scale[3] = {0x3800, 0x8400, 0x4200};
  float want[96];
  for (int b = 0; b < 3; b++) {
    blk[b * 34] = (unsigned char)(scale[b] & 0xff);
    blk[b * 34 + 1] = (unsigned char)(scale[b] >> 8);
    for (int j = 0; j < 32; j++) {
      int q = (b * 32 + j) * 37 % 256 - 128; /* covers -128..127 */
      blk[b * 34 + 2 + j] = (unsigned char)(int8_t)q;
      want[b * 32 + j] = (float)(f16_ref(scale[b]) * q);
    }
  }
  float got[96];
  for (uint64_t first = 0; first < 96; first += 7)
    for (uint64_t n = 0; first + n <= 96; n += 5) {
      for (int i = 0; i < 96; i++) got[i] = -999.0f;
      drd_q8_0_to_f32(blk, first, n, got);
      for (uint64_t i = 0; i < n; i++)
        CHECK(got[i] == want[first + i], "q8_0 [%llu+%llu] = %g want %g",
              (unsigned long long)first, (unsigned long long)i, (double)got[i],
              (double)want[first + i]);
      CHECK(n == 96 || got[n] == -999.0f, "q8_0 wrote past n");
    }
  /* quantizer + dequantizer: error at most half a step (plus the f16 rounding of the scale) */
  drd_rng r = {g_seed ^ 0x5678};
  float x[64], y[64];
  unsigned char q[2 * 34];
  for (int it = 0; it < 100; it++) {
    float s = drd_rng_uniform(&r, 0.001f, 100.0f);
    drd_fill_uniform(&r, x, 64, -s, s);
    if (it == 0) memset(x, 0, sizeof x); /* all-zero block: scale 0 */
    drd_f32_to_q8_0(x, 64, q);
    drd_q8_0_to_f32(q, 0, 64, y);
    for (int b = 0; b < 2; b++) {
      float amax = 0;
      for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
      for (int j = 0; j < 32; j++)
        CHECK(fabsf(x[b * 32 + j] - y[b * 32 + j]) <= amax / 127 * 0.502f + amax * 2e-3f,
              "q8_0 round trip %g vs %g", (double)x[b * 32 + j], (double)y[b * 32 + j]);
    }
  }
}

/* drd_tensor_to_f32 on views of every type, over sub-ranges. */
static void test_tensor_to_f32(void) {
  drd_rng r = {g_seed ^ 0x9abc};
  float src[128], out[128];
  drd_fill_uniform(&r, src, 128, -3, 3);
  uint16_t h[128], bf[128];
  unsigned char q[4 * 34];
  for (int i = 0; i < 128; i++) {
    h[i] = drd_f32_to_f16(src[i]);
    bf[i] = drd_f32_to_bf16(src[i]);
  }
  drd_f32_to_q8_0(src, 128, q);
  float qref[128];
  drd_q8_0_to_f32(q, 0, 128, qref);
  struct { drd_dtype t; const void *p; } cases[4] = {
      {DRD_DTYPE_F32, src}, {DRD_DTYPE_F16, h}, {DRD_DTYPE_BF16, bf}, {DRD_DTYPE_Q8_0, q}};
  for (int c = 0; c < 4; c++) {
    drd_tensor_view v = {.name = "t", .type = cases[c].t, .ndim = 1, .shape = {128, 1, 1, 1},
                         .n_elements = 128, .data = cases[c].p};
    for (uint64_t first = 0; first < 128; first += 13) {
      uint64_t n = 128 - first > 45 ? 45 : 128 - first;
      drd_tensor_to_f32(&v, first, n, out);
      for (uint64_t i = 0; i < n; i++) {
        uint64_t k = first + i;
        float want = c == 0   ? src[k]
                     : c == 1 ? (float)f16_ref(h[k])
                     : c == 2 ? bitsf((uint32_t)bf[k] << 16)
                              : qref[k];
        CHECK(out[i] == want, "tensor_to_f32 type %d [%llu]", (int)cases[c].t,
              (unsigned long long)k);
      }
    }
  }
}

/* drd_tensor_fits_f16 against its definition (every value finite and at most 65504 once in
 * f32), on tensors that fit but for one element at a boundary: bf16 around 65504 and the
 * infinities and NaNs; Q8_0 scales whose block fits only for small |q|, and a NaN scale. */
static bool fits_by_definition(const drd_tensor_view *v) {
  float x[64];
  drd_tensor_to_f32(v, 0, v->n_elements, x);
  for (uint64_t i = 0; i < v->n_elements; i++)
    if (!(fabsf(x[i]) <= 65504.0f)) return false;
  return true;
}

static void test_fits_f16(void) {
  static const uint16_t bf_odd[] = {0x477f, 0xc77f, 0x4780, 0xc780, 0x7f80, 0xff80, 0x7fc1, 0x0001, 0x8000};
  uint16_t bf[64];
  for (size_t c = 0; c <= sizeof bf_odd / sizeof *bf_odd; c++) {
    for (int i = 0; i < 64; i++) bf[i] = drd_f32_to_bf16((float)(i - 32) * 0.37f);
    if (c < sizeof bf_odd / sizeof *bf_odd) bf[(c * 7) % 64] = bf_odd[c];
    drd_tensor_view v = {.name = "b", .type = DRD_DTYPE_BF16, .ndim = 1, .shape = {64, 1, 1, 1},
                         .n_elements = 64, .data = bf};
    CHECK(drd_tensor_fits_f16(&v) == fits_by_definition(&v), "fits_f16 bf16 case %zu", c);
  }
  /* scale d, the largest |q| in block 1: 511.75 * 128 = 65504 exactly */
  static const struct { float d; int q; } q8_odd[] = {{511.75f, -128}, {512.0f, -128}, {512.0f, 127}, {515.0f, 127},
                                                      {516.0f, 127}, {4096.0f, 15}, {4096.0f, 16}, {65504.0f, 1},
                                                      {65504.0f, 2}, {0.0f, 127}};
  unsigned char q[2 * 34];
  for (size_t c = 0; c <= sizeof q8_odd / sizeof *q8_odd; c++) {
    for (int b = 0; b < 2; b++) {
      uint16_t d = drd_f32_to_f16(0.01f);
      int top = 100;
      if (b == 1 && c < sizeof q8_odd / sizeof *q8_odd) d = drd_f32_to_f16(q8_odd[c].d), top = q8_odd[c].q;
      if (b == 1 && c == sizeof q8_odd / sizeof *q8_odd) d = 0x7e00; /* NaN */
      q[b * 34] = (unsigned char)d, q[b * 34 + 1] = (unsigned char)(d >> 8);
      for (int j = 0; j < 32; j++) q[b * 34 + 2 + j] = (unsigned char)(int8_t)(j == 9 ? top : (j % 7) - 3);
    }
    drd_tensor_view v = {.name = "q", .type = DRD_DTYPE_Q8_0, .ndim = 1, .shape = {64, 1, 1, 1},
                         .n_elements = 64, .data = q};
    CHECK(drd_tensor_fits_f16(&v) == fits_by_definition(&v), "fits_f16 q8_0 case %zu", c);
  }
  float f[3] = {1.0f, -65504.0f, 0.5f};
  drd_tensor_view v = {.name = "f", .type = DRD_DTYPE_F32, .ndim = 1, .shape = {3, 1, 1, 1},
                       .n_elements = 3, .data = f};
  CHECK(drd_tensor_fits_f16(&v), "fits_f16 f32 -65504");
  f[2] = 65520.0f;
  CHECK(!drd_tensor_fits_f16(&v), "fits_f16 f32 65520");
}

/* ------------------------------------------------------------------ generic GGUF access */

static void test_gguf_generic(void) {
  drd_gguf_builder *b = drd_gguf_builder_create();
  const uint32_t u[3] = {7, 0xffffffffu, 0};
  const float f[2] = {1.5f, -0.25f};
  const char *s[3] = {"a", "", "long string"};
  unsigned char i8arr[4 + 8 + 3] = {DRD_GGUF_I8, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 5};
  unsigned char f64v[8];
  double dv = -3.0625;
  memcpy(f64v, &dv, 8);
  drd_gguf_set_u32(b, "a.u32", 123456789u);
  drd_gguf_set_i32(b, "a.i32", -5);
  drd_gguf_set_u64(b, "a.u64", 0xfedcba9876543210ull);
  drd_gguf_set_f32(b, "a.f32", -1.25f);
  drd_gguf_set_bool(b, "a.bool", 1);
  drd_gguf_set_str(b, "a.str", "hello");
  drd_gguf_set_u32_array(b, "a.arr_u32", u, 3);
  drd_gguf_set_f32_array(b, "a.arr_f32", f, 2);
  drd_gguf_set_str_array(b, "a.arr_str", s, 3);
  drd_gguf_set_raw(b, "a.arr_i8", DRD_GGUF_ARRAY, i8arr, sizeof i8arr);
  drd_gguf_set_raw(b, "a.f64", DRD_GGUF_F64, f64v, 8);
  drd_gguf_set_u32(b, "general.alignment", 64);
  float t1[3] = {1, 2, 3}, t2[64];
  for (int i = 0; i < 64; i++) t2[i] = (float)i;
  uint64_t s1[1] = {3}, s2[2] = {2, 32};
  drd_gguf_add_tensor_f32(b, "t1", DRD_DTYPE_F32, 1, s1, t1);
  drd_gguf_add_tensor_f32(b, "t2", DRD_DTYPE_Q8_0, 2, s2, t2);
  uint8_t *buf;
  size_t size;
  CHECK(drd_gguf_builder_write(b, &buf, &size) == 0, "write");
  drd_gguf *g = NULL;
  drd_status st = drd_gguf_parse(buf, size, &g);
  CHECK(st == DRD_OK, "parse: %s", drd_last_error());
  if (st == DRD_OK) {
    const drd_gguf_kv *kv;
    CHECK(g->n_kv == 12 && g->n_tensors == 2 && g->alignment == 64, "counts");
    CHECK((kv = drd_gguf_find_kv(g, "a.u32")) && kv->type == DRD_GGUF_U32 && kv->v.u == 123456789u, "u32");
    CHECK((kv = drd_gguf_find_kv(g, "a.i32")) && kv->type == DRD_GGUF_I32 && kv->v.i == -5, "i32");
    CHECK((kv = drd_gguf_find_kv(g, "a.u64")) && kv->v.u == 0xfedcba9876543210ull, "u64");
    CHECK((kv = drd_gguf_find_kv(g, "a.f32")) && kv->type == DRD_GGUF_F32 && kv->v.f == -1.25, "f32");
    CHECK((kv = drd_gguf_find_kv(g, "a.f64")) && kv->type == DRD_GGUF_F64 && kv->v.f == dv, "f64");
    CHECK((kv = drd_gguf_find_kv(g, "a.bool")) && kv->type == DRD_GGUF_BOOL && kv->v.u == 1, "bool");
    CHECK((kv = drd_gguf_find_kv(g, "a.str")) && drd_gguf_str_eq(kv->v.s, "hello"), "str");
    CHECK((kv = drd_gguf_find_kv(g, "a.arr_u32")) && kv->arr_type == DRD_GGUF_U32 &&
              kv->arr_count == 3 && drd_gguf_arr_uint(kv, 1) == 0xffffffffu &&
              drd_gguf_arr_uint(kv, 0) == 7,
          "u32 array");
    CHECK((kv = drd_gguf_find_kv(g, "a.arr_f32")) && drd_gguf_arr_float(kv, 1) == -0.25, "f32 array");
    CHECK((kv = drd_gguf_find_kv(g, "a.arr_i8")) && kv->arr_count == 3 &&
              drd_gguf_arr_int(kv, 0) == -128 && drd_gguf_arr_int(kv, 1) == -1 &&
              drd_gguf_arr_int(kv, 2) == 5,
          "i8 array");
    CHECK((kv = drd_gguf_find_kv(g, "a.arr_str")) && kv->arr_count == 3 &&
              drd_gguf_str_eq(kv->arr_strs[0], "a") && drd_gguf_str_eq(kv->arr_strs[1], "") &&
              drd_gguf_str_eq(kv->arr_strs[2], "long string"),
          "string array");
    CHECK(!drd_gguf_find_kv(g, "a.missing") && !drd_gguf_find_kv(g, "a"), "absent key");
    const drd_gguf_tensor *t = drd_gguf_find_tensor(g, "t2");
    CHECK(t && t->n_dims == 2 && t->ne[0] == 32 && t->ne[1] == 2 && t->type == DRD_DTYPE_Q8_0 &&
              t->nbytes == 68 && t->offset % 64 == 0 && g->data_offset % 64 == 0,
          "tensor t2");
    CHECK(!drd_gguf_find_tensor(g, "t3"), "absent tensor");
    drd_gguf_free(g);
  }
  free(buf);
  /* a file with no tensors and no keys is a valid container */
  drd_gguf_builder *e = drd_gguf_builder_create();
  CHECK(drd_gguf_builder_write(e, &buf, &size) == 0 && size == 24, "empty write");
  CHECK(drd_gguf_parse(buf, size, &g) == DRD_OK && g->n_kv == 0 && g->n_tensors == 0 &&
            !drd_gguf_find_kv(g, "x") && !drd_gguf_find_tensor(g, "x"),
        "empty GGUF: %s", drd_last_error());
  drd_gguf_free(g);
  free(buf);
  drd_gguf_builder_destroy(e);
  drd_gguf_builder_destroy(b);
}

/* ------------------------------------------------------------------ model files */

static int hp_equal(const drd_hparams *a, const drd_hparams *b) {
  return a->V == b->V && a->de == b->de && a->d == b->d && a->L == b->L && a->H == b->H &&
         a->dt == b->dt && a->E == b->E && a->dff == b->dff && a->kmax == b->kmax &&
         a->route_p == b->route_p && a->rope_theta == b->rope_theta &&
         a->norm_eps == b->norm_eps && a->context_length == b->context_length &&
         a->schedule == b->schedule && a->time_scale == b->time_scale && a->B == b->B &&
         a->N1 == b->N1 && a->N2 == b->N2 && a->N3 == b->N3 &&
         !memcmp(a->window, b->window, sizeof a->window) &&
         !memcmp(a->dilation, b->dilation, sizeof a->dilation) &&
         !memcmp(a->hops, b->hops, sizeof a->hops) &&
         !memcmp(a->global, b->global, sizeof a->global) && a->steps == b->steps &&
         a->sas_gamma == b->sas_gamma && a->sas_temperature == b->sas_temperature &&
         a->sas_start == b->sas_start;
}

/* One view against what the builder wrote: name, logical shape, type, bytes, values. */
static void check_view(const drd_gguf_builder *b, const drd_tensor_view *v, const char *name,
                       uint32_t ndim, uint64_t s0, uint64_t s1, uint64_t s2, const uint8_t *buf,
                       size_t size) {
  const uint64_t want[3] = {s0, s1, s2};
  size_t nbytes = 0;
  const void *bytes = drd_gguf_tensor_bytes(b, name, &nbytes);
  const float *src = drd_gguf_tensor_source(b, name);
  CHECK(v->name && !strcmp(v->name, name), "view name %s vs %s", v->name ? v->name : "(null)", name);
  CHECK(v->ndim == ndim, "%s: ndim %u", name, v->ndim);
  uint64_t n = 1;
  for (uint32_t i = 0; i < ndim; i++) {
    CHECK(v->shape[i] == want[i], "%s: shape[%u] = %llu", name, i, (unsigned long long)v->shape[i]);
    n *= want[i];
  }
  for (uint32_t i = ndim; i < 4; i++) CHECK(v->shape[i] == 1, "%s: unused dims are 1", name);
  CHECK(v->n_elements == n, "%s: n_elements", name);
  CHECK(bytes && v->nbytes == nbytes && !memcmp(v->data, bytes, nbytes), "%s: bytes differ", name);
  CHECK((const uint8_t *)v->data >= buf && (const uint8_t *)v->data + v->nbytes <= buf + size,
        "%s: data outside the buffer", name);
  if (!src || !bytes || v->nbytes != nbytes) return;
  float *out = malloc((size_t)n * sizeof *out);
  if (!out) return;
  drd_tensor_to_f32(v, 0, n, out);
  for (uint64_t i = 0; i < n; i++) {
    double x = src[i], y = out[i], tol = 0;
    switch (v->type) {
    case DRD_DTYPE_F32: tol = 0; break;
    case DRD_DTYPE_F16: tol = fabs(x) * ldexp(1, -11) + ldexp(1, -25); break;
    case DRD_DTYPE_BF16: tol = fabs(x) * ldexp(1, -8); break;
    case DRD_DTYPE_Q8_0: {
      double amax = 0;
      uint64_t b0 = i / 32 * 32;
      for (uint64_t j = b0; j < b0 + 32; j++) amax = fmax(amax, fabs(src[j]));
      tol = amax / 127 * 0.502 + amax * 2e-3;
      break;
    }
    }
    if (!(fabs(x - y) <= tol)) {
      CHECK(0, "%s[%llu] (%s): %g but wrote %g", name, (unsigned long long)i,
            drd_dtype_name(v->type), y, x);
      break;
    }
  }
  free(out);
}

static void check_model(const drd_model_file *m, const drd_gguf_builder *b, const drd_hparams *hp,
                        int specials, const uint8_t *buf, size_t size) {
  CHECK(hp_equal(&m->hp, hp), "hyperparameters differ from what was written");
  drd_test_vocab *tv = drd_test_vocab_create(hp->V);
  CHECK(tv != NULL, "test vocab");
  if (tv) {
    CHECK(m->vocab.n_tokens == hp->V && m->vocab.n_merges == tv->n_merges, "vocab sizes %u %u",
          m->vocab.n_tokens, m->vocab.n_merges);
    for (uint32_t i = 0; i < m->vocab.n_tokens && i < tv->n_tokens; i++)
      CHECK(!strcmp(m->vocab.tokens[i], tv->tokens[i]), "token %u", i);
    for (uint32_t i = 0; i < m->vocab.n_merges && i < tv->n_merges; i++)
      CHECK(!strcmp(m->vocab.merges[i], tv->merges[i]), "merge %u", i);
    int32_t bos = specials ? tv->bos_id : -1, eos = specials ? tv->eos_id : -1,
            pad = specials ? tv->pad_id : -1;
    CHECK(m->vocab.bos_id == bos && m->vocab.eos_id == eos && m->vocab.pad_id == pad,
          "special ids %d %d %d", m->vocab.bos_id, m->vocab.eos_id, m->vocab.pad_id);
    drd_test_vocab_free(tv);
  }
  const drd_model_tensors *t = &m->t;
  uint64_t V = hp->V, de = hp->de, d = hp->d, dt = hp->dt, E = hp->E, dff = hp->dff;
  check_view(b, &t->token_embd, "token_embd.weight", 2, V, de, 0, buf, size);
  check_view(b, &t->in_proj_w, "in_proj.weight", 2, d, de, 0, buf, size);
  check_view(b, &t->in_proj_b, "in_proj.bias", 1, d, 0, 0, buf, size);
  check_view(b, &t->time_mlp0_w, "time_mlp.0.weight", 2, d, dt, 0, buf, size);
  check_view(b, &t->time_mlp0_b, "time_mlp.0.bias", 1, d, 0, 0, buf, size);
  check_view(b, &t->time_mlp2_w, "time_mlp.2.weight", 2, d, d, 0, buf, size);
  check_view(b, &t->time_mlp2_b, "time_mlp.2.bias", 1, d, 0, 0, buf, size);
  check_view(b, &t->output_norm, "output_norm.weight", 1, d, 0, 0, buf, size);
  check_view(b, &t->out_proj_w, "out_proj.weight", 2, de, d, 0, buf, size);
  check_view(b, &t->out_proj_b, "out_proj.bias", 1, de, 0, 0, buf, size);
  CHECK(t->in_proj_b.type == DRD_DTYPE_F32 && t->output_norm.type == DRD_DTYPE_F32, "f32 norms");
  char n[64];
  for (uint32_t l = 0; l < hp->L; l++) {
    const drd_layer_tensors *ly = &t->layers[l];
#define LN(what) (snprintf(n, sizeof n, "blk.%u.%s.weight", l, what), n)
    check_view(b, &ly->attn_norm, LN("attn_norm"), 1, d, 0, 0, buf, size);
    check_view(b, &ly->attn_q, LN("attn_q"), 2, d, d, 0, buf, size);
    check_view(b, &ly->attn_k, LN("attn_k"), 2, d, d, 0, buf, size);
    check_view(b, &ly->attn_v, LN("attn_v"), 2, d, d, 0, buf, size);
    check_view(b, &ly->attn_output, LN("attn_output"), 2, d, d, 0, buf, size);
    check_view(b, &ly->ffn_norm, LN("ffn_norm"), 1, d, 0, 0, buf, size);
    check_view(b, &ly->ffn_gate_inp, LN("ffn_gate_inp"), 2, E, d, 0, buf, size);
    check_view(b, &ly->ffn_gate_exps, LN("ffn_gate_exps"), 3, E, dff, d, buf, size);
    check_view(b, &ly->ffn_up_exps, LN("ffn_up_exps"), 3, E, dff, d, buf, size);
    check_view(b, &ly->ffn_down_exps, LN("ffn_down_exps"), 3, E, d, dff, buf, size);
#undef LN
  }
}

static void test_model(const char *label, const drd_hparams *hp, drd_dtype type, int mixed,
                       int specials, int via_file) {
  drd_test_model_desc desc = {.hp = hp, .seed = g_seed, .matrix_type = type, .mixed_types = mixed,
                              .no_special_tokens = !specials};
  drd_gguf_builder *b = drd_test_model_builder(&desc);
  uint8_t *buf = NULL;
  size_t size = 0;
  CHECK(b && drd_gguf_builder_write(b, &buf, &size) == 0, "%s: build", label);
  if (!buf) {
    drd_gguf_builder_destroy(b);
    return;
  }
  drd_model_file *m = NULL;
  drd_status st;
  char path[] = "/tmp/drd_test_gguf_XXXXXX";
  if (via_file) {
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, buf, size) == (ssize_t)size, "%s: temp file", label);
    if (fd >= 0) close(fd);
    st = drd_model_file_open(path, &m);
  } else {
    st = drd_model_file_open_memory(buf, size, &m);
  }
  CHECK(st == DRD_OK, "%s: load failed: %s", label, drd_last_error());
  if (st == DRD_OK) {
    /* with a file, the views point into the mapping: find its base from a known offset */
    const uint8_t *base = buf;
    if (via_file) {
      drd_gguf_tensor_layout lay;
      drd_gguf_builder_tensor_layout(b, "token_embd.weight", &lay);
      base = (const uint8_t *)m->t.token_embd.data - lay.data;
    }
    check_model(m, b, hp, specials, base, size);
    drd_model_file_close(m);
  }
  if (via_file) unlink(path);
  free(buf);
  drd_gguf_builder_destroy(b);
}

/* Keys and tensors the loader does not know about are ignored; other alignments work. */
static void test_extras(void) {
  drd_hparams hp;
  drd_test_small_hparams(&hp);
  drd_test_model_desc desc = {.hp = &hp, .seed = g_seed, .matrix_type = DRD_DTYPE_F16};
  drd_gguf_builder *b = drd_test_model_builder(&desc);
  if (!b) {
    CHECK(0, "build");
    return;
  }
  const uint32_t u[2] = {1, 2};
  const char *s[2] = {"x", "y"};
  drd_gguf_set_u32(b, "extra.u32", 1);
  drd_gguf_set_f32(b, "extra.f32", 1);
  drd_gguf_set_bool(b, "extra.bool", 0);
  drd_gguf_set_str(b, "extra.str", "s");
  drd_gguf_set_u32_array(b, "extra.arr", u, 2);
  drd_gguf_set_str_array(b, "extra.strs", s, 2);
  drd_gguf_set_str(b, "tokenizer.chat_template", "{{ x }}");
  drd_gguf_set_u32(b, "general.alignment", 128);
  float x[64] = {0};
  uint64_t shape[2] = {2, 32};
  drd_gguf_add_tensor_f32(b, "extra.weight", DRD_DTYPE_Q8_0, 2, shape, x);
  uint8_t *buf;
  size_t size;
  CHECK(drd_gguf_builder_write(b, &buf, &size) == 0, "write");
  drd_model_file *m = NULL;
  drd_status st = drd_model_file_open_memory(buf, size, &m);
  CHECK(st == DRD_OK, "extra keys/tensors, alignment 128: %s", drd_last_error());
  if (st == DRD_OK) {
    check_model(m, b, &hp, 1, buf, size);
    CHECK(((const uint8_t *)m->t.token_embd.data - buf) % 128 == 0, "128-byte alignment");
    drd_model_file_close(m);
  }
  free(buf);
  drd_gguf_builder_destroy(b);

  /* the other schedules parse to their enum values */
  for (int s2 = 0; s2 < 3; s2++) {
    hp.schedule = (drd_schedule)s2;
    desc.hp = &hp;
    CHECK(drd_test_model_bytes(&desc, &buf, &size) == 0, "build");
    st = drd_model_file_open_memory(buf, size, &m);
    CHECK(st == DRD_OK && m->hp.schedule == (drd_schedule)s2, "schedule %d", s2);
    drd_model_file_close(m);
    free(buf);
  }
}

static void test_open_errors(void) {
  drd_model_file *m = (drd_model_file *)1;
  CHECK(drd_model_file_open("/nonexistent/drdiff.gguf", &m) == DRD_ERROR_IO && m == NULL &&
            strstr(drd_last_error(), "/nonexistent/drdiff.gguf"),
        "missing file: %s", drd_last_error());
  CHECK(drd_model_file_open("/tmp", &m) == DRD_ERROR_IO, "directory");
  char path[] = "/tmp/drd_test_empty_XXXXXX";
  int fd = mkstemp(path);
  if (fd >= 0) {
    close(fd);
    CHECK(drd_model_file_open(path, &m) == DRD_ERROR_BAD_MODEL && *drd_last_error(),
          "empty file");
    unlink(path);
  }
  CHECK(drd_model_file_open_memory(NULL, 0, &m) == DRD_ERROR_BAD_MODEL, "empty buffer");
  CHECK(drd_model_file_open_memory(NULL, 5, &m) == DRD_ERROR_INVALID_ARGUMENT, "NULL buffer");
  drd_model_file_close(NULL);
}

/* ------------------------------------------------------------------ test vocabulary */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The builder's vocabulary is a valid byte-level BPE vocabulary: distinct tokens, all 256
 * byte symbols, and every merge "l r" joins two earlier tokens into the token it adds. */
static void test_vocab_valid(uint32_t V) {
  drd_test_vocab *v = drd_test_vocab_create(V);
  CHECK(v && v->n_tokens == V, "vocab %u: created", V);
  if (!v) return;
  char **sorted = malloc(V * sizeof *sorted);
  if (!sorted) return;
  memcpy(sorted, v->tokens, V * sizeof *sorted);
  qsort(sorted, V, sizeof *sorted, cmp_str);
  for (uint32_t i = 1; i < V; i++) CHECK(strcmp(sorted[i - 1], sorted[i]), "vocab %u: duplicate %s", V, sorted[i]);
  CHECK(V < 259 || (v->n_merges == V - 259 && v->bos_id == (int32_t)V - 3 &&
                    v->eos_id == (int32_t)V - 2 && v->pad_id == (int32_t)V - 1),
        "vocab %u: layout", V);
  CHECK(V < 259 || !strcmp(v->tokens[32], "\xC4\xA0"), "byte 32 is Ġ");
  for (uint32_t i = 0; i < v->n_merges; i++) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s", v->merges[i]);
    char *sp = strchr(buf, ' ');
    CHECK(sp && sp != buf && sp[1], "merge %u form", i);
    if (!sp) continue;
    *sp = 0;
    const char *l = buf, *r = sp + 1;
    char joined[2 * sizeof buf];
    snprintf(joined, sizeof joined, "%s%s", l, r);
    CHECK(!strcmp(joined, v->tokens[256 + i]), "merge %u makes %s", i, v->tokens[256 + i]);
    for (int side = 0; side < 2; side++) {
      const char *part = side ? r : l;
      const char *const *hit = bsearch(&part, sorted, V, sizeof *sorted, cmp_str);
      CHECK(hit, "merge %u: %s is not a token", i, part);
      /* earlier: a byte symbol or a token made by an earlier merge (a linear scan: only
       * for the first few thousand merges, to keep the test fast) */
      if (i > 3000) continue;
      uint32_t id = 0;
      while (id < 256 + i && strcmp(v->tokens[id], part)) id++;
      CHECK(id < 256 + i, "merge %u: %s is not made before", i, part);
    }
  }
  free(sorted);
  drd_test_vocab_free(v);
}

/* ------------------------------------------------------------------ fuzz corpus */

static int write_bytes(const char *dir, const char *name, const uint8_t *p, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  int ok = f && fwrite(p, 1, n, f) == n;
  if (f && fclose(f)) ok = 0;
  fprintf(stderr, "%s: %zu bytes%s\n", path, n, ok ? "" : " (FAILED)");
  return ok ? 0 : 1;
}

/* Small valid files that reach every part of the loader, each well under 64 KiB. */
static int write_corpus(const char *dir) {
  int err = 0;
  drd_hparams small, micro;
  drd_test_small_hparams(&small);
  micro = small; /* a vocabulary below 259 tokens: bytes only, no merges or specials */
  micro.V = 16, micro.de = 2, micro.d = 4, micro.H = 2, micro.dt = 2, micro.dff = 32;
  struct { const char *name; const drd_hparams *hp; drd_dtype t; int mixed; } seeds[] = {
      {"small_f16.gguf", &small, DRD_DTYPE_F16, 0},
      {"small_mixed.gguf", &small, DRD_DTYPE_F32, 1},
      {"micro_f32.gguf", &micro, DRD_DTYPE_F32, 0},
      {"micro_q8_0.gguf", &micro, DRD_DTYPE_Q8_0, 0},
  };
  for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
    drd_test_model_desc desc = {.hp = seeds[i].hp, .seed = 1 + i, .matrix_type = seeds[i].t,
                                .mixed_types = seeds[i].mixed};
    uint8_t *buf;
    size_t size;
    if (drd_test_model_bytes(&desc, &buf, &size)) return 1;
    err |= write_bytes(dir, seeds[i].name, buf, size);
    free(buf);
  }
  /* a container with every value type and no tensors */
  drd_gguf_builder *b = drd_gguf_builder_create();
  const uint32_t u[3] = {1, 2, 3};
  const float f[2] = {0.5f, 2};
  const char *s[2] = {"a b", "c"};
  drd_gguf_set_str(b, "general.architecture", "drdiff");
  drd_gguf_set_u32(b, "u32", 1);
  drd_gguf_set_i32(b, "i32", -1);
  drd_gguf_set_u64(b, "u64", 2);
  drd_gguf_set_f32(b, "f32", 1);
  drd_gguf_set_bool(b, "bool", 1);
  drd_gguf_set_u32_array(b, "au32", u, 3);
  drd_gguf_set_f32_array(b, "af32", f, 2);
  drd_gguf_set_str_array(b, "astr", s, 2);
  uint8_t *buf;
  size_t size;
  if (drd_gguf_builder_write(b, &buf, &size)) return 1;
  err |= write_bytes(dir, "container_kv_types.gguf", buf, size);
  free(buf);
  drd_gguf_builder_destroy(b);
  return err;
}

static void quiet(drd_log_level level, const char *msg, void *user) {
  (void)level, (void)msg, (void)user;
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "--write-fuzz-corpus")) return write_corpus(argv[2]);
  g_seed = drd_test_seed();
  drd_log_set(quiet, NULL, DRD_LOG_ERROR); /* the open_errors cases log; keep output clean */

  test_f16();
  test_bf16();
  test_q8_0();
  test_tensor_to_f32();
  test_fits_f16();
  test_gguf_generic();

  drd_hparams tiny, small;
  drd_test_tiny_hparams(&tiny);
  drd_test_small_hparams(&small);
  test_model("tiny f32", &tiny, DRD_DTYPE_F32, 0, 1, 0);
  test_model("tiny f16", &tiny, DRD_DTYPE_F16, 0, 1, 0);
  test_model("tiny q8_0", &tiny, DRD_DTYPE_Q8_0, 0, 1, 0);
  test_model("tiny bf16", &tiny, DRD_DTYPE_BF16, 0, 0, 0);
  test_model("tiny mixed (file)", &tiny, DRD_DTYPE_F32, 1, 1, 1);
  test_model("small f16", &small, DRD_DTYPE_F16, 0, 1, 0);
  drd_hparams big_vocab = small;
  big_vocab.V = 5000; /* systematic merges beyond the common-English list */
  test_model("small, V=5000", &big_vocab, DRD_DTYPE_F16, 0, 1, 0);
  test_extras();
  test_open_errors();
  test_vocab_valid(16);
  test_vocab_valid(300);
  test_vocab_valid(32768); /* base-220m */

  if (g_fail) {
    fprintf(stderr, "test_gguf_reader: %d failures (seed %llu)\n", g_fail,
            (unsigned long long)g_seed);
    return 1;
  }
  printf("test_gguf_reader: ok\n");
  return 0;
}
