/* GEMM kernel C = A W^T + bias against the host reference: f32 and f16 weights, with and
 * without bias, odd M, N, K (1 included) for the tile configuration drd_op_gemm picks and for
 * every other one this device can run (cooperative-matrix tiles included where it has them), a product spanning several tiles in every dimension,
 * and, under a 64 KiB binding range, tensors split into chunks of M, N and K. The cooperative-
 * matrix kernel's f16 C (drd_gemm_args.ctype) must be its f32 C rounded to nearest even, bit
 * for bit, with and without bias and RoPE, and is refused where it cannot hold final sums. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dtype.h"
#include "ops_attention.h"
#include "ref_ops.h"
#include "util_gpu.h"
#include "util_rand.h"

static int failures, cases;
static int rope_direct; /* RoPE cases with a tile that gemm_cm.comp stores 4 columns at a time (cm_put4x2) */
static double worst; /* largest error / tolerance seen */
static int c16_cases; /* products also run with f16 C */

/* max over elements of |got - want| / scale, scale = sum_k |a w| + |bias|: the error bound of
 * a dot product is proportional to it, and unlike |want| it does not vanish when the terms
 * happen to cancel (a 1 x 1 output can be arbitrarily close to 0). Non-finite outputs (an
 * unwritten NaN) are counted apart. */
static double compare(const float *got, const float *want, const float *scale, size_t n, size_t *nonfinite) {
  double worst = 0;
  *nonfinite = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(got[i])) {
      (*nonfinite)++;
      continue;
    }
    double e = fabs((double)got[i] - (double)want[i]) / fmax((double)scale[i], 1e-30);
    if (e > worst) worst = e;
  }
  return worst;
}

/* records drd_op_gemm_ex(cfg, g) alone and runs it to completion */
static void run_gemm(drd_context *ctx, const drd_gemm_config *cfg, const drd_gemm_args *g) {
  drd_seq *s;
  drd_test_check(drd_seq_begin(ctx, &s), "seq_begin");
  drd_test_check(drd_op_gemm_ex(s, cfg, g), "gemm");
  drd_test_check(drd_seq_end(s), "seq_end");
  drd_test_check(drd_seq_run(s), "seq_run");
  drd_seq_destroy(s);
}

/* Runs g again into an f16 C scaled by c_scale (0: unscaled) and counts the elements that are
 * not got (g's f32 C) times c_scale, rounded to nearest even; returns the recording's status
 * (where the f16 C is refused, nothing runs). The scale with f32 C must be refused. */
static drd_status check_c16(drd_context *ctx, const drd_gemm_config *cfg, const drd_gemm_args *g, const float *got,
                            size_t nc, float c_scale, size_t *mismatches) {
  drd_buffer bc16;
  drd_test_check(drd_buffer_create(ctx, nc * 2 + 4, &bc16), "buffer_create f16 C");
  drd_test_check(drd_buffer_fill(ctx, &bc16, 0x7e007e00u), "poison f16 C");
  drd_gemm_args g16 = *g;
  g16.c_scale = c_scale;
  drd_seq *s;
  drd_test_check(drd_seq_begin(ctx, &s), "seq_begin");
  if (c_scale != 0.0f && drd_op_gemm_ex(s, cfg, &g16) != DRD_ERROR_INVALID_ARGUMENT) {
    fprintf(stderr, "FAIL gemm M=%u N=%u K=%u: a C scale with f32 C was not refused\n", g->M, g->N, g->K);
    failures++;
  }
  g16.C = &bc16, g16.ctype = DRD_DTYPE_F16;
  drd_status st = drd_op_gemm_ex(s, cfg, &g16);
  *mismatches = 0;
  if (st == DRD_OK) {
    uint16_t *h = malloc(nc * 2 + 4);
    if (!h) {
      fprintf(stderr, "FAIL: out of host memory\n");
      exit(1);
    }
    drd_test_check(drd_seq_end(s), "seq_end");
    drd_test_check(drd_seq_run(s), "seq_run f16 C");
    drd_test_check(drd_buffer_download(ctx, &bc16, 0, h, nc * 2), "download f16 C");
    for (size_t i = 0; i < nc; i++) *mismatches += h[i] != drd_f32_to_f16(c_scale != 0.0f ? got[i] * c_scale : got[i]);
    free(h);
    c16_cases++;
  }
  drd_seq_destroy(s);
  drd_buffer_destroy(ctx, &bc16);
  return st;
}

/* cfg NULL: drd_op_gemm's own choice */
static void run_case(drd_context *ctx, drd_rng *rng, const drd_gemm_config *cfg, uint32_t M, uint32_t N,
                     uint32_t K, drd_dtype wtype, bool with_bias) {
  size_t na = (size_t)M * K, nw = (size_t)N * K, nc = (size_t)M * N;
  float *a = malloc(na * 4), *w = malloc(nw * 4), *bias = malloc((size_t)N * 4);
  float *want = malloc(nc * 4), *got = malloc(nc * 4);
  uint16_t *w16 = malloc(nw * 2);
  drd_fill_uniform(rng, a, na, -1, 1);
  drd_fill_uniform(rng, w, nw, -1, 1);
  drd_fill_uniform(rng, bias, N, -4, 4);
  if (wtype == DRD_DTYPE_F16) { /* the reference multiplies by exactly the halves the GPU reads */
    drd_f32_to_f16_row(w, w16, nw);
    drd_f16_to_f32_row(w16, w, nw);
  }
  drd_test_check(drd_ref_gemm(a, w, with_bias ? bias : NULL, want, M, N, K), "drd_ref_gemm");
  /* the same product on absolute values: the per-element scale of the error */
  float *abs_a = malloc(na * 4), *abs_w = malloc(nw * 4), *abs_b = malloc((size_t)N * 4), *scale = malloc(nc * 4);
  for (size_t i = 0; i < na; i++) abs_a[i] = fabsf(a[i]);
  for (size_t i = 0; i < nw; i++) abs_w[i] = fabsf(w[i]);
  for (size_t i = 0; i < N; i++) abs_b[i] = fabsf(bias[i]);
  drd_test_check(drd_ref_gemm(abs_a, abs_w, with_bias ? abs_b : NULL, scale, M, N, K), "drd_ref_gemm");

  drd_buffer ba = drd_test_buffer_f32(ctx, a, na), bb = drd_test_buffer_f32(ctx, bias, N);
  drd_buffer bc = drd_test_buffer_f32(ctx, NULL, nc), bw;
  if (wtype == DRD_DTYPE_F16) {
    drd_test_check(drd_buffer_create(ctx, nw * 2, &bw), "buffer");
    drd_test_check(drd_buffer_upload(ctx, &bw, 0, w16, nw * 2), "upload");
  } else {
    bw = drd_test_buffer_f32(ctx, w, nw);
  }
  drd_gemm_args g = {.A = &ba, .atype = DRD_DTYPE_F32, .W = &bw, .wtype = wtype, .bias = with_bias ? &bb : NULL,
                     .C = &bc, .M = M, .N = N, .K = K};
  run_gemm(ctx, cfg, &g);
  drd_test_download_f32(ctx, &bc, got, nc);

  size_t bad;
  double err = compare(got, want, scale, nc, &bad);
  /* f32 products and an f32 running sum in k order vs the reference's f64: relative to
   * sum |a w| the rounding errors of random terms stay near one ulp (the bound for adversarial
   * terms is K ulps); lavapipe measures <= 3.2e-7 for K up to 20000, a margin of ~5 here */
  double tol = 1.5e-6 + 1e-8 * sqrt((double)K);
  drd_gemm_config u = cfg ? *cfg : drd_gemm_pick_for(ctx, M, N, K, wtype);
  /* The cooperative-matrix kernel rounds A to f16 (W is f16 already): each product moves by
   * at most 2^-11 of |a w|, so the sum by at most 2^-11 of the scale, a bound that holds for
   * any input, plus the f32 accumulation above. */
  if (u.kind == DRD_GEMM_COOPMAT) tol += ldexp(1.0, -11);
  if (err / tol > worst) worst = err / tol;
  cases++;
  char what[160];
  static const char *kinds[] = {"tiled", "subgroup", "coopmat"};
  snprintf(what, sizeof what, "gemm M=%u N=%u K=%u %s%s, %s %ux%ux%u/%ux%u", M, N, K,
           wtype == DRD_DTYPE_F16 ? "f16" : "f32", with_bias ? " bias" : "", kinds[u.kind], u.bm, u.bn, u.bk, u.tm,
           u.tn);
  if (getenv("DRDIFF_TEST_VERBOSE")) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    fprintf(stderr, "  [%.3f] %s: rel err %.3g (tol %.3g)\n", ts.tv_sec + ts.tv_nsec * 1e-9, what, err, tol);
  }
  if (bad || !(err <= tol)) {
    fprintf(stderr, "FAIL %s: rel err %.3g (tol %.3g), %zu non-finite\n", what, err, tol, bad);
    failures++;
  }
  drd_buffer_destroy(ctx, &ba);
  drd_buffer_destroy(ctx, &bb);
  drd_buffer_destroy(ctx, &bc);
  drd_buffer_destroy(ctx, &bw);
  free(a), free(w), free(bias), free(want), free(got), free(w16);
  free(abs_a), free(abs_w), free(abs_b), free(scale);
}

/* the four weight-type x bias combinations of one shape */
static void run_shape(drd_context *ctx, drd_rng *rng, const drd_gemm_config *cfg, uint32_t M, uint32_t N,
                      uint32_t K) {
  for (int v = 0; v < 4; v++) run_case(ctx, rng, cfg, M, N, K, v & 1 ? DRD_DTYPE_F16 : DRD_DTYPE_F32, v & 2);
}

/* A on the device as f16 halves (a16h) when a16, else as f32 (a), and the f16 W */
static void upload_a_w(drd_context *ctx, bool a16, const uint16_t *a16h, const float *a, size_t na,
                       const uint16_t *w16, size_t nw, drd_buffer *ba, drd_buffer *bw) {
  if (a16) {
    drd_test_check(drd_buffer_create(ctx, na * 2, ba), "buffer");
    drd_test_check(drd_buffer_upload(ctx, ba, 0, a16h, na * 2), "upload");
  } else {
    *ba = drd_test_buffer_f32(ctx, a, na);
  }
  drd_test_check(drd_buffer_create(ctx, nw * 2, bw), "buffer");
  drd_test_check(drd_buffer_upload(ctx, bw, 0, w16, nw * 2), "upload");
}

/* The operands of run_case_ex and run_case_rope: random A [M, K], W [N, K] rounded to f16
 * (a16h, w16: the halves uploaded; A used rounded too when a16, as the GPU reads it) and bias
 * [N]; want = A W^T (+ bias) and scale, the same product on absolute values: the per-element
 * error scale. */
typedef struct f16_operands {
  float *a, *w, *bias, *want, *scale;
  uint16_t *a16h, *w16;
} f16_operands;

static f16_operands make_f16_operands(drd_rng *rng, uint32_t M, uint32_t N, uint32_t K, bool a16, bool with_bias) {
  size_t na = (size_t)M * K, nw = (size_t)N * K, nc = (size_t)M * N;
  f16_operands o = {malloc(na * 4), malloc(nw * 4), malloc((size_t)N * 4), malloc(nc * 4), malloc(nc * 4),
                    malloc(na * 2), malloc(nw * 2)};
  float *abs_a = malloc(na * 4), *abs_w = malloc(nw * 4), *abs_b = malloc((size_t)N * 4);
  if (!o.a || !o.w || !o.bias || !o.want || !o.scale || !o.a16h || !o.w16 || !abs_a || !abs_w || !abs_b) {
    fprintf(stderr, "FAIL: out of host memory\n");
    exit(1);
  }
  drd_fill_uniform(rng, o.a, na, -1, 1);
  drd_fill_uniform(rng, o.w, nw, -1, 1);
  drd_fill_uniform(rng, o.bias, N, -4, 4);
  drd_f32_to_f16_row(o.w, o.w16, nw);
  drd_f16_to_f32_row(o.w16, o.w, nw);
  drd_f32_to_f16_row(o.a, o.a16h, na);
  if (a16) drd_f16_to_f32_row(o.a16h, o.a, na);
  drd_test_check(drd_ref_gemm(o.a, o.w, with_bias ? o.bias : NULL, o.want, M, N, K), "drd_ref_gemm");
  for (size_t i = 0; i < na; i++) abs_a[i] = fabsf(o.a[i]);
  for (size_t i = 0; i < nw; i++) abs_w[i] = fabsf(o.w[i]);
  for (size_t i = 0; i < N; i++) abs_b[i] = fabsf(o.bias[i]);
  drd_test_check(drd_ref_gemm(abs_a, abs_w, with_bias ? abs_b : NULL, o.scale, M, N, K), "drd_ref_gemm");
  free(abs_a), free(abs_w), free(abs_b);
  return o;
}

static void free_f16_operands(f16_operands *o) {
  free(o->a), free(o->w), free(o->bias), free(o->want), free(o->scale), free(o->a16h), free(o->w16);
}

/* drd_op_gemm_ex's two extras on the cooperative-matrix kernel: A already in f16 (then every
 * product is exact in f32 and only the f32 accumulation rounds: the f32 tolerance applies)
 * and accumulate (C += A W^T (+ bias) onto random C). */
static void run_case_ex(drd_context *ctx, drd_rng *rng, const drd_gemm_config *cfg, uint32_t M, uint32_t N,
                        uint32_t K, bool a16, bool accumulate, bool with_bias) {
  size_t na = (size_t)M * K, nw = (size_t)N * K, nc = (size_t)M * N;
  f16_operands o = make_f16_operands(rng, M, N, K, a16, with_bias);
  float *want = o.want, *scale = o.scale, *c0 = malloc(nc * 4), *got = malloc(nc * 4);
  if (!c0 || !got) {
    fprintf(stderr, "FAIL: out of host memory\n");
    exit(1);
  }
  drd_fill_uniform(rng, c0, nc, -8, 8);
  if (accumulate)
    for (size_t i = 0; i < nc; i++) want[i] += c0[i], scale[i] += fabsf(c0[i]);

  drd_buffer ba, bw, bb = drd_test_buffer_f32(ctx, o.bias, N), bc = drd_test_buffer_f32(ctx, accumulate ? c0 : NULL, nc);
  upload_a_w(ctx, a16, o.a16h, o.a, na, o.w16, nw, &ba, &bw);
  drd_gemm_args g = {.A = &ba, .atype = a16 ? DRD_DTYPE_F16 : DRD_DTYPE_F32, .W = &bw, .wtype = DRD_DTYPE_F16,
                     .bias = with_bias ? &bb : NULL, .C = &bc, .M = M, .N = N, .K = K, .accumulate = accumulate};
  run_gemm(ctx, cfg, &g);
  drd_test_download_f32(ctx, &bc, got, nc);
  size_t bad;
  double err = compare(got, want, scale, nc, &bad);
  double tol = 1.5e-6 + 1e-8 * sqrt((double)K) + (a16 ? 0.0 : ldexp(1.0, -11));
  if (err / tol > worst) worst = err / tol;
  cases++;
  if (bad || !(err <= tol)) {
    fprintf(stderr, "FAIL gemm_ex M=%u N=%u K=%u%s%s%s coopmat %ux%ux%u: rel err %.3g (tol %.3g), %zu non-finite\n",
            M, N, K, a16 ? " A f16" : "", accumulate ? " accumulate" : "", with_bias ? " bias" : "", cfg->bm, cfg->bn,
            cfg->bk, err, tol, bad);
    failures++;
  }
  /* f16 C: refused with accumulate (C's old values are f32), else exactly the f32 C rounded
   * (the cases without accumulate have K in one binding); scaled in the cases without bias */
  size_t c16_bad;
  drd_status st = check_c16(ctx, cfg, &g, got, nc, with_bias ? 0.0f : 0.3f, &c16_bad);
  if (st != (accumulate ? DRD_ERROR_UNSUPPORTED : DRD_OK) || c16_bad) {
    fprintf(stderr, "FAIL gemm_ex M=%u N=%u K=%u%s%s%s f16 C: status %d, %zu elements not the f32 C rounded\n", M, N,
            K, a16 ? " A f16" : "", accumulate ? " accumulate" : "", with_bias ? " bias" : "", (int)st, c16_bad);
    failures++;
  }
  drd_buffer *bufs[] = {&ba, &bw, &bb, &bc};
  for (int i = 0; i < 4; i++) drd_buffer_destroy(ctx, bufs[i]);
  free_f16_operands(&o);
  free(c0), free(got);
}

/* C = RoPE(A W^T + bias) (drd_gemm_args.rope) against drd_ref_gemm then drd_ref_rope_apply:
 * f16 A and weights where the configuration is a cooperative-matrix one (the engine's case),
 * else f32 A. A rotation mixes an element with its partner, so the error scale of both is the
 * sum of their product scales; the tolerance is run_case_ex's plus a few ulps of the rotation.
 * *fused: whether the epilogue did it (drd_gemm_rope_fuses). */
static void run_case_rope(drd_context *ctx, drd_rng *rng, const drd_gemm_config *cfg, uint32_t M, uint32_t N,
                          uint32_t K, uint32_t dh, bool with_bias, int *fused) {
  const float theta = 10000.0f;
  drd_gemm_config u = cfg ? *cfg : drd_gemm_pick_for(ctx, M, N, K, DRD_DTYPE_F16);
  const bool a16 = u.kind == DRD_GEMM_COOPMAT;
  size_t na = (size_t)M * K, nw = (size_t)N * K, nc = (size_t)M * N;
  f16_operands o = make_f16_operands(rng, M, N, K, a16, with_bias);
  float *want = o.want, *scale = o.scale, *got = malloc(nc * 4);
  double *cs = malloc((size_t)M * dh * sizeof(double)); /* [M, dh / 2, 2] */
  if (!got || !cs) {
    fprintf(stderr, "FAIL: out of host memory\n");
    exit(1);
  }
  drd_ref_rope_table(M, dh, theta, cs);
  drd_ref_rope_apply(want, M, N / dh, dh, cs);
  for (size_t m = 0; m < M; m++)
    for (size_t n = 0; n < N; n++)
      if (n % dh < dh / 2) {
        float sum = scale[m * N + n] + scale[m * N + n + dh / 2];
        scale[m * N + n] = scale[m * N + n + dh / 2] = sum;
      }

  drd_rope_table table;
  drd_test_check(drd_rope_table_create(ctx, dh, theta, M, &table), "rope table");
  drd_buffer ba, bw, bb = drd_test_buffer_f32(ctx, o.bias, N), bc = drd_test_buffer_f32(ctx, NULL, nc);
  upload_a_w(ctx, a16, o.a16h, o.a, na, o.w16, nw, &ba, &bw);
  drd_gemm_args g = {.A = &ba, .atype = a16 ? DRD_DTYPE_F16 : DRD_DTYPE_F32, .W = &bw, .wtype = DRD_DTYPE_F16,
                     .bias = with_bias ? &bb : NULL, .C = &bc, .M = M, .N = N, .K = K, .rope = &table};
  run_gemm(ctx, &u, &g);
  drd_test_download_f32(ctx, &bc, got, nc);
  size_t bad;
  double err = compare(got, want, scale, nc, &bad);
  double tol = 1.5e-6 + 1e-8 * sqrt((double)K) + (a16 ? 0.0 : ldexp(1.0, -11)) + 1e-6;
  if (err / tol > worst) worst = err / tol;
  cases++;
  bool f = drd_gemm_rope_fuses(ctx, &u, dh);
  *fused += f;
  /* f16 C: only where the epilogue rotates (no pass rotates f16), and then exactly the f32 C
   * rounded; without bias scaled as the attention's q is (the engine's q projection); K fits
   * one binding in every case here */
  size_t c16_bad;
  drd_status st = check_c16(ctx, &u, &g, got, nc, with_bias ? 0.0f : drd_attention_q_scale(dh), &c16_bad);
  if (st != (f ? DRD_OK : DRD_ERROR_UNSUPPORTED) || c16_bad) {
    fprintf(stderr, "FAIL gemm+rope M=%u N=%u K=%u dh=%u%s kernel %d (%s) f16 C: status %d, %zu elements not the f32 "
            "C rounded\n", M, N, K, dh, with_bias ? " bias" : "", (int)u.kind, f ? "in the epilogue" : "separate pass",
            (int)st, c16_bad);
    failures++;
  }
  /* whole tiles go out through the matrix-loaded cos / sin (cm_put4x2), the rest through the
   * scratch; K fits one binding in every case here */
  rope_direct += f && M >= u.bm && N >= u.bn;
  if (bad || !(err <= tol)) {
    fprintf(stderr, "FAIL gemm+rope M=%u N=%u K=%u dh=%u%s kernel %d %ux%ux%u/%ux%u (%s): rel err %.3g (tol %.3g), "
            "%zu non-finite\n", M, N, K, dh, with_bias ? " bias" : "", (int)u.kind, u.bm, u.bn, u.bk, u.tm, u.tn,
            f ? "in the epilogue" : "separate pass", err, tol, bad);
    failures++;
  }
  drd_buffer *bufs[] = {&ba, &bw, &bb, &bc};
  for (int i = 0; i < 4; i++) drd_buffer_destroy(ctx, bufs[i]);
  drd_rope_table_destroy(ctx, &table);
  free_f16_operands(&o);
  free(got), free(cs);
}

int main(void) {
  uint64_t seed = drd_test_seed();
  drd_rng rng = {seed};
  drd_context *ctx = drd_test_context();

  /* every corner of {1, odd}^3, then random odd shapes, with drd_op_gemm's choice */
  static const uint32_t odd[] = {3, 17, 33, 65, 127, 257, 1000};
  for (int c = 0; c < 8; c++) {
    uint32_t M = c & 1 ? 1 : 65, N = c & 2 ? 1 : 127, K = c & 4 ? 1 : 257;
    run_shape(ctx, &rng, NULL, M, N, K);
  }
  for (int i = 0; i < 16; i++) {
    uint32_t M = odd[drd_rng_range(&rng, 0, 6)], N = odd[drd_rng_range(&rng, 0, 6)];
    uint32_t K = odd[drd_rng_range(&rng, 0, 6)];
    if ((uint64_t)M * N * K > 20000000) K = 33; /* keep the test quick on CPU devices */
    run_case(ctx, &rng, NULL, M, N, K, i & 1 ? DRD_DTYPE_F16 : DRD_DTYPE_F32, i & 2);
  }
  /* several tiles in every dimension, at least one of them partial, with the large tiles */
  run_shape(ctx, &rng, NULL, 300, 290, 1100);
  run_shape(ctx, &rng, NULL, 33, 65, 256); /* K a multiple of 4: vector loads */
  static const drd_gemm_config big[] = {{DRD_GEMM_TILED, 128, 128, 32, 8, 8}, {DRD_GEMM_TILED, 128, 128, 8, 8, 8}};
  for (int i = 0; i < 2; i++)
    if (drd_gemm_config_ok(ctx, &big[i])) run_shape(ctx, &rng, &big[i], 300, 290, 1100);

  /* every configuration drd_gemm_pick may return on some device (those this one takes), plus a
   * second subgroup shape; both weight types, with and without bias, K odd and K a multiple of
   * 4 (the subgroup kernel's element-wise and vector loads), each variant on one shape to keep
   * the number of pipelines (compiled by lavapipe at ~1 s each) down */
  static const drd_gemm_config all[] = {
      {DRD_GEMM_TILED, 128, 128, 32, 8, 8},   {DRD_GEMM_TILED, 128, 128, 16, 8, 8},
      {DRD_GEMM_TILED, 128, 128, 8, 8, 8},    {DRD_GEMM_TILED, 64, 64, 16, 8, 8},
      {DRD_GEMM_TILED, 64, 64, 8, 8, 8},      {DRD_GEMM_TILED, 32, 32, 8, 4, 4},
      {DRD_GEMM_SUBGROUP, 0, 0, 0, 2, 8},     {DRD_GEMM_SUBGROUP, 0, 0, 0, 1, 4},
      {DRD_GEMM_COOPMAT, 128, 128, 32, 2, 4}, {DRD_GEMM_COOPMAT, 128, 128, 32, 2, 2},
      {DRD_GEMM_COOPMAT, 64, 64, 32, 2, 2},   {DRD_GEMM_COOPMAT, 32, 32, 16, 2, 2},
      {DRD_GEMM_COOPMAT, 64, 32, 16, 1, 2},   {DRD_GEMM_COOPMAT, 64, 64, 48, 2, 2},
      {DRD_GEMM_COOPMAT, 128, 256, 32, 2, 4}, {DRD_GEMM_COOPMAT, 128, 128, 64, 4, 2}};
  uint32_t sgs = drd_context_caps(ctx)->subgroup_size;
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
    const drd_gemm_config *c = &all[i];
    if (!drd_gemm_config_ok(ctx, c)) continue;
    bool sg = c->kind == DRD_GEMM_SUBGROUP;
    uint32_t bm = sg ? sgs * c->tm : c->bm, bn = sg ? sgs * c->tn : c->bn, bk = sg ? 4 : c->bk;
    /* the coopmat kernel takes f16 weights only */
    drd_dtype f32_or_f16 = c->kind == DRD_GEMM_COOPMAT ? DRD_DTYPE_F16 : DRD_DTYPE_F32;
    run_case(ctx, &rng, c, 1, 1, 1, DRD_DTYPE_F16, true);
    run_case(ctx, &rng, c, bm + 1, bn * 2 - 1, 3 * bk + 5, f32_or_f16, false);
    run_case(ctx, &rng, c, 2 * bm - 3, bn + 3, 8 * bk, f32_or_f16, true);
    run_case(ctx, &rng, c, bm - 1, 3 * bn + 1, 8 * bk + 4, DRD_DTYPE_F16, false);
  }
  /* f16 A and accumulate, on each cooperative-matrix tile this device takes; K odd (element
   * loads) and a multiple of 4 (vector loads); N odd (every matrix through the scratch) and N a
   * multiple of 4 (whole tiles stored from the scratch 4 columns at a time, gemm_cm.comp's
   * cm_put4, beside partial ones), each with and without bias (bias where exactly one of v's
   * bits 0 and 2 is set) */
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
    if (all[i].kind != DRD_GEMM_COOPMAT || !drd_gemm_config_ok(ctx, &all[i])) continue;
    for (int v = 0; v < 8; v++)
      run_case_ex(ctx, &rng, &all[i], v & 4 ? 2 * all[i].bm + 5 : all[i].bm + 3,
                  v & 4 ? 2 * all[i].bn + 4 : 2 * all[i].bn - 1, v & 1 ? 200 : 97, v & 1, v & 2,
                  ((v >> 2) ^ v) & 1);
  }
  /* RoPE on the product (the q and k projections): the automatic choice, every
   * cooperative-matrix tile above, head dims whose halves are whole matrices or not, partial
   * tiles and heads past N; where one of these tiles can fuse it (its subgroups span whole
   * heads: 64 x 64 / 2 x 2 with 8 x 8 matrices, 128 x 256 / 2 x 4 and 128 x 128 / 4 x 2 with
   * 16 x 16, and it fits the device's shared memory) some case must run in the epilogue */
  int rope_fused = 0, rope_cases = cases;
  bool can_fuse = false;
  static const uint32_t dhs[] = {16, 32, 64};
  for (int i = 0; i < 3; i++) {
    run_case_rope(ctx, &rng, NULL, 300, 5 * dhs[i], 97, dhs[i], true, &rope_fused);
    for (size_t t = 0; t < sizeof all / sizeof *all; t++)
      if (all[t].kind == DRD_GEMM_COOPMAT && drd_gemm_config_ok(ctx, &all[t])) {
        can_fuse = can_fuse || drd_gemm_rope_fuses(ctx, &all[t], dhs[i]);
        run_case_rope(ctx, &rng, &all[t], all[t].bm + 3, 3 * dhs[i], 64, dhs[i], i & 1, &rope_fused);
        /* whole tiles beside a partial row of tiles, with bias where the case above has none */
        uint32_t n = 2 * (all[t].bn > dhs[i] ? all[t].bn : dhs[i]);
        run_case_rope(ctx, &rng, &all[t], 2 * all[t].bm + 5, n, 40, dhs[i], !(i & 1), &rope_fused);
      }
  }
  fprintf(stderr, "test_kernel_gemm: RoPE in the epilogue in %d of %d cases, %d with whole tiles stored directly\n",
          rope_fused, cases - rope_cases, rope_direct);
  if (can_fuse && (!rope_fused || !rope_direct)) {
    fprintf(stderr, "FAIL: no RoPE case ran in the cooperative-matrix epilogue%s\n",
            rope_fused ? "'s direct store" : "");
    failures++;
  }
  /* a table shorter than the product's rows is refused, not read past */
  {
    drd_rope_table short_table;
    drd_test_check(drd_rope_table_create(ctx, 16, 10000.0f, 10, &short_table), "rope table");
    drd_buffer ba = drd_test_buffer_f32(ctx, NULL, 11 * 16), bw = drd_test_buffer_f32(ctx, NULL, 16 * 16);
    drd_buffer bc = drd_test_buffer_f32(ctx, NULL, 11 * 16);
    drd_gemm_args g = {.A = &ba, .atype = DRD_DTYPE_F32, .W = &bw, .wtype = DRD_DTYPE_F16, .C = &bc,
                       .M = 11, .N = 16, .K = 16, .rope = &short_table};
    drd_seq *s;
    drd_test_check(drd_seq_begin(ctx, &s), "seq_begin");
    if (drd_op_gemm_ex(s, NULL, &g) != DRD_ERROR_INVALID_ARGUMENT) {
      fprintf(stderr, "FAIL: RoPE GEMM over 11 rows accepted a table of 10 positions\n");
      failures++;
    }
    drd_seq_destroy(s);
    drd_buffer *bufs[] = {&ba, &bw, &bc};
    for (int i = 0; i < 3; i++) drd_buffer_destroy(ctx, bufs[i]);
    drd_rope_table_destroy(ctx, &short_table);
  }
  const drd_device_caps *caps = drd_context_caps(ctx);
  if (caps->coopmat_m && caps->storage_16bit && !c16_cases) {
    fprintf(stderr, "FAIL: the device has cooperative matrices but no case ran with f16 C\n");
    failures++;
  }
  int rc = drd_test_finish(ctx);

  /* 64 KiB bindings (16384 floats): A, W and C all exceed one binding and are split over M
   * and N; K = 20000 does not fit one binding even for a single row, so K is split too and
   * later K chunks accumulate into C; N = 20000 makes one row of C exceed a binding. */
  setenv("DRDIFF_MAX_BUFFER_RANGE", "65536", 1);
  ctx = drd_test_context();
  run_shape(ctx, &rng, NULL, 200, 150, 300);
  run_shape(ctx, &rng, NULL, 130, 140, 1001);
  run_shape(ctx, &rng, NULL, 3, 5, 20000);
  run_shape(ctx, &rng, NULL, 3, 20000, 7);
  /* the same chunking with the other kernel (the subgroup one is lavapipe's choice) */
  static const drd_gemm_config tiled = {DRD_GEMM_TILED, 64, 64, 16, 8, 8};
  if (drd_gemm_config_ok(ctx, &tiled)) {
    run_case(ctx, &rng, &tiled, 200, 150, 300, DRD_DTYPE_F16, true);
    run_case(ctx, &rng, &tiled, 3, 5, 20000, DRD_DTYPE_F32, true);
  }
  static const drd_gemm_config sgc = {DRD_GEMM_SUBGROUP, 0, 0, 0, 2, 8};
  if (drd_gemm_config_ok(ctx, &sgc) && drd_gemm_pick(ctx, 200, 150, 300).kind != DRD_GEMM_SUBGROUP)
    run_case(ctx, &rng, &sgc, 3, 5, 20000, DRD_DTYPE_F16, true);
  static const drd_gemm_config cmc = {DRD_GEMM_COOPMAT, 64, 64, 32, 2, 2};
  if (drd_gemm_config_ok(ctx, &cmc)) {
    run_case(ctx, &rng, &cmc, 37, 45, 20000, DRD_DTYPE_F16, true);
    run_case_ex(ctx, &rng, &cmc, 37, 45, 20000, true, true, true); /* f16 A split over K */
    run_case_ex(ctx, &rng, &cmc, 130, 140, 1001, true, false, true);
  }
  /* RoPE with row chunks (each binding its chunk's rows of the table: 256 rows of 64 f32
   * fill a binding) and past 2^16 positions, fused where the tile allows */
  int chunk_fused = 0;
  static const drd_gemm_config cm64 = {DRD_GEMM_COOPMAT, 64, 64, 32, 2, 2};
  const drd_gemm_config *rc_cfg = drd_gemm_config_ok(ctx, &cm64) ? &cm64 : NULL;
  run_case_rope(ctx, &rng, rc_cfg, 700, 64, 40, 16, true, &chunk_fused);
  run_case_rope(ctx, &rng, rc_cfg, 66000, 16, 8, 16, false, &chunk_fused);
  fprintf(stderr, "test_kernel_gemm: row-chunked RoPE in the epilogue in %d of 2 cases\n", chunk_fused);
  rc |= drd_test_finish(ctx);
  unsetenv("DRDIFF_MAX_BUFFER_RANGE");

  fprintf(stderr, "test_kernel_gemm: %d cases, worst error / tolerance %.3f, %d also with f16 C\n", cases, worst,
          c16_cases);
  if (failures || rc) fprintf(stderr, "test_kernel_gemm: %d failures (seed %llu)\n", failures, (unsigned long long)seed);
  else fprintf(stderr, "test_kernel_gemm: ok (seed %llu)\n", (unsigned long long)seed);
  return failures || rc ? 1 : 0;
}
