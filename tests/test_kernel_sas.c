/* SAS soft absorption and rounding (shaders/sas_*.comp, round_*.comp) against host/sas.c
 * (f64 logits and softmax): odd vocabulary sizes and widths, f32 and f16 embeddings, prompt
 * rows that must stay untouched, forced vocabulary splits, every tile shape that fits, and
 * small binding ranges that cut E, the rows and the scratch into several bindings; both
 * kernel families: scalar f32 and, where the device has them, cooperative matrices (the
 * op's own choice for most cases, forced shapes besides; DRDIFF_DISABLE_COOPMAT=1 runs all
 * of it on the scalar kernels), and on CPU devices the subgroup absorption kernel (the op's
 * own choice there, forced shapes besides).
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
 * Measured errors stay below ~0.15 of it (the "worst" figure printed at the end), ~0.2 for
 * the subgroup kernel, whose running sums take every entry of a split in turn; a dropped
 * vocabulary tile or a wrong rescale breaks it by orders of magnitude.
 *
 * The cooperative-matrix kernel adds the f16 roundings (h = 2^-11; f16(x) is within
 * err16(x) = h |x| of x, or within |x| where |x| < 2^-14, f16's smallest normal, whatever the
 * device does with subnormals), bounded in the worst case and added to the tolerance above:
 *   logits: the kernel sums x~_k e~_k (x~ = f16(D_rk), e~ = f16(E_vk), or E_vk when E is f16)
 *     in f32, so |z~_v - z_v| <= eta_v = [sum_k (err16(x)|e| + |x| err16(e) + err16(x) err16(e))
 *     + 2 (de + 2) u sum_k |x~ e~|] / tau: 2 h A_v / tau when both are rounded, h A_v / tau
 *     when E is f16 (the 2 (de + 2) u term allows for a device accumulating with truncation);
 *   P: the kernel rounds P_v = exp(z~_v - m) <= e^8 to f16 (m a reference at most its row's
 *     maximum, raised when a logit passes it by more than 8) and sums the rounded values
 *     into l, so it uses the weights w_v = P'_v / sum P'. A normal P' is P (1 + d),
 *     |log(1 + d)| <= h (1 + h): the same as a logit error, so eta'_v = eta_v + h (1 + h).
 *     P is surely normal when exp(z_v - z_max - eta_v - max eta) >= 2^-14 (a reference below
 *     the maximum only makes P larger); other entries ("tiny") may be subnormal or flushed:
 *     0 <= P' <= 2 P;
 *   the weights: w_v / p_v = exp(eps'_v) / S' with |eps'_v| <= eta'_v and S' = sum_u p_u
 *     exp(eps'_u) in [exp(-zeta), exp(zeta)], zeta = max(log sum_u p_u exp(eta'_u) (tiny: 2 p_u
 *     exp(eta_u)), -log sum_{u not tiny} p_u exp(-eta'_u)); so |w_v - p_v| <= p_v (exp(eta'_v +
 *     zeta) - 1), tiny entries p_v (2 exp(eta_v + zeta) - 1), and since both weight sets sum
 *     to 1, sum_v w_v E_v - y = sum_v (w_v - p_v)(E_v - y) exactly;
 *   E in the weighted sum: sum_v w_v |e~_vc - E_vc| <= sum_v w_v,max err16(E_vc) (f32 E).
 *   tol_cm = tol + gamma [sum_v |w_v - p_v|max |E_vc - y_c| + sum_v w_v,max err16(E_vc)].
 * These terms are rigorous bounds (no K): typical errors are ~sqrt(de) times smaller, so the
 * printed error / tolerance of that kernel is small by design.
 *
 * Rounding: token ids must equal drd_sas_round's, except where the two candidates' f64
 * logits are within the kernel's worst-case logit error of each other (a near-tie: counted
 * apart and printed; one-ulp pairs are planted so that the path runs): (de + 1) u (A_w + A_g)
 * for the scalar kernel, tau eta_w + tau eta_g (as above) for the cooperative-matrix kernel.
 * Planted exact ties (duplicated embedding rows, across tiles, splits and within one
 * invocation) must give the lowest id on both: duplicated rows have identical f16 operands,
 * so their logits are bit-identical there too.
 * DRDIFF_TEST_VERBOSE=1 prints every case, DRDIFF_TEST_BENCH=1 times both ops with each kernel
 * at N = 1024 and 128, V = 32768, de = 128, for several vocabulary splits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dtype.h"
#include "ops_sampler.h"
#include "pc_sampler.h"
#include "sas.h"
#include "util_gpu.h"
#include "util_rand.h"

static int failures;
/* per kernel kind (scalar, coopmat): absorb cases and the max of error / tolerance over them,
 * round cases and their near-ties */
static double worst_ratio[3];
static uint64_t absorb_cases[3], round_cases[3], near_ties[3], planted_ties, near_rows;

#define U32 (1.0 / 16777216.0)
#define U16 (1.0 / 2048.0)
#define F16_MIN_NORMAL (1.0 / 16384.0)
#define K_TOL 4.0

static const char *kind_name(drd_sas_kind k) {
  return k == DRD_SAS_COOPMAT ? "coopmat" : k == DRD_SAS_SUBGROUP ? "subgroup" : "scalar";
}

/* The kernel the op runs for this call (cfg NULL: its own choice); rounding has no subgroup
 * kernel and runs the scalar one instead. */
static drd_sas_kind case_kind(drd_context *ctx, const drd_sas_config *cfg, uint32_t active, uint32_t de, bool absorb) {
  drd_sas_kind k = cfg ? cfg->kind : drd_sas_pick(ctx, active, de).kind;
  return !absorb && k == DRD_SAS_SUBGROUP ? DRD_SAS_SCALAR : k;
}

/* How far f16(x) may be from x (see the top of the file). */
static double err16(double x) {
  double a = fabs(x);
  return a < F16_MIN_NORMAL ? a : U16 * a;
}

/* The cooperative-matrix kernel's worst-case logit error for query row x and embedding row e
 * (e_f16: E is stored as f16, so it is not rounded again), unscaled by the temperature. */
static double cm_logit_err(const float *x, const float *e, uint32_t de, bool e_f16) {
  double h = 0, g = 0;
  for (uint32_t k = 0; k < de; k++) {
    double ax = fabs((double)x[k]), ae = fabs((double)e[k]), ex = err16(x[k]), ee = e_f16 ? 0 : err16(e[k]);
    h += ex * ae + ax * ee + ex * ee;
    g += (ax + ex) * (ae + ee);
  }
  return h + 2.0 * (de + 2) * U32 * g;
}

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
  const drd_sas_kind kind = case_kind(ctx, cfg, active, de, true);
  const bool cm = kind == DRD_SAS_COOPMAT, e16 = etype == DRD_DTYPE_F16;
  uint32_t split_len = V; /* the longest running sum (one split at most the whole vocabulary) */
  double worst = 0, num = 0, den = 1e-30;
  char worst_at[256] = "";
  size_t bad = 0;
  double *z = malloc(sizeof(double) * V), *eps = malloc(sizeof(double) * V), *y = malloc(sizeof(double) * de);
  double *spread = malloc(sizeof(double) * de), *mag = malloc(sizeof(double) * de);
  double *eta = malloc(sizeof(double) * V), *dw = malloc(sizeof(double) * V), *wmax = malloc(sizeof(double) * V);
  double *cm_tol = malloc(sizeof(double) * de);
  for (uint32_t r = row_first; r < rows; r++) {
    const float *d = D + (size_t)r * de;
    double zmax = -INFINITY, eta_max = 0;
    for (uint32_t v = 0; v < V; v++) {
      double t = 0, a = 0;
      for (uint32_t k = 0; k < de; k++) {
        t += (double)d[k] * p.E[(size_t)v * de + k];
        a += fabs((double)d[k] * p.E[(size_t)v * de + k]);
      }
      z[v] = t / tau;
      eps[v] = sqrt(de) * U32 * a / tau; /* the f32 logit's typical error */
      zmax = fmax(zmax, z[v]);
      if (cm) {
        eta[v] = cm_logit_err(d, p.E + (size_t)v * de, de, e16) / tau; /* the f16 logit's worst case */
        eta_max = fmax(eta_max, eta[v]);
      }
    }
    double l = 0;
    for (uint32_t v = 0; v < V; v++) {
      z[v] = exp(z[v] - zmax); /* unnormalised weight */
      l += z[v];
    }
    const double pmax = 1 / l; /* the largest weight (exp(0) / l) */
    for (uint32_t k = 0; k < de; k++) y[k] = spread[k] = mag[k] = cm_tol[k] = 0;
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
    if (cm) {
      /* the f16 terms: weights w_v of the rounded logits and probabilities (top of the file) */
      const double hp = U16 * (1 + U16);
      double smax = 0, smin = 0;
      for (uint32_t v = 0; v < V; v++) {
        double pv = z[v] / l;
        bool tiny = z[v] * exp(-eta[v] - eta_max) < F16_MIN_NORMAL;
        smax += tiny ? 2 * pv * exp(eta[v]) : pv * exp(eta[v] + hp);
        if (!tiny) smin += pv * exp(-eta[v] - hp);
        dw[v] = tiny ? -1.0 : 1.0; /* marks tiny entries until zeta is known */
      }
      double zeta = fmax(log(smax), smin > 0 ? -log(smin) : INFINITY);
      for (uint32_t v = 0; v < V; v++) {
        double pv = z[v] / l;
        if (dw[v] < 0) {
          wmax[v] = 2 * pv * exp(eta[v] + zeta);
          dw[v] = wmax[v] - pv;
        } else {
          wmax[v] = pv * exp(eta[v] + hp + zeta);
          dw[v] = wmax[v] - pv;
        }
      }
      for (uint32_t v = 0; v < V; v++) {
        if (dw[v] == 0 && wmax[v] == 0) continue;
        for (uint32_t k = 0; k < de; k++) {
          double e = p.E[(size_t)v * de + k];
          cm_tol[k] += dw[v] * fabs(e - y[k]) + (e16 ? 0 : wmax[v] * err16(e));
        }
      }
    }
    for (uint32_t k = 0; k < de; k++) {
      size_t i = (size_t)r * de + k;
      double tol = K_TOL * (gamma * (spread[k] + sqrt(split_len) * U32 * mag[k]) +
                            4 * U32 * ((1 - gamma) * fabs(d[k]) + gamma * fabs(y[k])));
      tol += gamma * cm_tol[k];
      double diff = fabs((double)got[i] - want[i]);
      if (!isfinite(got[i]) || !(diff <= tol)) {
        if (getenv("DRDIFF_TEST_VERBOSE") && bad < 4)
          fprintf(stderr, "  row %u col %u: got %.9g want %.9g tol %.3g\n", r, k, got[i], want[i], tol);
        bad++;
      }
      if (isfinite(diff)) {
        if (diff / tol > worst) {
          worst = diff / tol;
          snprintf(worst_at, sizeof worst_at,
                   "row %u col %u: got %.9g want %.9g, tol %.3g = f32 model %.3g + f16 weights %.3g (max weight %.3g); "
                   "weighted mean: f64 %.9g, the kernel's (got - (1 - gamma) D) / gamma %.9g",
                   r, k, got[i], want[i], tol, tol - gamma * cm_tol[k], gamma * cm_tol[k], pmax, y[k],
                   ((double)got[i] - (1 - (double)gamma) * d[k]) / gamma);
        }
        num = fmax(num, diff);
      }
      den = fmax(den, fabs(want[i]));
    }
  }
  free(z), free(eps), free(y), free(spread), free(mag), free(eta), free(dw), free(wmax), free(cm_tol);
  if (worst > worst_ratio[kind]) worst_ratio[kind] = worst;
  absorb_cases[kind]++;
  if (bad || changed) {
    fprintf(stderr,
            "FAIL absorb %s V=%u de=%u rows=%u first=%u %s gamma=%g tau=%g cfg=%s splits=%u: %zu bad elements, "
            "prompt rows %s, rel err %.3g, worst err/tol %.3g\n",
            kind_name(kind), V, de, rows, row_first, e16 ? "f16" : "f32", gamma, tau, cfg ? "forced" : "auto",
            cfg ? cfg->splits : 0, bad, changed ? "CHANGED" : "ok", num / den, worst);
    fprintf(stderr, "  worst: %s\n", worst_at);
    if (cfg)
      fprintf(stderr, "  config: ct %u, rg %u, tr %u, vt %u, splits %u\n", cfg->ct, cfg->rg, cfg->tr, cfg->vt,
              cfg->splits);
    failures++;
  } else if (getenv("DRDIFF_TEST_VERBOSE")) {
    fprintf(stderr, "ok absorb %s V=%u de=%u rows=%u %s gamma=%g tau=%g: rel err %.3g, err/tol %.3g\n",
            kind_name(kind), V, de, rows, e16 ? "f16" : "f32", gamma, tau, num / den, worst);
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

  const drd_sas_kind kind = case_kind(ctx, cfg, active, de, false);
  round_cases[kind]++;
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
    /* worst-case error of both logits: f32 de-term fma sums, or the f16 operands' (top of the file) */
    const bool e16 = etype == DRD_DTYPE_F16;
    double bound = kind == DRD_SAS_COOPMAT
                       ? cm_logit_err(xr, p.E + (size_t)want[r] * de, de, e16) + cm_logit_err(xr, p.E + (size_t)got[r] * de, de, e16)
                       : (de + 1) * U32 * (aw + ag);
    if (lw - lg <= bound && lw >= lg) near_ties[kind]++;
    else wrong++;
    if (getenv("DRDIFF_TEST_VERBOSE"))
      fprintf(stderr, "  round %s row %u: host %d gpu %d, f64 logits %.17g %.17g (gap %.3g, bound %.3g)\n",
              kind_name(kind), r, want[r], got[r], lw, lg, lw - lg, bound);
  }
  if (wrong || prompt_touched || ties_bad) {
    fprintf(stderr, "FAIL round %s V=%u de=%u rows=%u first=%u %s cfg=%s splits=%u: %zu wrong ids, %zu planted ties "
                    "not resolved to the lowest id, %zu prompt rows written\n",
            kind_name(kind), V, de, rows, row_first, etype == DRD_DTYPE_F16 ? "f16" : "f32", cfg ? "forced" : "auto",
            cfg ? cfg->splits : 0, wrong, ties_bad, prompt_touched);
    failures++;
  } else if (getenv("DRDIFF_TEST_VERBOSE")) {
    fprintf(stderr, "ok round %s V=%u de=%u rows=%u %s\n", kind_name(kind), V, de, rows,
            etype == DRD_DTYPE_F16 ? "f16" : "f32");
  }
  drd_buffer_destroy(ctx, &bE);
  drd_buffer_destroy(ctx, &bx);
  drd_buffer_destroy(ctx, &bt);
  if (sbytes) drd_buffer_destroy(ctx, &bS);
  free(x), free(want), free(got), free(expect_tie);
  free_problem(&p);
}

/* DRDIFF_TEST_BENCH=1: wall-clock time of both ops at the benchmark model's shape (base-220m:
 * V = 32768, de = 128, f16 embeddings) for N = 1024 and 128 rows (DRDIFF_SAS_BENCH_N: other
 * row counts, comma-separated), each kernel this device can run, and several vocabulary
 * splits (auto = the ops' own choice), no host reference. DRDIFF_SAS_BENCH_VT: the
 * cooperative-matrix tile's entries instead of the op's choice. */
static void bench(drd_context *ctx, drd_rng *rng) {
  const uint32_t V = 32768, de = 128;
  uint32_t Ns[8] = {1024, 128}, nn = 2;
  const char *ns_env = getenv("DRDIFF_SAS_BENCH_N"), *vt_env = getenv("DRDIFF_SAS_BENCH_VT");
  if (ns_env) {
    nn = 0;
    for (const char *q = ns_env; *q && nn < 8; q = strchr(q, ',') ? strchr(q, ',') + 1 : q + strlen(q)) {
      unsigned long v = strtoul(q, NULL, 10);
      if (v > 0 && v <= (1u << 20)) Ns[nn++] = (uint32_t)v;
    }
  }
  for (uint32_t in = 0; in < nn; in++) {
    const uint32_t rows = Ns[in];
    problem p = {.V = V, .de = de, .rows = rows, .row_first = 0, .etype = DRD_DTYPE_F16};
    make_embeddings(rng, &p);
    float *D = malloc((size_t)rows * de * 4);
    make_queries(rng, &p, D);
    drd_buffer bE = upload_e(ctx, &p), bD = drd_test_buffer_f32(ctx, D, (size_t)rows * de),
               bt = drd_test_buffer_f32(ctx, NULL, rows);
    for (int kind = DRD_SAS_SCALAR; kind <= DRD_SAS_SUBGROUP; kind++) {
      drd_sas_config c0;
      if (!drd_sas_pick_kind(ctx, (drd_sas_kind)kind, rows, de, &c0)) {
        fprintf(stderr, "bench N=%u: no %s kernel on this device\n", rows, kind_name((drd_sas_kind)kind));
        continue;
      }
      if (kind == DRD_SAS_COOPMAT && vt_env) {
        drd_sas_config cv = c0;
        cv.vt = (uint32_t)strtoul(vt_env, NULL, 10);
        if (drd_sas_config_ok(ctx, &cv, de)) c0 = cv;
        else fprintf(stderr, "bench: DRDIFF_SAS_BENCH_VT=%s does not fit, tile %u kept\n", vt_env, c0.vt);
      }
      static const uint32_t splits[] = {0, 2, 4, 8, 16, 64};
      for (int is = 0; is < 6; is++) {
        drd_sas_config c = c0;
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
          char tile[64];
          if (c.kind == DRD_SAS_COOPMAT)
            snprintf(tile, sizeof tile, "%u subgroups x %u rows / %u", c.rg, ctx->caps.coopmat_m, c.vt);
          else
            snprintf(tile, sizeof tile, "%u x %u x %u / %u", c.ct, c.rg, c.tr, c.vt);
          fprintf(stderr, "bench %s %s N=%u V=%u de=%u f16 (tile %s, splits %s%u, scratch %llu B): "
                          "%.3f ms per run (submit + wait), %.1f GFLOP/s\n",
                  op == 0 ? "sas_absorb" : "round", kind_name(c.kind), rows, V, de, tile, splits[is] ? "" : "auto ",
                  splits[is] ? splits[is] : (unsigned)(sb / ((uint64_t)rows * DRD_SAS_STATE_FLOATS(de) * 4)), (unsigned long long)sb,
                  ms, flop / ms * 1e-6);
          drd_seq_destroy(s);
        }
        if (sb) drd_buffer_destroy(ctx, &bS);
      }
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
  const bool cpu_device = drd_context_caps(ctx)->type == DRD_DEVICE_CPU;
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
  /* absorption over a vocabulary shorter than one logit block (16 on NVIDIA, 8 on lavapipe)
   * and over a few blocks ending in a partial one: unmasked, the padding entries' weights
   * would be a large share of l (round_case's planted pairs need V >= 300) */
  absorb_case(ctx, &rng, 13, 16, 37, 4, DRD_DTYPE_F32, 1.0f, 1.0f, NULL, 1);
  absorb_case(ctx, &rng, 45, 17, 37, 4, DRD_DTYPE_F16, 1.0f, 1.0f, NULL, 1);
  /* no scratch: one split (or the fewest the binding range forces, which needs a scratch) */
  absorb_case(ctx, &rng, 1000, 128, 3, 0, DRD_DTYPE_F32, 0.5f, 0.1f, NULL, 0);
  round_case(ctx, &rng, 1000, 128, 3, 0, DRD_DTYPE_F32, NULL, 0);
  /* every tile shape that fits, with forced splits (several per dispatch and a ragged last) */
  static const drd_sas_config shapes[] = {
      {32, 4, 4, 64, 0, DRD_SAS_SCALAR}, {32, 4, 2, 32, 3, DRD_SAS_SCALAR}, {32, 1, 1, 32, 7, DRD_SAS_SCALAR},
      {16, 4, 4, 32, 2, DRD_SAS_SCALAR}, {16, 2, 1, 16, 5, DRD_SAS_SCALAR}, {8, 4, 2, 16, 4, DRD_SAS_SCALAR},
      {8, 1, 1, 8, 1, DRD_SAS_SCALAR},   {4, 2, 1, 4, 3, DRD_SAS_SCALAR},   {4, 1, 1, 4, 0, DRD_SAS_SCALAR},
  };
  for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
    if (!drd_sas_config_ok(ctx, &shapes[i], 128)) continue;
    uint32_t de = i % 2 ? 17 : 128;
    if (!drd_sas_config_ok(ctx, &shapes[i], de)) continue;
    absorb_case(ctx, &rng, 1000, de, 37, 4, i % 3 ? DRD_DTYPE_F32 : DRD_DTYPE_F16, 0.5f, i % 2 ? 1.0f : 0.1f,
                &shapes[i], 2);
    round_case(ctx, &rng, 1000, de, 37, 4, i % 3 ? DRD_DTYPE_F16 : DRD_DTYPE_F32, &shapes[i], 2);
  }
  /* cooperative-matrix tiles, where the device has them: 1-4 subgroups, tiles of 8-64
   * entries, forced splits (several per dispatch, a ragged last), widths the matrix shape pads
   * (17, 40, 100), a row block taller than a tile (its queries staged in rounds), odd V; tiles
   * staged through registers and by the loop (sas_cm.glsl: at most 8 chunks per invocation,
   * e.g. the 8-entry tile of de = 128 on lavapipe's 4 x 8 invocations) */
  static const drd_sas_config cm_shapes[] = {
      {0, 4, 0, 64, 0, DRD_SAS_COOPMAT}, {0, 2, 0, 32, 3, DRD_SAS_COOPMAT}, {0, 1, 0, 16, 7, DRD_SAS_COOPMAT},
      {0, 3, 0, 32, 2, DRD_SAS_COOPMAT}, {0, 4, 0, 16, 5, DRD_SAS_COOPMAT}, {0, 2, 0, 64, 1, DRD_SAS_COOPMAT},
      {0, 4, 0, 8, 2, DRD_SAS_COOPMAT},
  };
  static const uint32_t cm_des[] = {128, 17, 40, 16, 100, 64, 128};
  for (size_t i = 0; i < sizeof cm_shapes / sizeof *cm_shapes; i++) {
    if (!drd_sas_config_ok(ctx, &cm_shapes[i], cm_des[i])) continue;
    uint32_t V = i % 2 ? 999 : 1000;
    absorb_case(ctx, &rng, V, cm_des[i], 37, 4, i % 3 ? DRD_DTYPE_F32 : DRD_DTYPE_F16, i % 2 ? 1.0f : 0.5f,
                i % 4 < 2 ? 0.1f : 1.0f, &cm_shapes[i], 2);
    round_case(ctx, &rng, V, cm_des[i], 37, 4, i % 3 ? DRD_DTYPE_F16 : DRD_DTYPE_F32, &cm_shapes[i], 2);
  }
  /* the subgroup kernel (CPU devices): 1 - 16 rows per invocation, 1 - 8 entries per step,
   * widths with a partial last vec4, forced splits (a ragged last), one split (blended in the
   * kernel), row blocks partly past the rows (37 - 4 active rows); its scalar loads and stores
   * (de % 4 != 0) and its vector ones, each with split states and with one split */
  static const drd_sas_config sg_shapes[] = {
      {0, 1, 1, 1, 3, DRD_SAS_SUBGROUP}, {0, 1, 3, 4, 2, DRD_SAS_SUBGROUP}, {0, 1, 8, 8, 7, DRD_SAS_SUBGROUP},
      {0, 1, 16, 3, 1, DRD_SAS_SUBGROUP}, {0, 1, 2, 4, 0, DRD_SAS_SUBGROUP}, {0, 1, 3, 4, 1, DRD_SAS_SUBGROUP},
  };
  static const uint32_t sg_des[] = {17, 128, 64, 16, 100, 19};
  /* a step hands one entry to each lane: shapes with more entries per step than the device's
   * subgroup (lavapipe: 8 lanes on x86's 256-bit vectors, 4 on 128-bit ones) are refused */
  const uint32_t sg = drd_context_caps(ctx)->subgroup_size;
  int n_sg = 0, sg_ran = 0;
  for (size_t i = 0; i < sizeof sg_shapes / sizeof *sg_shapes; i++) {
    n_sg += sg_shapes[i].vt <= sg;
    if (!drd_sas_config_ok(ctx, &sg_shapes[i], sg_des[i])) continue;
    sg_ran++;
    uint32_t V = i % 2 ? 999 : 1000;
    absorb_case(ctx, &rng, V, sg_des[i], 37, 4, i % 3 ? DRD_DTYPE_F32 : DRD_DTYPE_F16, i % 2 ? 1.0f : 0.5f,
                i % 4 < 2 ? 0.1f : 1.0f, &sg_shapes[i], 2);
    round_case(ctx, &rng, V, sg_des[i], 37, 4, i % 3 ? DRD_DTYPE_F16 : DRD_DTYPE_F32, &sg_shapes[i], 2);
  }
  if (cpu_device && sg_ran != n_sg) {
    fprintf(stderr, "FAIL: %d of %d subgroup shapes ran on a CPU device\n", sg_ran, n_sg);
    failures++;
  }
  /* the first shape's hard case (f16 E, de 128, tau 0.1) in one split: blended in the kernel,
   * no merge */
  static const drd_sas_config cm_direct = {0, 4, 0, 64, 1, DRD_SAS_COOPMAT};
  if (drd_sas_config_ok(ctx, &cm_direct, 128))
    absorb_case(ctx, &rng, 1000, 128, 37, 4, DRD_DTYPE_F16, 0.5f, 0.1f, &cm_direct, 2);
  /* the large vocabulary with f32 embeddings on the op's choice for de = 16 (coopmat where
   * available: its loop-limit split lengths on llvmpipe) */
  absorb_case(ctx, &rng, 32768, 16, 40, 0, DRD_DTYPE_F32, 1.0f, 0.1f, NULL, 1);

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
      absorb_case(ctx, &rng, 1000, 16, 300, 9, DRD_DTYPE_F32, 0.5f, 0.1f, NULL, 1); /* coopmat where available */
      round_case(ctx, &rng, 1000, 16, 300, 9, DRD_DTYPE_F16, NULL, 1);
    } else {
      absorb_case(ctx, &rng, 1000, 128, 50, 2, DRD_DTYPE_F16, 1.0f, 0.1f, NULL, 1);
      round_case(ctx, &rng, 1000, 128, 50, 2, DRD_DTYPE_F32, NULL, 1);
    }
    rc |= drd_test_finish(ctx);
  }
  if (prev) setenv("DRDIFF_MAX_BUFFER_RANGE", prev, 1);
  else unsetenv("DRDIFF_MAX_BUFFER_RANGE");

  for (int k = 0; k < 3; k++)
    fprintf(stderr, "%s kernels: absorb %llu cases, worst error / tolerance %.3g; round %llu cases, %llu rows with an "
                    "id other than the host's within the kernel's logit error (near-ties)\n",
            kind_name((drd_sas_kind)k), (unsigned long long)absorb_cases[k], worst_ratio[k],
            (unsigned long long)round_cases[k], (unsigned long long)near_ties[k]);
  /* a CPU device's own choice for absorption is the subgroup kernel: more cases than the forced ones */
  if (cpu_device && absorb_cases[DRD_SAS_SUBGROUP] <= (uint64_t)sg_ran) {
    fprintf(stderr, "FAIL: a CPU device absorbed with the subgroup kernel only where it was forced\n");
    failures++;
  }
  fprintf(stderr, "round: %llu rows planted on one-ulp pairs, %llu planted exact ties resolved\n",
          (unsigned long long)near_rows, (unsigned long long)planted_ties);
  if (failures || rc)
    fprintf(stderr, "test_kernel_sas: %d failures (seed %llu)\n", failures, (unsigned long long)seed);
  else
    fprintf(stderr, "test_kernel_sas: ok (seed %llu)\n", (unsigned long long)seed);
  return failures || rc ? 1 : 0;
}
