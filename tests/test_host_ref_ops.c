/* The C reference kernels against naive loops: GEMM bit-exact against an f64 triple loop
 * for every SIMD path and thread count (odd shapes), element-wise ops, RMSNorm, softmax,
 * RoPE, and HSA attention against dense attention with SPEC 5's mask. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsa_plan.h"
#include "ref_ops.h"
#include "util_expect.h"
#include "util_hsa_oracle.h"
#include "util_rand.h"

static float *falloc(size_t n) {
  float *p = malloc(sizeof(float) * (n ? n : 1));
  if (!p) {
    printf("out of memory\n");
    exit(1);
  }
  return p;
}

/* ------------------------------------------------------------ parallel */
static atomic_uint hits[1000];
static void count_task(void *ctx, uint32_t t, uint32_t thread) {
  (void)ctx;
  (void)thread;
  atomic_fetch_add(&hits[t], 1u);
}

/* every task of a call exactly once, under reuse, nesting and concurrency */
typedef struct cnt_job {
  atomic_uint hits[64];
  uint32_t n;
  int nested;
} cnt_job;
static void cnt_task(void *ctx, uint32_t t, uint32_t thread) {
  cnt_job *j = ctx;
  (void)thread;
  atomic_fetch_add(&j->hits[t], 1u);
  if (j->nested && t == 0) { /* a region inside a task: the pool is busy, threads are spawned */
    cnt_job inner = {.n = 5};
    for (uint32_t i = 0; i < 5; i++) atomic_init(&inner.hits[i], 0u);
    drd_ref_parallel(3, 5, cnt_task, &inner);
    for (uint32_t i = 0; i < 5; i++)
      if (atomic_load(&inner.hits[i]) != 1) atomic_fetch_add(&j->hits[63], 100u);
  }
}
static int run_counted(uint32_t th, uint32_t n, int nested) {
  cnt_job j = {.n = n, .nested = nested};
  for (uint32_t i = 0; i < 64; i++) atomic_init(&j.hits[i], 0u);
  drd_ref_parallel(th, n, cnt_task, &j);
  for (uint32_t i = 0; i < 64; i++)
    if (atomic_load(&j.hits[i]) != (i < n ? 1u : 0u)) return 0;
  return 1;
}
typedef struct stress_arg {
  uint64_t seed;
  int ok;
} stress_arg;
static void *stress_thread(void *p) {
  stress_arg *a = p;
  drd_rng r = {a->seed};
  a->ok = 1;
  for (int i = 0; i < 300 && a->ok; i++)
    a->ok = run_counted(drd_rng_range(&r, 1, 9), drd_rng_range(&r, 1, 60), (int)(drd_rng_next(&r) % 8 == 0));
  return NULL;
}
static void test_pool(drd_rng *rng) {
  for (int i = 0; i < 2000; i++) {
    const uint32_t th = drd_rng_range(rng, 1, 12), n = drd_rng_range(rng, 1, 60);
    if (!run_counted(th, n, i % 50 == 0)) {
      FAIL("parallel: call %d (threads %u, tasks %u) ran a task twice or never", i, th, n);
      return;
    }
  }
  pthread_t t[3];
  stress_arg a[3];
  int started[3];
  for (int i = 0; i < 3; i++) {
    a[i].seed = drd_rng_next(rng);
    started[i] = pthread_create(&t[i], NULL, stress_thread, &a[i]) == 0;
  }
  for (int i = 0; i < 3; i++) {
    if (!started[i]) continue;
    pthread_join(t[i], NULL);
    if (!a[i].ok) FAIL("parallel: concurrent callers lost or repeated a task");
  }
}

/* ------------------------------------------------------------ GEMM */
static void gemm_naive(const float *A, const float *W, const float *bias, float *C, uint32_t M, uint32_t N, uint32_t K) {
  for (uint32_t i = 0; i < M; i++)
    for (uint32_t n = 0; n < N; n++) {
      double s = 0;
      for (uint32_t k = 0; k < K; k++) s += (double)A[(size_t)i * K + k] * (double)W[(size_t)n * K + k];
      if (bias) s += bias[n];
      C[(size_t)i * N + n] = (float)s;
    }
}

static void test_gemm(drd_rng *rng) {
  static const char *isas[] = {"generic", "avx2", "avx512"};
  const uint32_t shapes[][3] = {{1, 1, 1}, {1, 8, 3}, {3, 5, 7}, {4, 8, 16}, {7, 9, 33}, {8, 16, 64}, {9, 17, 65},
                                {64, 64, 64}, {65, 130, 31}, {130, 257, 100}, {200, 24, 300}, {1, 1024, 256}};
  const char *native = drd_ref_gemm_isa();
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    const uint32_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
    float *A = falloc((size_t)M * K), *W = falloc((size_t)N * K), *b = falloc(N);
    float *ref = falloc((size_t)M * N), *C = falloc((size_t)M * N);
    drd_fill_uniform(rng, A, (size_t)M * K, -1, 1);
    drd_fill_uniform(rng, W, (size_t)N * K, -1, 1);
    drd_fill_uniform(rng, b, N, -1, 1);
    for (int withb = 0; withb < 2; withb++) {
      gemm_naive(A, W, withb ? b : NULL, ref, M, N, K);
      for (int isa = 0; isa < 3; isa++) {
        drd_ref_gemm_force_isa(isas[isa]);
        for (uint32_t th = 1; th <= 3; th++) {
          drd_ref_set_threads(th);
          for (size_t i = 0; i < (size_t)M * N; i++) C[i] = NAN; /* poison */
          if (drd_ref_gemm(A, W, withb ? b : NULL, C, M, N, K) != DRD_OK) FAIL("gemm failed");
          if (memcmp(C, ref, sizeof(float) * M * N)) {
            FAIL("gemm M=%u N=%u K=%u bias=%d isa=%s threads=%u differs from the f64 loop (rel %.3g)", M, N, K, withb,
                 drd_ref_gemm_isa(), th, drd_rel_error(C, ref, (size_t)M * N));
            isa = 3;
            break;
          }
        }
      }
    }
    /* the tile form with f64 output and a column sub-range */
    drd_ref_gemm_force_isa(NULL);
    drd_ref_packed pw;
    if (drd_ref_pack(W, N, K, &pw) == DRD_OK && N > 8) {
      double *Cd = malloc(sizeof(double) * M * N), *ws = malloc(sizeof(double) * drd_ref_gemm_scratch(K));
      const uint32_t n0 = 8, n1 = N;
      drd_ref_gemm_tile(A, K, M, &pw, n0, n1, b, NULL, Cd, n1 - n0, ws);
      for (uint32_t i = 0; i < M; i++)
        for (uint32_t n = n0; n < n1; n++) {
          double sref = 0;
          for (uint32_t k = 0; k < K; k++) sref += (double)A[(size_t)i * K + k] * (double)W[(size_t)n * K + k];
          sref += b[n];
          if (Cd[(size_t)i * (n1 - n0) + n - n0] != sref) {
            FAIL("gemm tile f64 M=%u N=%u K=%u (%u, %u)", M, N, K, i, n);
            i = M;
            break;
          }
        }
      free(Cd);
      free(ws);
    }
    drd_ref_pack_free(&pw);
    free(A);
    free(W);
    free(b);
    free(ref);
    free(C);
  }
  drd_ref_gemm_force_isa(NULL);
  drd_ref_set_threads(0);
  printf("gemm: native path %s, bit-identical to the f64 loop on every path\n", native);
}

/* ------------------------------------------------------------ element-wise and rows */
static void test_eltwise(drd_rng *rng) {
  enum { n = 1001 };
  float a[n], b[n], o[n];
  drd_fill_uniform(rng, a, n, -8, 8);
  drd_fill_uniform(rng, b, n, -8, 8);
  drd_ref_add(a, b, o, n);
  for (int i = 0; i < n; i++)
    if (o[i] != a[i] + b[i]) FAIL("add");
  drd_ref_mul(a, b, o, n);
  for (int i = 0; i < n; i++)
    if (o[i] != a[i] * b[i]) FAIL("mul");
  drd_ref_scale(a, 0.25f, o, n);
  for (int i = 0; i < n; i++)
    if (o[i] != a[i] * 0.25f) FAIL("scale");
  drd_ref_silu(a, o, n);
  for (int i = 0; i < n; i++) {
    const double want = a[i] / (1 + exp(-(double)a[i]));
    if (fabs(o[i] - want) > 1e-7 * fabs(want) + 1e-30) FAIL("silu(%g) = %g, want %g", (double)a[i], (double)o[i], want);
  }
  const float k[3] = {0.0f, 1.0f, -1.0f};
  float ko[3];
  drd_ref_silu(k, ko, 3);
  if (ko[0] != 0.0f || fabsf(ko[1] - 0.7310586f) > 1e-7f || fabsf(ko[2] + 0.2689414f) > 1e-7f)
    FAIL("silu known values %g %g %g", (double)ko[0], (double)ko[1], (double)ko[2]);
  drd_ref_swiglu(a, b, o, n);
  for (int i = 0; i < n; i++) {
    const double want = a[i] / (1 + exp(-(double)a[i])) * b[i];
    if (fabs(o[i] - want) > 1e-7 * fabs(want) + 1e-30) FAIL("swiglu");
  }
  /* rmsnorm: naive, and a known row */
  const size_t rows = 7, cols = 129;
  float *x = falloc(rows * cols), *w = falloc(cols), *y = falloc(rows * cols);
  drd_fill_uniform(rng, x, rows * cols, -3, 3);
  drd_fill_uniform(rng, w, cols, 0.5f, 1.5f);
  drd_ref_rmsnorm(x, w, y, rows, cols, 1e-6f);
  for (size_t r = 0; r < rows; r++) {
    double ss = 0;
    for (size_t c = 0; c < cols; c++) ss += (double)x[r * cols + c] * x[r * cols + c];
    const double inv = 1 / sqrt(ss / cols + 1e-6);
    for (size_t c = 0; c < cols; c++) {
      const double want = x[r * cols + c] * inv * w[c];
      if (fabs(y[r * cols + c] - want) > 2e-7 * fabs(want) + 1e-30) FAIL("rmsnorm (%zu,%zu)", r, c);
    }
  }
  const float kx[4] = {1, 2, 3, 4}, kw[4] = {1, 1, 1, 2};
  float ky[4];
  drd_ref_rmsnorm(kx, kw, ky, 1, 4, 0.0f); /* rms = sqrt(7.5) */
  for (int c = 0; c < 4; c++)
    if (fabs(ky[c] - kx[c] * kw[c] / sqrt(7.5)) > 1e-7) FAIL("rmsnorm known row");
  /* softmax: naive, uniform row, big logits, in place */
  drd_ref_softmax_rows(x, y, rows, cols);
  for (size_t r = 0; r < rows; r++) {
    double mx = -INFINITY, s = 0, tot = 0;
    for (size_t c = 0; c < cols; c++) mx = fmax(mx, x[r * cols + c]);
    for (size_t c = 0; c < cols; c++) s += exp(x[r * cols + c] - mx);
    for (size_t c = 0; c < cols; c++) {
      const double want = exp(x[r * cols + c] - mx) / s;
      if (fabs(y[r * cols + c] - want) > 1e-7 * want) FAIL("softmax (%zu,%zu)", r, c);
      tot += y[r * cols + c];
    }
    if (fabs(tot - 1) > 1e-5) FAIL("softmax row sum %g", tot);
  }
  float big[3] = {1000.0f, 1000.0f, -1000.0f};
  drd_ref_softmax_rows(big, big, 1, 3);
  if (big[0] != 0.5f || big[1] != 0.5f || big[2] != 0.0f) FAIL("softmax big logits in place: %g %g %g", (double)big[0], (double)big[1], (double)big[2]);
  free(x);
  free(w);
  free(y);
}

/* ------------------------------------------------------------ RoPE */
static void test_rope(drd_rng *rng) {
  const uint32_t N = 37, H = 3, dh = 8, half = dh / 2;
  const float theta = 10000.0f;
  const size_t d = (size_t)H * dh;
  float *x = falloc(N * d), *y = falloc(N * d);
  double *cs = malloc(sizeof(double) * N * dh);
  drd_fill_uniform(rng, x, N * d, -2, 2);
  memcpy(y, x, sizeof(float) * N * d);
  drd_ref_rope_table(N, dh, theta, cs);
  drd_ref_rope_apply(y, N, H, dh, cs);
  for (uint32_t n = 0; n < N; n++)
    for (uint32_t h = 0; h < H; h++)
      for (uint32_t i = 0; i < half; i++) {
        const double ang = n * pow(theta, -2.0 * i / dh);
        const double a = x[n * d + h * dh + i], b = x[n * d + h * dh + i + half];
        const double wa = a * cos(ang) - b * sin(ang), wb = a * sin(ang) + b * cos(ang);
        if (fabs(y[n * d + h * dh + i] - wa) > 1e-6 || fabs(y[n * d + h * dh + i + half] - wb) > 1e-6)
          FAIL("rope n=%u h=%u i=%u", n, h, i);
        if (n == 0 && (y[h * dh + i] != x[h * dh + i] || y[h * dh + i + half] != x[h * dh + i + half]))
          FAIL("rope at position 0 is not the identity");
      }
  free(x);
  free(y);
  free(cs);
}

/* ------------------------------------------------------------ HSA attention */

static void test_attention(drd_rng *rng) {
  drd_hparams hp;
  memset(&hp, 0, sizeof hp);
  hp.B = 8;
  hp.N1 = 32;
  hp.N2 = 64;
  hp.N3 = 128;
  const uint32_t w[3] = {1, 1, 2}, dl[3] = {2, 3, 4}, n[3] = {1, 2, 2}, g[3] = {1, 2, 2};
  memcpy(hp.window, w, sizeof w);
  memcpy(hp.dilation, dl, sizeof dl);
  memcpy(hp.hops, n, sizeof n);
  memcpy(hp.global, g, sizeof g);
  const uint32_t Ns[] = {1, 5, 20, 32, 33, 50, 64, 100, 129, 200, 301};
  const uint32_t H = 3, dh = 10; /* dh not a multiple of 8: the padded value panels */
  const size_t d = (size_t)H * dh;
  for (size_t t = 0; t < sizeof Ns / sizeof Ns[0]; t++) {
    const uint32_t N = Ns[t];
    float *q = falloc(N * d), *k = falloc(N * d), *v = falloc(N * d), *o = falloc(N * d), *ref = falloc(N * d);
    drd_fill_uniform(rng, q, N * d, -2, 2);
    drd_fill_uniform(rng, k, N * d, -2, 2);
    drd_fill_uniform(rng, v, N * d, -1, 1);
    double *s = malloc(sizeof(double) * N);
    for (uint32_t h = 0; h < H; h++)
      for (uint32_t i = 0; i < N; i++) {
        double mx = -INFINITY, den = 0;
        for (uint32_t j = 0; j < N; j++) {
          s[j] = -INFINITY;
          if (!drd_test_hsa_sees(&hp, N, i, j)) continue;
          double dot = 0;
          for (uint32_t c = 0; c < dh; c++) dot += (double)q[i * d + h * dh + c] * k[j * d + h * dh + c];
          s[j] = dot / sqrt((double)dh);
          mx = fmax(mx, s[j]);
        }
        for (uint32_t j = 0; j < N; j++) den += s[j] == -INFINITY ? 0 : exp(s[j] - mx);
        for (uint32_t c = 0; c < dh; c++) {
          double acc = 0;
          for (uint32_t j = 0; j < N; j++)
            if (s[j] != -INFINITY) acc += exp(s[j] - mx) * v[j * d + h * dh + c];
          ref[i * d + h * dh + c] = (float)(acc / den);
        }
      }
    drd_hsa_plan plan;
    if (drd_hsa_plan_make(&hp, N, &plan) != DRD_OK) {
      FAIL("plan N=%u", N);
      continue;
    }
    /* every SIMD path and thread count: the same bits, close to the dense f64 reference */
    static const char *isas[] = {"avx512", "avx2", "generic"};
    float *first = falloc(N * d);
    for (int isa = 0; isa < 3; isa++) {
      drd_ref_gemm_force_isa(isas[isa]);
      for (uint32_t th = 1; th <= 3; th++) {
        for (size_t i = 0; i < N * d; i++) o[i] = NAN;
        if (drd_ref_attention_hsa(q, k, v, o, N, H, dh, &plan, th) != DRD_OK) FAIL("attention N=%u failed", N);
        const double rel = drd_rel_error(o, ref, N * d);
        if (!(rel < 1e-6)) FAIL("attention N=%u mode %u isa %s threads %u: rel error %.3g vs dense masked", N, plan.mode, drd_ref_gemm_isa(), th, rel);
        if (isa == 0 && th == 1) memcpy(first, o, sizeof(float) * N * d);
        else if (memcmp(first, o, sizeof(float) * N * d)) FAIL("attention N=%u: isa %s threads %u changes the bits", N, drd_ref_gemm_isa(), th);
      }
    }
    drd_ref_gemm_force_isa(NULL);
    free(first);
    drd_hsa_plan_free(&plan);
    free(q);
    free(k);
    free(v);
    free(o);
    free(ref);
    free(s);
  }
}

int main(void) {
  const uint64_t seed = drd_test_seed();
  drd_rng rng = {seed};
  for (uint32_t th = 1; th <= 8; th++) {
    for (int i = 0; i < 1000; i++) atomic_store(&hits[i], 0u);
    drd_ref_parallel(th, 1000, count_task, NULL);
    for (int i = 0; i < 1000; i++)
      if (atomic_load(&hits[i]) != 1) {
        FAIL("parallel: task %d ran %u times with %u threads", i, atomic_load(&hits[i]), th);
        break;
      }
  }
  test_pool(&rng);
  test_gemm(&rng);
  test_eltwise(&rng);
  test_rope(&rng);
  test_attention(&rng);
  if (drd_test_failures) {
    printf("test_host_ref_ops: %d failure(s), seed %llu\n", drd_test_failures, (unsigned long long)seed);
    return 1;
  }
  printf("test_host_ref_ops: ok\n");
  return 0;
}
