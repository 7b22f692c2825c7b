/* The element-wise sampler kernels against the host references:
 *   solver_update_f32  vs drd_solver_apply on real plans (orders 1-3, every step);
 *   prompt_clamp_f32   exact (f32 and f16 embeddings; rows past P and invalid ids untouched);
 *   philox_words_u32   bit-exact Philox words vs drd_philox4x32_10;
 *   philox_noise_f32   vs drd_philox_fill_normal (f64 Box-Muller) over millions of elements;
 *   time_features_f32  vs drd_cpu_time_features (f64) for t = u * 2000.
 * Tolerances (u = 2^-24):
 *   solver: |gpu - ref| <= (3 order + 3) u M, M = |cx x| + sum |cd_k D_k|: the worst case of
 *     order + 1 coefficient roundings (the GPU gets cx_f32, cd_f32), order + 1 products and
 *     order additions (fma() may be unfused), each off by at most u times a partial sum <= M
 *     (cancellation makes a bound relative to the result itself meaningless);
 *   noise: |gpu - ref| <= 1e-5 |ref| + 1e-15 R, R the pair's radius: the floor covers the f64
 *     reference's own angle error where cos / sin is 0 (u2 = 1/2: the GPU gives exactly 0, the
 *     host R sin(fl(pi)) ~ 1.2e-16 R);
 *   time features: |gpu - ref| <= 4e-7 absolute (the f64 value rounded to f32 is already
 *     6e-8 away; the kernel's double-float angle and polynomials add a couple of ulp). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "forward.h"
#include "ops_sampler.h"
#include "philox.h"
#include "solver.h"
#include "util_gpu.h"
#include "util_rand.h"

#define U32 (1.0 / 16777216.0)

static int failures;

/* ================================================================== solver update */
typedef struct solver_args {
  drd_buffer *x, *d[3];
  uint64_t n;
  const drd_solver_step *st;
} solver_args;

static drd_status rec_solver(drd_seq *s, void *a_) {
  solver_args *a = a_;
  const drd_solver_step *st = a->st;
  /* unused history is passed as NULL: the op must not need it */
  return drd_op_solver_update(s, a->x, a->d[0], st->order >= 2 ? a->d[1] : NULL, st->order >= 3 ? a->d[2] : NULL,
                              a->n, st->cx_f32, st->cd_f32[0], st->cd_f32[1], st->cd_f32[2], st->order);
}

static void solver_plan_case(drd_context *ctx, drd_rng *rng, drd_schedule sched, drd_grid grid, uint32_t steps,
                             uint32_t order, uint64_t n) {
  drd_solver_plan plan;
  drd_test_check(drd_solver_plan_make(sched, grid, steps, order, 0.5f, 0.5f, &plan), "solver plan");
  float *x = malloc(n * 4), *want = malloc(n * 4), *got = malloc(n * 4), *d[3];
  for (int k = 0; k < 3; k++) {
    d[k] = malloc(n * 4);
    drd_fill_uniform(rng, d[k], n, -2, 2);
  }
  /* history that looks like a solver's: successive estimates close to each other, so the
   * higher-order differences cancel as they do in a real run */
  for (uint64_t i = 0; i < n; i++) {
    d[1][i] = d[0][i] + drd_rng_uniform(rng, -0.1f, 0.1f);
    d[2][i] = d[1][i] + drd_rng_uniform(rng, -0.1f, 0.1f);
  }
  drd_fill_uniform(rng, x, n, -3, 3);
  drd_buffer bx = drd_test_buffer_f32(ctx, x, n), bd[3];
  for (int k = 0; k < 3; k++) bd[k] = drd_test_buffer_f32(ctx, d[k], n);
  uint32_t orders_seen = 0;
  double worst = 0;
  for (uint32_t i = 0; i < plan.steps; i++) {
    const drd_solver_step *st = &plan.step[i];
    orders_seen |= 1u << st->order;
    /* rotate the history by rebinding (as the engine does): step i reads d[(i + k) % 3] */
    drd_buffer *rot[3] = {&bd[i % 3], &bd[(i + 1) % 3], &bd[(i + 2) % 3]};
    const float *rh[3] = {d[i % 3], d[(i + 1) % 3], d[(i + 2) % 3]};
    drd_test_check(drd_buffer_upload(ctx, &bx, 0, x, n * 4), "upload x");
    solver_args a = {&bx, {rot[0], rot[1], rot[2]}, n, st};
    drd_test_run_seq(ctx, rec_solver, &a, "solver_update");
    drd_test_download_f32(ctx, &bx, got, n);
    memcpy(want, x, n * 4);
    drd_solver_apply(st, want, rh, n);
    size_t bad = 0;
    for (uint64_t e = 0; e < n; e++) {
      double mag = fabs(st->cx * x[e]);
      for (uint32_t k = 0; k < st->order; k++) mag += fabs(st->cd[k] * rh[k][e]);
      double tol = (3 * st->order + 3) * U32 * mag + 1e-37, diff = fabs((double)got[e] - want[e]);
      if (!(diff <= tol)) bad++;
      else worst = fmax(worst, diff / tol);
    }
    if (bad) {
      fprintf(stderr, "FAIL solver step %u order %u n=%llu: %zu elements over tolerance\n", i + 1, st->order,
              (unsigned long long)n, bad);
      failures++;
    }
  }
  if (getenv("DRDIFF_TEST_VERBOSE"))
    fprintf(stderr, "solver S=%u order %u n=%llu: orders seen 0x%x, worst err/tol %.3g\n", steps, order,
            (unsigned long long)n, orders_seen, worst);
  drd_buffer_destroy(ctx, &bx);
  for (int k = 0; k < 3; k++) drd_buffer_destroy(ctx, &bd[k]), free(d[k]);
  free(x), free(want), free(got);
  drd_solver_plan_free(&plan);
}

/* ================================================================== prompt clamp */
typedef struct clamp_args {
  drd_buffer *E, *ids, *x;
  drd_dtype et;
  uint32_t P, V, de;
} clamp_args;

static drd_status rec_clamp(drd_seq *s, void *a_) {
  clamp_args *a = a_;
  return drd_op_prompt_clamp(s, a->E, a->et, a->ids, a->x, a->P, a->V, a->de);
}

static void clamp_case(drd_context *ctx, drd_rng *rng, uint32_t V, uint32_t de, uint32_t P, drd_dtype et) {
  const uint32_t N = P + 5;
  size_t ne = (size_t)V * de, nx = (size_t)N * de;
  float *E = malloc(ne * 4), *x = malloc(nx * 4), *got = malloc(nx * 4);
  uint16_t *Eh = malloc(ne * 2);
  drd_fill_uniform(rng, E, ne, -1, 1);
  drd_f32_to_f16_row(E, Eh, ne);
  if (et == DRD_DTYPE_F16)
    for (size_t i = 0; i < ne; i++) E[i] = drd_f16_to_f32(Eh[i]);
  drd_fill_uniform(rng, x, nx, -5, 5);
  int32_t *ids = malloc((P ? P : 1) * 4);
  for (uint32_t r = 0; r < P; r++) ids[r] = (int32_t)drd_rng_range(rng, 0, V - 1);
  if (P > 2) ids[1] = V - 1, ids[2] = 0;
  if (P > 4) ids[3] = -1, ids[4] = (int32_t)V; /* invalid: rows stay as they are */
  drd_buffer bE;
  drd_test_check(drd_buffer_create(ctx, ne * (et == DRD_DTYPE_F16 ? 2 : 4), &bE), "E");
  drd_test_check(drd_buffer_upload(ctx, &bE, 0, et == DRD_DTYPE_F16 ? (const void *)Eh : (const void *)E,
                                   ne * (et == DRD_DTYPE_F16 ? 2 : 4)),
                 "upload E");
  drd_buffer bx = drd_test_buffer_f32(ctx, x, nx), bi;
  drd_test_check(drd_buffer_create(ctx, (P ? P : 1) * 4, &bi), "ids");
  drd_test_check(drd_buffer_upload(ctx, &bi, 0, ids, (P ? P : 1) * 4), "upload ids");
  clamp_args a = {&bE, &bi, &bx, et, P, V, de};
  drd_test_run_seq(ctx, rec_clamp, &a, "prompt_clamp");
  drd_test_download_f32(ctx, &bx, got, nx);
  size_t bad = 0;
  for (uint32_t r = 0; r < N; r++) {
    bool valid = r < P && ids[r] >= 0 && (uint32_t)ids[r] < V;
    const float *w = valid ? E + (size_t)ids[r] * de : x + (size_t)r * de;
    if (memcmp(got + (size_t)r * de, w, (size_t)de * 4)) bad++;
  }
  if (bad) {
    fprintf(stderr, "FAIL prompt_clamp V=%u de=%u P=%u %s: %zu rows wrong\n", V, de, P, et == DRD_DTYPE_F16 ? "f16" : "f32",
            bad);
    failures++;
  }
  drd_buffer_destroy(ctx, &bE);
  drd_buffer_destroy(ctx, &bx);
  drd_buffer_destroy(ctx, &bi);
  free(E), free(Eh), free(x), free(got), free(ids);
}

/* ================================================================== Philox */
typedef struct philox_args {
  drd_buffer *out;
  uint64_t first, n, seed;
  bool words;
  const drd_buffer *seed_buf; /* the noise's seed, written before each run */
} philox_args;

static drd_status rec_philox(drd_seq *s, void *a_) {
  philox_args *a = a_;
  if (a->words) return drd_op_philox_words(s, a->out, a->first, a->n, a->seed);
  if (a->first == 0) return drd_op_philox_noise(s, a->out, a->n, a->seed_buf);
  return drd_op_philox_noise_range(s, a->out, a->first, a->n, a->seed_buf);
}

/* the noise kernel's seed buffer: host-visible, as the engine's */
static drd_buffer seed_buffer(drd_context *ctx, uint64_t seed) {
  drd_buffer b;
  drd_test_check(drd_buffer_create_host(ctx, 8, &b), "seed buffer");
  const uint32_t w[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  drd_test_check(drd_buffer_upload(ctx, &b, 0, w, 8), "seed upload");
  return b;
}

static void philox_words_case(drd_context *ctx, uint64_t seed, uint64_t j0, uint64_t n) {
  drd_buffer b = drd_test_buffer_f32(ctx, NULL, n * 4);
  philox_args a = {&b, j0, n, seed, true, NULL};
  drd_test_run_seq(ctx, rec_philox, &a, "philox_words");
  uint32_t *got = malloc(n * 16);
  drd_test_check(drd_buffer_download(ctx, &b, 0, got, n * 16), "download words");
  size_t bad = 0;
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  for (uint64_t i = 0; i < n; i++) {
    uint64_t j = j0 + i;
    const uint32_t ctr[4] = {(uint32_t)j, (uint32_t)(j >> 32), 0, 0};
    uint32_t w[4];
    drd_philox4x32_10(ctr, key, w);
    if (memcmp(w, got + i * 4, 16)) bad++;
  }
  if (bad) {
    fprintf(stderr, "FAIL philox words seed %#llx j0 %#llx n %llu: %zu blocks differ\n", (unsigned long long)seed,
            (unsigned long long)j0, (unsigned long long)n, bad);
    failures++;
  }
  drd_buffer_destroy(ctx, &b);
  free(got);
}

static double noise_worst_rel, noise_worst_abs, noise_worst_rel_r, noise_tail_rel, noise_small_rel;
static uint64_t noise_checked;

/* Compares got (noise elements first .. first + n - 1 from the GPU) with the host's. */
static void check_noise(uint64_t seed, uint64_t first, uint64_t n, const float *got) {
  float *want = malloc(n * 4);
  drd_philox_fill_normal(seed, first, want, n);
  size_t bad = 0;
  for (uint64_t i = 0; i < n; i++) {
    double r = want[i], d = fabs((double)got[i] - r);
    /* the pair's radius: the value's scale even where cos / sin is near 0 */
    float z[2];
    drd_philox_normal_pair(seed, (first + i) >> 1, &z[0], &z[1]);
    double R = hypot(z[0], z[1]);
    if (!(d <= 1e-5 * fabs(r) + 1e-15 * R)) {
      if (getenv("DRDIFF_TEST_VERBOSE") && bad < 8) {
        const uint64_t j = (first + i) >> 1;
        const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)}, ctr[4] = {(uint32_t)j, (uint32_t)(j >> 32), 0, 0};
        uint32_t w[4];
        drd_philox4x32_10(ctr, key, w);
        fprintf(stderr, "  noise element %llu: gpu %.9g host %.9g (r0>>8 %u, r1>>8 %u, R %.6g)\n",
                (unsigned long long)(first + i), got[i], want[i], w[0] >> 8, w[1] >> 8, R);
      }
      bad++;
    }
    if (isfinite(d)) {
      noise_worst_abs = fmax(noise_worst_abs, d);
      if (fabs(r) > 1e-10 * R) noise_worst_rel = fmax(noise_worst_rel, d / fabs(r));
      if (R > 0) noise_worst_rel_r = fmax(noise_worst_rel_r, d / R);
      if (R > 5.0) noise_tail_rel = fmax(noise_tail_rel, d / R); /* u1 -> 0: R -> sqrt(2 ln 2^24) = 5.77 */
      if (R < 1e-2) noise_small_rel = fmax(noise_small_rel, d / R); /* u1 -> 1: R -> 3.5e-4 */
    }
  }
  noise_checked += n;
  if (bad) {
    fprintf(stderr, "FAIL philox noise seed %#llx first %llu n %llu: %zu elements over 1e-5 relative\n",
            (unsigned long long)seed, (unsigned long long)first, (unsigned long long)n, bad);
    failures++;
  }
  free(want);
}

static void philox_noise_case(drd_context *ctx, uint64_t seed, uint64_t first, uint64_t n) {
  float *got = malloc(n * 4);
  drd_buffer b = drd_test_buffer_f32(ctx, NULL, n), sb = seed_buffer(ctx, seed);
  philox_args a = {&b, first, n, seed, false, &sb};
  drd_test_run_seq(ctx, rec_philox, &a, "philox_noise");
  drd_test_download_f32(ctx, &b, got, n);
  check_noise(seed, first, n, got);
  drd_buffer_destroy(ctx, &b);
  drd_buffer_destroy(ctx, &sb);
  free(got);
}

/* One recording, run with one seed and then another written into its seed buffer (what a
 * session does between generations): each run must give its own seed's noise. */
static void philox_reseed_case(drd_context *ctx, const uint64_t seeds[2], uint64_t n) {
  float *got = malloc(n * 4);
  drd_buffer b = drd_test_buffer_f32(ctx, NULL, n), sb = seed_buffer(ctx, seeds[0]);
  drd_seq *q = NULL;
  drd_test_check(drd_seq_begin(ctx, &q), "reseed begin");
  drd_test_check(drd_op_philox_noise(q, &b, n, &sb), "reseed record");
  drd_test_check(drd_seq_end(q), "reseed end");
  for (int r = 0; r < 2; r++) {
    const uint32_t w[2] = {(uint32_t)seeds[r], (uint32_t)(seeds[r] >> 32)};
    drd_test_check(drd_buffer_upload(ctx, &sb, 0, w, 8), "reseed seed");
    drd_test_check(drd_seq_run(q), "reseed run");
    drd_test_download_f32(ctx, &b, got, n);
    check_noise(seeds[r], 0, n, got);
  }
  drd_seq_destroy(q);
  drd_buffer_destroy(ctx, &b);
  drd_buffer_destroy(ctx, &sb);
  free(got);
}

/* The Box-Muller tails, which random draws of a few million elements barely reach: scan
 * 2^23 Philox blocks on the host for u1 within 64 steps of 2^-24 (R -> 5.77) or of 1
 * (R -> 0) and evaluate exactly those pairs on the GPU. */
static void philox_tail_case(drd_context *ctx, uint64_t seed) {
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  uint64_t hits = 0;
  for (uint64_t j = 0; j < (1u << 23); j++) {
    const uint32_t ctr[4] = {(uint32_t)j, 0, 0, 0};
    uint32_t w[4];
    drd_philox4x32_10(ctr, key, w);
    uint32_t m = w[0] >> 8;
    if (m >= 64 && m < (1u << 24) - 64) continue;
    philox_noise_case(ctx, seed, 2 * j, 2);
    hits++;
  }
  if (hits < 16) {
    fprintf(stderr, "FAIL philox tails: only %llu tail pairs found\n", (unsigned long long)hits);
    failures++;
  }
}

/* ================================================================== time features */
typedef struct time_args {
  drd_buffer *out;
  uint32_t dt;
  double t;
  uint64_t first;
} time_args;

static drd_status rec_time(drd_seq *s, void *a_) {
  time_args *a = a_;
  if (a->first) return drd_op_time_features_at(s, a->out, a->first, a->dt, a->t);
  return drd_op_time_features(s, a->out, a->dt, a->t);
}

static double time_worst, naive_worst;

static void time_case(drd_context *ctx, uint32_t dt, double u, uint64_t first) {
  const float Ts = 2000.0f;
  float *want = malloc(dt * 4), *got = malloc((first + dt) * 4);
  drd_cpu_time_features(dt, u, Ts, want);
  drd_buffer b = drd_test_buffer_f32(ctx, NULL, first + dt);
  time_args a = {&b, dt, u * (double)Ts, first};
  drd_test_run_seq(ctx, rec_time, &a, "time_features");
  drd_test_download_f32(ctx, &b, got, first + dt);
  double worst = 0;
  size_t bad = 0;
  for (uint32_t i = 0; i < dt; i++) {
    double d = fabs((double)got[first + i] - want[i]);
    if (!(d <= 4e-7)) bad++;
    if (isfinite(d)) worst = fmax(worst, d);
  }
  for (uint64_t i = 0; i < first; i++)
    if (!isnan(got[i])) bad++; /* before the offset: still the poison */
  /* what plain f32 would give (angle t * phi_i with f32 t and phi_i, libm sinf/cosf): for
   * the record, not tested */
  const uint32_t half = dt / 2;
  for (uint32_t i = 0; i < half; i++) {
    float phi = expf(-logf(10000.0f) * (float)i / (float)half), ang = (float)(u * Ts) * phi;
    naive_worst = fmax(naive_worst, fabs((double)cosf(ang) - want[i]));
    naive_worst = fmax(naive_worst, fabs((double)sinf(ang) - want[half + i]));
  }
  time_worst = fmax(time_worst, worst);
  if (bad) {
    fprintf(stderr, "FAIL time features dt=%u u=%g: %zu elements off (worst %.3g)\n", dt, u, bad, worst);
    failures++;
  }
  drd_buffer_destroy(ctx, &b);
  free(want), free(got);
}

int main(void) {
  uint64_t seed = drd_test_seed();
  drd_rng rng = {seed};
  drd_context *ctx = drd_test_context();

  /* solver: every step of real plans; orders 1-3, both grids, a short plan (lower-order
   * final steps) and sizes that are odd, one over 1 MiB (chunked under the range switch) */
  solver_plan_case(ctx, &rng, DRD_SCHEDULE_SQRT, DRD_GRID_TIME_UNIFORM, 8, 1, 1001);
  solver_plan_case(ctx, &rng, DRD_SCHEDULE_SQRT, DRD_GRID_TIME_UNIFORM, 8, 2, 4099);
  solver_plan_case(ctx, &rng, DRD_SCHEDULE_COSINE, DRD_GRID_LOGSNR_UNIFORM, 12, 3, 1);
  solver_plan_case(ctx, &rng, DRD_SCHEDULE_LINEAR_LOGSNR, DRD_GRID_TIME_UNIFORM, 20, 3, 300001);

  /* prompt clamp */
  static const uint32_t Ps[] = {0, 1, 7, 300};
  for (int i = 0; i < 4; i++) {
    clamp_case(ctx, &rng, 1000, 17, Ps[i], DRD_DTYPE_F32);
    clamp_case(ctx, &rng, 1000, 128, Ps[i], DRD_DTYPE_F16);
  }
  clamp_case(ctx, &rng, 32768, 128, 64, DRD_DTYPE_F32); /* 16 MiB of embeddings: several ranges under the switch */

  /* Philox: seeds with both halves non-zero, block indices past 2^32 */
  const uint64_t seeds[] = {0x0123456789abcdefull, drd_rng_next(&rng) | 0x100000001ull, 42};
  philox_words_case(ctx, seeds[0], 0, 100003);
  philox_words_case(ctx, seeds[1], (1ull << 32) - 1000, 5000);
  philox_words_case(ctx, seeds[2], 0xfffffffffff0ull, 77);
  philox_noise_case(ctx, seeds[0], 0, 4u << 20);                  /* 4 Mi elements */
  philox_noise_case(ctx, seeds[1], 0, 1000001);                   /* odd n */
  philox_noise_case(ctx, seeds[1], (1ull << 33) + 12345, 100001); /* odd first, j >> 32 = 1 */
  philox_tail_case(ctx, seeds[0]);
  philox_reseed_case(ctx, seeds, 30001);

  /* time features */
  static const double us[] = {0, 1e-3, 0.5, 1};
  for (int i = 0; i < 4; i++) {
    time_case(ctx, 32, us[i], 0);
    time_case(ctx, 256, us[i], 0);
  }
  time_case(ctx, 2, 0.37, 0);
  time_case(ctx, 34, 0.999, 7); /* odd half, at an offset */

  int rc = drd_test_finish(ctx);
  fprintf(stderr,
          "philox noise over %llu elements: worst |gpu - f64| %.3g, worst relative %.3g (where |ref| > 1e-10 R; to the pair's radius %.3g; "
          "to R in the tails: R > 5 %.3g, R < 1e-2 %.3g)\n"
          "time features: worst |gpu - f64| %.3g (plain f32 angle + libm: %.3g)\n",
          (unsigned long long)noise_checked, noise_worst_abs, noise_worst_rel, noise_worst_rel_r, noise_tail_rel,
          noise_small_rel, time_worst, naive_worst);
  if (failures || rc)
    fprintf(stderr, "test_kernel_sampler: %d failures (seed %llu)\n", failures, (unsigned long long)seed);
  else
    fprintf(stderr, "test_kernel_sampler: ok (seed %llu)\n", (unsigned long long)seed);
  return failures || rc ? 1 : 0;
}
