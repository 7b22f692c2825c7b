/* SAS soft absorption and rounding (shaders/sas_*.comp, round_*.comp) against host/sas.c
 * (f64 logits and softmax): odd vocabulary sizes and widths, f32 and f16 embeddings, prompt
 * rows that must stay untouched, forced vocabulary splits, every tile shape that fits, and
 * small binding ranges that cut E, the rows and the scratch into several bindings.
 *
 * Absorption tolerance, per output element (r, c), from the kernel's f32 error model
 * (u = 2^-24; p_v the f64 softmax weights, y = sum_v p_v E_v the f64 weighted mean):
 *   a logit carries a de-term fma sum, typical error eps_v = sqrt(de) u A_v / tau with
 *   A_v = sum_k |D_rk E_vk| (random-sign rounding; the worst case de u A_v is ~10x larger),
 *   plus exp()'s few-ulp error; a logit error moves the output by p_v eps_v |E_vc - y_c|
 *   (first order), so the softmax part is bounded by sum_v p_v eps_v |E_vc - y_c|;
 *   the running sums over a split of L <= V entries add ~ sqrt(L) u sum_v p_v |E_vc|;
 *   the final blend a few u of its operands.
 *   tol = K [gamma (sum_v p_v eps_v |E_vc - y_c| + sqrt(L) u sum_v p_v |E_vc|)
 *            + 4 u ((1 - gamma) |D_rc| + gamma |y_c|)],  K = 4.
 * Measured errors stay below ~0.15 of it (the "worst" figure printed at the end); a dropped
 * vocabulary tile or a wrong rescale breaks it by orders of magnitude.
 * Rounding: token ids must equal drd_sas_round's, except where the two candidates' f64
 * logits are within the worst-case f32 error of each other (a near-tie: counted apart and
 * printed; one-ulp pairs are planted so that the path runs); planted exact ties (duplicated
 * embedding rows, across tiles, splits and within one invocation) must give the lowest id.
 * DRDIFF_TEST_VERBOSE=1 prints every case, DRDIFF_TEST_BENCH=1 times both ops at N = 1024 and
 * 128, V = 32768, de = 128, for several vocabulary splits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dtype.h"
#include "ops_sampler.h"
#include "sas.h"
#include "util_gpu.h"
#include "util_rand.h"

static int failures;
static double worst_ratio; /* max over all absorb cases of error / tolerance */
static uint64_t near_ties, planted_ties, near_rows;

#define U32 (1.0 / 16777216.0)
#define K_TOL 4.0

typedef struct problem {
  uint32_t V, de, rows, row_first;
  drd_dtype etype;
  float *E;      /* [V, de] f32 (the f16 values when etype is f16) */
  uint16_t *Eh;  /* [V, de] f16 bits or NULL */
} problem;

static void make_embeddings(drd_rng *rng, problem *p) {
  size_t n = (size_t)p->V * p->de;
  p->E = malloc(n * 4);
  drd_fill_uniform(rng, p->E, n, -1, 1);
  p->Eh = NULL;
  if (p->etype == DRD_DTYPE_F16) {
    p->Eh = malloc(n * 2);
    drd_f32_to_f16_row(p->E, p->Eh, n);
    for (size_t i = 0; i < n; i++) p->E[i] = drd_f16_to_f32(p->Eh[i]);
  }
}

static drd_buffer upload_e(drd_context *ctx, const problem *p) {
  size_t n = (size_t)p->V * p->de;
  if (p->etype == DRD_DTYPE_F32) return drd_test_buffer_f32(ctx, p->E, n);
  drd_buffer b;
  drd_test_check(drd_buffer_create(ctx, n * 2, &b), "buffer_create E f16");
  drd_test_check(drd_buffer_upload(ctx, &b, 0, p->Eh, n * 2), "upload E f16");
  return b;
}

/* Query rows: half near an embedding row (what a denoiser's estimate looks like), half random. */
static void make_queries(drd_rng *rng, const problem *p, float *q) {
  for (uint32_t r = 0; r < p->rows; r++) {
    float *row = q + (size_t)r * p->de;
    if (r % 2) {
      drd_fill_uniform(rng, row, p->de, -1, 1);
    } else {
      const float *e = p->E + (size_t)drd_rng_range(rng, 0, p->V - 1) * p->de;
      for (uint32_t k = 0; k < p->de; k++) row[k] = e[k] + drd_rng_uniform(rng, -0.3f, 0.3f);
    }
  }
}

static void free_problem(problem *p) {
  free(p->E);
  free(p->Eh);
}

/* ------------------------------------------------------------------ absorption */
typedef struct absorb_args {
  const problem *p;
  const drd_sas_config *cfg;
  drd_buffer *E, *D, *scratch;
  float gamma, tau;
} absorb_args;

static drd_status rec_absorb(drd_seq *s, void *a_) {
  absorb_args *a = a_;
  const problem *p = a->p;
  return drd_op_sas_absorb_config(s, a->cfg, a->E, p->etype, a->D, a->scratch, p->row_first, p->rows, p->V, p->de,
                                  a->gamma, a->tau);
}

/* cfg NULL: the op's own choice. scratch_mode: 0 none, 1 as drd_sas_scratch_bytes says,
 * 2 as drd_sas_scratch_bytes_config says for cfg. */
static void absorb_case(drd_context *ctx, drd_rng *rng, uint32_t V, uint32_t de, uint32_t rows, uint32_t row_first,
                        drd_dtype etype, float gamma, float tau, const drd_sas_config *cfg, int scratch_mode) {
  problem p = {.V = V, .de = de, .rows = rows, .row_first = row_first, .etype = etype};
  make_embeddings(rng, &p);
  size_t nq = (size_t)rows * de;
  float *D = malloc(nq * 4), *want = malloc(nq * 4), *got = malloc(nq * 4);
  make_queries(rng, &p, D);
  memcpy(want, D, nq * 4);
  const uint32_t active = rows - row_first;
  drd_test_check(drd_sas_absorb(p.E, NULL, V, de, want + (size_t)row_first * de, active, gamma, tau, 2), "host absorb");

  drd_buffer bE = upload_e(ctx, &p), bD = drd_test_buffer_f32(ctx, D, nq), bS = {0};
  uint64_t sbytes = 0;
  if (scratch_mode == 1) sbytes = drd_sas_scratch_bytes(ctx, etype, row_first, rows, V, de);
  if (scratch_mode == 2) sbytes = drd_sas_scratch_bytes_config(ctx, cfg, etype, row_first, rows, V, de);
  if (sbytes) bS = drd_test_buffer_f32(ctx, NULL, sbytes / 4);
  absorb_args a = {&p, cfg, &bE, &bD, sbytes ? &bS : NULL, gamma, tau};
  drd_test_run_seq(ctx, rec_absorb, &a, "sas_absorb");
  drd_test_download_f32(ctx, &bD, got, nq);

  /* prompt rows: untouched, bit for bit */
  size_t changed = 0;
  if (memcmp(got, D, (size_t)row_first * de * 4)) changed++;
  /* active rows: against the tolerance model (see the top of the file) */
  uint32_t split_len = V; /* the longest running sum (one split at most the whole vocabulary) */
  double worst = 0, num = 0, den = 1e-30;
  size_t bad = 0;
  double *z = malloc(sizeof(double) * V), *eps = malloc(sizeof(double) * V), *y = malloc(sizeof(double) * de);
  double *spread = malloc(sizeof(double) * de), *mag = malloc(sizeof(double) * de);
  for (uint32_t r = row_first; r < rows; r++) {
    const float *d = D + (size_t)r * de;
    double zmax = -INFINITY;
    for (uint32_t v = 0; v < V; v++) {
      double t = 0, a = 0;
      for (uint32_t k = 0; k < de; k++) {
        t += (double)d[k] * p.E[(size_t)v * de + k];
        a += fabs((double)d[k] * p.E[(size_t)v * de + k]);
      }
      z[v] = t / tau;
      eps[v] = sqrt(de) * U32 * a / tau; /* the f32 logit's typical error */
      zmax = fmax(zmax, z[v]);
    }
    double l = 0;
    for (uint32_t v = 0; v < V; v++) {
      z[v] = exp(z[v] - zmax); /* unnormalised weight */
      l += z[v];
    }
    for (uint32_t k = 0; k < de; k++) y[k] = spread[k] = mag[k] = 0;
    for (uint32_t v = 0; v < V; v++)
      for (uint32_t k = 0; k < de; k++) y[k] += z[v] / l * p.E[(size_t)v * de + k];
    for (uint32_t v = 0; v < V; v++) {
      double pv = z[v] / l, ev = eps[v] + 4 * U32 * (1 + fabs(log(z[v] > 0 ? z[v] : 1e-300))); /* + exp's error */
      for (uint32_t k = 0; k < de; k++) {
        double e = p.E[(size_t)v * de + k];
        spread[k] += pv * ev * fabs(e - y[k]);
        mag[k] += pv * fabs(e);
      }
    }
    for (uint32_t k = 0; k < de; k++) {
      size_t i = (size_t)r * de + k;
      double tol = K_TOL * (gamma * (spread[k] + sqrt(split_len) * U32 * mag[k]) +
                            4 * U32 * ((1 - gamma) * fabs(d[k]) + gamma * fabs(y[k])));
      double diff = fabs((double)got[i] - want[i]);
      if (!isfinite(got[i]) || !(diff <= tol)) {
        if (getenv("DRDIFF_TEST_VERBOSE") && bad < 4)
          fprintf(stderr, "  row %u col %u: got %.9g want %.9g tol %.3g\n", r, k, got[i], want[i], tol);
        bad++;
      }
      if (isfinite(diff)) {
        worst = fmax(worst, diff / tol);
        num = fmax(num, diff);
      }
      den = fmax(den, fabs(want[i]));
    }
  }
  free(z), free(eps), free(y), free(spread), free(mag);
  if (worst > worst_ratio) worst_ratio = worst;
  if (bad || changed) {
    fprintf(stderr,
            "FAIL absorb V=%u de=%u rows=%u first=%u %s gamma=%g tau=%g cfg=%s splits=%u: %zu bad elements, "
            "prompt rows %s, rel err %.3g, worst err/tol %.3g\n",
            V, de, rows, row_first, etype == DRD_DTYPE_F16 ? "f16" : "f32", gamma, tau, cfg ? "forced" : "auto",
            cfg ? cfg->splits : 0, bad, changed ? "CHANGED" : "ok", num / den, worst);
    failures++;
  } else if (getenv("DRDIFF_TEST_VERBOSE")) {
    fprintf(stderr, "ok absorb V=%u de=%u rows=%u %s gamma=%g tau=%g: rel err %.3g, err/tol %.3g\n", V, de, rows,
            etype == DRD_DTYPE_F16 ? "f16" : "f32", gamma, tau, num / den, worst);
  }
  drd_buffer_destroy(ctx, &bE);
  drd_buffer_destroy(ctx, &bD);
  if (sbytes) drd_buffer_destroy(ctx, &bS);
  free(D), free(want), free(got);
  free_problem(&p);
}

/* ------------------------------------------------------------------ rounding */
typedef struct round_args {
  const problem *p;
  const drd_sas_config *cfg;
  drd_buffer *E, *x, *scratch, *tok;
} round_args;

static drd_status rec_round(drd_seq *s, void *a_) {
  round_args *a = a_;
  const problem *p = a->p;
  return drd_op_round_config(s, a->cfg, a->E, p->etype, a->x, a->scratch, p->row_first, p->rows, p->V, p->de, a->tok);
}

static double logit64(const float *x, const float *e, uint32_t de, double *abs_sum) {
  double t = 0, a = 0;
  for (uint32_t k = 0; k < de; k++) {
    t += (double)x[k] * e[k];
    a += fabs((double)x[k] * e[k]);
  }
  *abs_sum = a;
  return t;
}

static void round_case(drd_context *ctx, drd_rng *rng, uint32_t V, uint32_t de, uint32_t rows, uint32_t row_first,
                       drd_dtype etype, const drd_sas_config *cfg, int scratch_mode) {
  problem p = {.V = V, .de = de, .rows = rows, .row_first = row_first, .etype = etype};
  make_embeddings(rng, &p);
  /* Planted exact ties: embedding row hi duplicates row lo (lo < hi), scaled up so that it
   * wins for the rows built on it. Pairs straddle tile and split edges: (0, V-1), (63, 64),
   * (V/2 - 1, V/2); (7, 263) and (10, 42) fall to the same invocation (ids 256 and 32 apart:
   * multiples of every ct and vt) in different tiles and in one tile; and a random pair. */
  enum { NPAIRS = 6 };
  uint32_t pairs[NPAIRS][2] = {{0, V - 1}, {63, 64}, {V / 2 - 1, V / 2}, {7, 263}, {10, 42}, {0, 0}};
  pairs[5][0] = drd_rng_range(rng, V / 4 + 5, V / 2 - 2); /* disjoint from the others (and the near pair) */
  pairs[5][1] = drd_rng_range(rng, V / 2 + 1, V - 2);
  if (pairs[5][0] == 263) pairs[5][0]++;
  if (pairs[5][1] == 263) pairs[5][1]++;
  for (int t = 0; t < NPAIRS; t++) {
    uint32_t lo = pairs[t][0], hi = pairs[t][1];
    if (lo >= hi) continue;
    for (uint32_t k = 0; k < de; k++) {
      float v = 2.0f * p.E[(size_t)lo * de + k];
      if (etype == DRD_DTYPE_F16) {
        uint16_t h = drd_f32_to_f16(v);
        v = drd_f16_to_f32(h);
        p.Eh[(size_t)lo * de + k] = p.Eh[(size_t)hi * de + k] = h;
      }
      p.E[(size_t)lo * de + k] = p.E[(size_t)hi * de + k] = v;
    }
  }
  /* A planted near-tie: row nhi is row nlo with one component moved by one ulp (f32 only),
   * so the two logits differ by far less than f32 rounding and either id is acceptable. */
  uint32_t nlo = V / 4 + 1, nhi = V / 4 + 3;
  bool near = etype == DRD_DTYPE_F32 && V >= 300;
  if (near)
    for (uint32_t k = 0; k < de; k++) {
      float v = 2.0f * p.E[(size_t)nlo * de + k];
      p.E[(size_t)nlo * de + k] = v;
      p.E[(size_t)nhi * de + k] = k == 0 ? nextafterf(v, v > 0 ? INFINITY : -INFINITY) : v;
    }
  size_t nq = (size_t)rows * de;
  float *x = malloc(nq * 4);
  make_queries(rng, &p, x);
  if (near)
    for (uint32_t r = row_first; r < rows; r += 3)
      for (uint32_t k = 0; k < de; k++)
        x[(size_t)r * de + k] = p.E[(size_t)nlo * de + k] + drd_rng_uniform(rng, -0.05f, 0.05f);
  int32_t *expect_tie = malloc(rows * sizeof(int32_t));
  for (uint32_t r = 0; r < rows; r++) {
    expect_tie[r] = -1;
    if (r < row_first || r % 3 != 1) continue;
    int t = (int)(r / 3 % NPAIRS);
    uint32_t lo = pairs[t][0], hi = pairs[t][1];
    if (lo >= hi) continue;
    for (uint32_t k = 0; k < de; k++) x[(size_t)r * de + k] = p.E[(size_t)lo * de + k] + drd_rng_uniform(rng, -0.05f, 0.05f);
    expect_tie[r] = (int32_t)lo;
  }
  int32_t *want = malloc(rows * sizeof(int32_t)), *got = malloc(rows * sizeof(int32_t));
  const uint32_t active = rows - row_first;
  drd_test_check(drd_sas_round(p.E, NULL, V, de, x + (size_t)row_first * de, active, want + row_first, 2), "host round");

  drd_buffer bE = upload_e(ctx, &p), bx = drd_test_buffer_f32(ctx, x, nq), bt = drd_test_buffer_f32(ctx, NULL, rows), bS = {0};
  uint64_t sbytes = 0;
  if (scratch_mode == 1) sbytes = drd_sas_scratch_bytes(ctx, etype, row_first, rows, V, de);
  if (scratch_mode == 2) sbytes = drd_sas_scratch_bytes_config(ctx, cfg, etype, row_first, rows, V, de);
  if (sbytes) bS = drd_test_buffer_f32(ctx, NULL, sbytes / 4);
  round_args a = {&p, cfg, &bE, &bx, sbytes ? &bS : NULL, &bt};
  drd_test_run_seq(ctx, rec_round, &a, "round");
  drd_test_check(drd_buffer_download(ctx, &bt, 0, got, rows * 4), "download tokens");

  size_t wrong = 0, prompt_touched = 0, ties_bad = 0;
  for (uint32_t r = 0; r < rows; r++) {
    if (r < row_first) {
      if ((uint32_t)got[r] != 0x7fc00000u) prompt_touched++;
      continue;
    }
    if (expect_tie[r] >= 0) {
      /* the duplicate must win only if the planted pair is really the maximum (it is, by a
       * wide margin, unless the row happens to sit on another embedding: the host says) */
      if (want[r] == expect_tie[r]) {
        planted_ties++;
        if (got[r] != expect_tie[r]) ties_bad++;
      }
    }
    if (near && (want[r] == (int32_t)nlo || want[r] == (int32_t)nhi)) near_rows++;
    if (got[r] == want[r]) continue;
    if (got[r] < 0 || (uint32_t)got[r] >= V) {
      wrong++;
      continue;
    }
    const float *xr = x + (size_t)r * de;
    double aw, ag;
    double lw = logit64(xr, p.E + (size_t)want[r] * de, de, &aw);
    double lg = logit64(xr, p.E + (size_t)got[r] * de, de, &ag);
    /* worst-case f32 error of both logits (de-term fma sums) */
    if (lw - lg <= (de + 1) * U32 * (aw + ag) && lw >= lg) near_ties++;
    else wrong++;
    if (getenv("DRDIFF_TEST_VERBOSE"))
      fprintf(stderr, "  round row %u: host %d gpu %d, f64 logits %.17g %.17g (gap %.3g, f32 bound %.3g)\n", r, want[r],
              got[r], lw, lg, lw - lg, (de + 1) * U32 * (aw + ag));
  }
  if (wrong || prompt_touched || ties_bad) {
    fprintf(stderr, "FAIL round V=%u de=%u rows=%u first=%u %s cfg=%s splits=%u: %zu wrong ids, %zu planted ties "
                    "not resolved to the lowest id, %zu prompt rows written\n",
            V, de, rows, row_first, etype == DRD_DTYPE_F16 ? "f16" : "f32", cfg ? "forced" : "auto",
            cfg ? cfg->splits : 0, wrong, ties_bad, prompt_touched);
    failures++;
  }
  drd_buffer_destroy(ctx, &bE);
  drd_buffer_destroy(ctx, &bx);
  drd_buffer_destroy(ctx, &bt);
  if (sbytes) drd_buffer_destroy(ctx, &bS);
  free(x), free(want), free(got), free(expect_tie);
  free_problem(&p);
}

/* DRDIFF_TEST_BENCH=1: wall-clock time of both ops at the benchmark model's shape (base-220m:
 * V = 32768, de = 128, f16 embeddings) for N = 1024 and 128 rows and several vocabulary splits
 * (auto = the ops' own choice), no host reference. */
static void bench(drd_context *ctx, drd_rng *rng) {
  const uint32_t V = 32768, de = 128;
  static const uint32_t Ns[] = {1024, 128};
  for (int in = 0; in < 2; in++) {
    const uint32_t rows = Ns[in];
    problem p = {.V = V, .de = de, .rows = rows, .row_first = 0, .etype = DRD_DTYPE_F16};
    make_embeddings(rng, &p);
    float *D = malloc((size_t)rows * de * 4);
    make_queries(rng, &p, D);
    drd_buffer bE = upload_e(ctx, &p), bD = drd_test_buffer_f32(ctx, D, (size_t)rows * de),
               bt = drd_test_buffer_f32(ctx, NULL, rows);
    static const uint32_t splits[] = {0, 4, 16, 64};
    for (int is = 0; is < 4; is++) {
      drd_sas_config c = drd_sas_pick(ctx, rows, de);
      c.splits = splits[is];
      uint64_t sb = drd_sas_scratch_bytes_config(ctx, &c, p.etype, 0, rows, V, de);
      drd_buffer bS = {0};
      if (sb) bS = drd_test_buffer_f32(ctx, NULL, sb / 4);
      for (int op = 0; op < 2; op++) {
        drd_seq *s;
        drd_test_check(drd_seq_begin(ctx, &s), "seq_begin");
        if (op == 0)
          drd_test_check(drd_op_sas_absorb_config(s, &c, &bE, p.etype, &bD, sb ? &bS : NULL, 0, rows, V, de, 0.5f, 0.1f),
                         "absorb");
        else
          drd_test_check(drd_op_round_config(s, &c, &bE, p.etype, &bD, sb ? &bS : NULL, 0, rows, V, de, &bt), "round");
        drd_test_check(drd_seq_end(s), "seq_end");
        drd_test_check(drd_seq_run(s), "warm-up");
        struct timespec t0, t1;
        const int reps = 5;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < reps; i++) drd_test_check(drd_seq_run(s), "run");
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = ((t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) * 1e-6) / reps;
        double flop = (op == 0 ? 4.0 : 2.0) * rows * V * de;
        fprintf(stderr, "bench %s N=%u V=%u de=%u f16 (tile %u x %u x %u / %u, splits %s%u, scratch %llu B): %.3f ms "
                        "per run (submit + wait), %.1f GFLOP/s\n",
                op == 0 ? "sas_absorb" : "round", rows, V, de, c.ct, c.rg, c.tr, c.vt, splits[is] ? "" : "auto ",
                splits[is] ? splits[is] : (unsigned)(sb / ((uint64_t)rows * (de + 2) * 4)), (unsigned long long)sb,
                ms, flop / ms * 1e-6);
        drd_seq_destroy(s);
      }
      if (sb) drd_buffer_destroy(ctx, &bS);
    }
    drd_buffer_destroy(ctx, &bE);
    drd_buffer_destroy(ctx, &bD);
    drd_buffer_destroy(ctx, &bt);
    free(D);
    free_problem(&p);
  }
}

int main(void) {
  uint64_t seed = drd_test_seed();
  drd_rng rng = {seed};
  drd_context *ctx = drd_test_context();
  if (getenv("DRDIFF_TEST_BENCH")) bench(ctx, &rng);

  /* The matrix: V x de x rows, with (gamma, tau, E type) cycling through all 8 combinations. */
  static const uint32_t Vs[] = {300, 1000}, des[] = {16, 17, 128}, rowss[] = {1, 5, 300};
  static const float gammas[] = {0.5f, 1.0f}, taus[] = {0.1f, 1.0f};
  uint32_t combo = 0;
  for (size_t iv = 0; iv < 2; iv++)
    for (size_t id = 0; id < 3; id++)
      for (size_t ir = 0; ir < 3; ir++, combo++) {
        uint32_t rows = rowss[ir], first = rows > 5 ? 7 : rows > 1 ? 2 : 0;
        drd_dtype et = (combo >> 2) & 1 ? DRD_DTYPE_F16 : DRD_DTYPE_F32;
        absorb_case(ctx, &rng, Vs[iv], des[id], rows, first, et, gammas[combo & 1], taus[(combo >> 1) & 1], NULL, 1);
        round_case(ctx, &rng, Vs[iv], des[id], rows, first, et, NULL, 1);
      }
  /* the large vocabulary: one modest case each way (the op splits it for parallelism) */
  absorb_case(ctx, &rng, 32768, 128, 24, 3, DRD_DTYPE_F16, 0.5f, 0.1f, NULL, 1);
  absorb_case(ctx, &rng, 32768, 17, 40, 0, DRD_DTYPE_F32, 1.0f, 1.0f, NULL, 1);
  round_case(ctx, &rng, 32768, 128, 24, 3, DRD_DTYPE_F16, NULL, 1);
  round_case(ctx, &rng, 32768, 16, 64, 0, DRD_DTYPE_F32, NULL, 1);
  /* no scratch: one split (or the fewest the binding range forces, which needs a scratch) */
  absorb_case(ctx, &rng, 1000, 128, 3, 0, DRD_DTYPE_F32, 0.5f, 0.1f, NULL, 0);
  round_case(ctx, &rng, 1000, 128, 3, 0, DRD_DTYPE_F32, NULL, 0);
  /* every tile shape that fits, with forced splits (several per dispatch and a ragged last) */
  static const drd_sas_config shapes[] = {
      {32, 4, 4, 64, 0}, {32, 4, 2, 32, 3}, {32, 1, 1, 32, 7}, {16, 4, 4, 32, 2}, {16, 2, 1, 16, 5},
      {8, 4, 2, 16, 4},  {8, 1, 1, 8, 1},   {4, 2, 1, 4, 3},   {4, 1, 1, 4, 0},
  };
  for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
    if (!drd_sas_config_ok(ctx, &shapes[i], 128)) continue;
    uint32_t de = i % 2 ? 17 : 128;
    if (!drd_sas_config_ok(ctx, &shapes[i], de)) continue;
    absorb_case(ctx, &rng, 1000, de, 37, 4, i % 3 ? DRD_DTYPE_F32 : DRD_DTYPE_F16, 0.5f, i % 2 ? 1.0f : 0.1f,
                &shapes[i], 2);
    round_case(ctx, &rng, 1000, de, 37, 4, i % 3 ? DRD_DTYPE_F16 : DRD_DTYPE_F32, &shapes[i], 2);
  }

  int rc = drd_test_finish(ctx);

  /* small bindings (unless the run's switch is smaller still): the embeddings, the rows and
   * the scratch are all cut into several bindings */
  const char *prev = getenv("DRDIFF_MAX_BUFFER_RANGE");
  static const char *ranges[] = {"16384", "65536"};
  for (int i = 0; i < 2; i++) {
    if (prev && strtoull(prev, NULL, 0) <= strtoull(ranges[i], NULL, 0)) continue;
    setenv("DRDIFF_MAX_BUFFER_RANGE", ranges[i], 1);
    ctx = drd_test_context();
    if (i == 0) {
      absorb_case(ctx, &rng, 1000, 17, 300, 9, DRD_DTYPE_F32, 0.5f, 1.0f, NULL, 1);
      round_case(ctx, &rng, 1000, 17, 300, 9, DRD_DTYPE_F16, NULL, 1);
    } else {
      absorb_case(ctx, &rng, 1000, 128, 50, 2, DRD_DTYPE_F16, 1.0f, 0.1f, NULL, 1);
      round_case(ctx, &rng, 1000, 128, 50, 2, DRD_DTYPE_F32, NULL, 1);
    }
    rc |= drd_test_finish(ctx);
  }
  if (prev) setenv("DRDIFF_MAX_BUFFER_RANGE", prev, 1);
  else unsetenv("DRDIFF_MAX_BUFFER_RANGE");

  fprintf(stderr, "absorb: worst error / tolerance %.3g; round: %llu rows with an id other than the host's within "
                  "f32 error (near-ties; %llu rows planted on one-ulp pairs), %llu planted exact ties\n",
          worst_ratio, (unsigned long long)near_ties, (unsigned long long)near_rows, (unsigned long long)planted_ties);
  if (failures || rc)
    fprintf(stderr, "test_kernel_sas: %d failures (seed %llu)\n", failures, (unsigned long long)seed);
  else
    fprintf(stderr, "test_kernel_sas: ok (seed %llu)\n", (unsigned long long)seed);
  return failures || rc ? 1 : 0;
}
