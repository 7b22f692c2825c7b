/* HSA attention on the GPU against the f64-accumulating CPU reference (host/ref_ops.c):
 * tiny-config parameters at N in every regime (dense, modes 1-3, partial last block, N = 1),
 * base-220m parameters at two larger N, blocks of 20 rows, odd head counts and dims (dh % 4 != 0 takes the
 * scalar-load path), split-K (global query blocks), a recorded sequence replayed with new
 * inputs, and the binding-window path forced by a tiny binding range (many key windows, rows
 * folded across rounds). Outputs are NaN-poisoned first, so an unwritten row fails.
 *
 * Every case runs the scalar kernel (f32 throughout, checked against ATTN_TOL), on a CPU device
 * the subgroup kernel as well (attn_hsa_sg.comp, the same check) and, where the
 * device has cooperative matrices and picks that kernel for the shape, the coopmat kernel too,
 * on the same inputs; its f16 roundings are checked per element against the bound of
 * cm_bound (plus the same f32 tolerance). Further cases force coopmat tiles the automatic
 * choice does not take on this device (several row tiles per subgroup, 16 to 128 keys per
 * tile, Q staged in several rounds, eager rescaling), and shapes of base-220m (dh 64, B 64) and of the
 * shipped small model (dh 64, B 16). Each line says which kernel ran. Where the coopmat kernel
 * may write f16 out (drd_attention_f16_out: one binding window), it runs that way too and
 * every f16 element must be the f32 run's element rounded to nearest even, bit for bit; and
 * once more with q, k and v given as f16 (the host's rounding of q times the kernel's scale, of
 * k and of v), which must give the same f16 out, bit for bit: the kernel scales f32 q and rounds
 * all three to nearest itself. (Inputs that would round into f16's subnormal range are set to
 * zero: Vulkan lets a device flush those when it rounds.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "dtype.h"
#include "ops_attention.h"
#include "ref_ops.h"
#include "util_gpu.h"
#include "util_rand.h"

static int failures;
static int coopmat_runs; /* cases the coopmat kernel ran */
static int convert_runs; /* ... with P in registers (attn_hsa_cm2.comp) */
static int f16_out_runs; /* coopmat cases also run with f16 out (drd_op_attention_hsa_f16) */
static int in16_runs;    /* ... and with f16 q (scaled), k and v as well */
static int subgroup_runs; /* cases the CPU-device kernel (attn_hsa_sg.comp) ran */

/* max|gpu - ref| / max|ref|: f32 dot products and online-softmax sums over up to a few
 * thousand keys stay near 1e-6; a wrong mask, block or merge is off by 1e-2 or more. */
#define ATTN_TOL 2e-5

static drd_hparams tiny_hp(void) { /* SPEC section 10, "tiny" */
  return (drd_hparams){.B = 8, .N1 = 32, .N2 = 64, .N3 = 128, .window = {1, 1, 2}, .dilation = {2, 3, 4},
                       .hops = {1, 2, 2}, .global = {1, 2, 2}};
}

static drd_hparams base_hp(void) { /* SPEC section 10, "base-220m" */
  return (drd_hparams){.B = 64, .N1 = 1024, .N2 = 4096, .N3 = 8192, .window = {4, 4, 4}, .dilation = {2, 4, 8},
                       .hops = {4, 4, 4}, .global = {2, 4, 8}};
}

static drd_hparams small_hp(void) { /* the shipped model (models/drdiff/configs.py SMALL): dh = 256 / 4 */
  return (drd_hparams){.B = 16, .N1 = 256, .N2 = 512, .N3 = 1024, .window = {3, 3, 3}, .dilation = {2, 4, 8},
                       .hops = {3, 3, 3}, .global = {1, 2, 4}};
}

/* Blocks of 20 rows: no subgroup size divides them, so the last row tile of every kernel,
 * the subgroup kernel's rows per invocation (3 of 8-wide subgroups) included, is partly past
 * the block. */
static drd_hparams odd_hp(void) {
  return (drd_hparams){.B = 20, .N1 = 80, .N2 = 160, .N3 = 320, .window = {1, 2, 2}, .dilation = {2, 3, 4},
                       .hops = {1, 2, 2}, .global = {1, 1, 2}};
}

/* ------------------------------------------------------------------ the coopmat error bound */

/* Bound on |coopmat - exact| for every output element, from the kernel's f16 roundings.
 * With u = 2^-11 (round to nearest f16), in the log2 domain (s = sigma q.k, sigma =
 * log2(e) / sqrt(dh), as the kernel scales q):
 *  - scores: q' = f16(f32(sigma q)), k' = f16(k), products exact in f32, summed in f32:
 *      |ds_j| <= (2u + (dh + 4) 2^-23) sum_c |sigma q_c k_c| + 2^-25 sum_c (|k_c| + |sigma q_c|)
 *                + dh 2^-50
 *    (2^-25: half the f16 subnormal spacing, its square 2^-50; (dh + 4) 2^-23: f32
 *    accumulation with twice the usual ulp for tensor cores, sigma's own rounding; all but the
 *    last term times 1.01 for the products of small terms);
 *  - weights: the kernel's unnormalised weight of key j is C exp2(s_j - M) (1 + rho_j) with
 *    one factor C for the whole row (the rescales and merges multiply o and l alike) and
 *      |rho_j| <= (1 + u)(1 + e_j) 2^(|ds_j| + 2^-24 x_j) - 1
 *    (p = exp2(s' - m) rounded to f16: u; exp2's 3 + 2|x| ulp: e_j = (3 + 2 x_j) 2^-23, where
 *    x_j = M - s_j + SLACK + 2 max ds bounds |s' - m|, m being at most SLACK below the row's
 *    running max; 2^-24 x_j: the f32 subtraction). A p below 2^-14 may be subnormal or, on a
 *    device that flushes f16 denormals, zero: a key whose p can be that small (s_j - M - ds_j
 *    - max ds < -14, m being at most the computed maximum) gets |rho_j| <= 1 as well;
 *  - the normalised output o' = sum_j pi_j (1 + rho_j) v'_j / sum_j pi_j (1 + rho_j), pi the
 *    exact softmax and o = sum pi_j v_j, so exactly (sum_j pi_j (v_j - o) = 0)
 *      o' - o = [sum_j pi_j rho_j (v'_j - o) + sum_j pi_j (v'_j - v_j)] / (1 + sum_j pi_j rho_j)
 *    and with |v'_jc - v_jc| <= u |v_jc| + 2^-25 (v rounded to f16):
 *      |o'_c - o_c| <= [sum_j pi_j |rho_j| |v_jc - o_c| + sum_j pi_j (1 + |rho_j|)(u |v_jc| + 2^-25)]
 *                      / (1 - sum_j pi_j |rho_j|).
 * What this leaves out is f32 arithmetic (the P.V sums, the rescales and merges, the final
 * division), which the scalar kernel shares and ATTN_TOL covers; the check adds it on top.
 * Vulkan leaves the f32 -> f16 rounding mode to the implementation: this assumes round to
 * nearest (lavapipe, NVIDIA); a device that truncates would need u = 2^-10. */
#define CM_SLACK 8.0 /* ATTN_CM_SLACK in runtime/ops_attention.c (0 with eager rescaling) */

static void cm_bound(const float *q, const float *k, const float *v, uint32_t N, uint32_t H, uint32_t dh,
                     const drd_hsa_plan *plan, double slack, double *bound) {
  const double u = ldexp(1.0, -11), sigma = 1.4426950408889634 / sqrt((double)dh);
  uint32_t *keys = malloc(sizeof(uint32_t) * N);
  double *s = malloc(sizeof(double) * N), *ds = malloc(sizeof(double) * N), *w = malloc(sizeof(double) * N);
  double *rho = malloc(sizeof(double) * N), *o = malloc(sizeof(double) * dh);
  if (!keys || !s || !ds || !w || !rho || !o) {
    fprintf(stderr, "FAIL: out of host memory\n");
    exit(1);
  }
  for (uint32_t a = 0; a < plan->nb; a++) {
    uint32_t nk = 0;
    for (uint32_t e = plan->row[a]; e < plan->row[a + 1]; e++)
      for (uint32_t key = plan->col[e] * plan->B; key < (plan->col[e] + 1) * plan->B && key < N; key++)
        keys[nk++] = key;
    for (uint32_t i = a * plan->B; i < (a + 1) * plan->B && i < N; i++)
      for (uint32_t h = 0; h < H; h++) {
        const float *qi = q + ((size_t)i * H + h) * dh;
        double M = -INFINITY, dsmax = 0.0;
        for (uint32_t j = 0; j < nk; j++) {
          const float *kj = k + ((size_t)keys[j] * H + h) * dh;
          double dot = 0.0, A = 0.0, sk = 0.0, sq = 0.0;
          for (uint32_t c = 0; c < dh; c++) {
            const double x = sigma * qi[c];
            dot += x * kj[c];
            A += fabs(x * kj[c]);
            sk += fabs((double)kj[c]);
            sq += fabs(x);
          }
          s[j] = dot;
          ds[j] = 1.01 * ((2 * u + (dh + 4) * ldexp(1.0, -23)) * A + ldexp(1.0, -25) * (sk + sq)) +
                  dh * ldexp(1.0, -50);
          if (dot > M) M = dot;
          if (ds[j] > dsmax) dsmax = ds[j];
        }
        double Z = 0.0, sum_rho = 0.0;
        for (uint32_t j = 0; j < nk; j++) Z += w[j] = exp2(s[j] - M);
        for (uint32_t j = 0; j < nk; j++) {
          w[j] /= Z;
          const double x = M - s[j] + slack + 2 * dsmax;
          rho[j] = (1 + u) * (1 + (3 + 2 * x) * ldexp(1.0, -23)) * exp2(ds[j] + ldexp(1.0, -24) * x) - 1;
          if (s[j] - M - ds[j] - dsmax < -14.0 && rho[j] < 1.0) rho[j] = 1.0;
          sum_rho += w[j] * rho[j];
        }
        memset(o, 0, sizeof(double) * dh);
        for (uint32_t j = 0; j < nk; j++) {
          const float *vj = v + ((size_t)keys[j] * H + h) * dh;
          for (uint32_t c = 0; c < dh; c++) o[c] += w[j] * vj[c];
        }
        double *b = bound + ((size_t)i * H + h) * dh;
        memset(b, 0, sizeof(double) * dh);
        for (uint32_t j = 0; j < nk; j++) {
          const float *vj = v + ((size_t)keys[j] * H + h) * dh;
          for (uint32_t c = 0; c < dh; c++)
            b[c] += w[j] * (rho[j] * fabs(vj[c] - o[c]) + (1 + rho[j]) * (u * fabs((double)vj[c]) + ldexp(1.0, -25)));
        }
        for (uint32_t c = 0; c < dh; c++) b[c] = sum_rho < 1.0 ? b[c] / (1.0 - sum_rho) : INFINITY;
      }
  }
  free(keys), free(s), free(ds), free(w), free(rho), free(o);
}

/* ------------------------------------------------------------------ cases */

static void describe(const drd_context *ctx, const drd_attn_kernel *k, char *buf, size_t n) {
  if (k->kind == DRD_ATTN_COOPMAT) {
    const drd_device_caps *c = drd_context_caps(ctx);
    snprintf(buf, n, "coopmat %ux%ux%u: %u rows = %u sg x %u x %u, bc %u, dhp %u%s%s", c->coopmat_m, c->coopmat_n,
             c->coopmat_k, k->br, k->ns, k->tms, c->coopmat_m, k->bc, k->dhp, k->eager ? ", eager" : "",
             k->convert == DRD_ATTN_CONVERT_ON ? ", P in registers" : "");
  } else if (k->kind == DRD_ATTN_SUBGROUP) {
    snprintf(buf, n, "subgroup: %u rows, %u keys a step", k->br, k->bc);
  } else {
    snprintf(buf, n, "scalar%s: %u rows, bc %u, tc %u", k->shuffle ? "" : " (no shuffle)", k->br, k->bc, k->tc);
  }
}

typedef struct run {
  drd_attn_kernel request, k;
  drd_seq *s;
  drd_seq *s16;              /* coopmat: the same into an f16 out, where the plan allows it */
  drd_seq *s16in;            /* ... and from f16 q (scaled), k and v */
  size_t f16_bad;            /* f16 outputs that are not the f32 output rounded to nearest even */
  size_t in16_bad;           /* f16 outputs from f16 q, k and v that are not the same either */
  double worst;              /* scalar: relative error; coopmat: max |err| / (bound + tol) */
  double err_at, bound_at;   /* coopmat: the error and the bound where the ratio is worst */
} run;

/* One configuration; `rounds` > 1 replays the same recorded sequences with fresh inputs.
 * scalar: run the scalar kernel, and the subgroup kernel where the device runs it; cm: the
 * coopmat kernel to request (NULL: the automatic choice, run only where it is the coopmat
 * kernel). */
/* q_amp: q and k uniform in [-q_amp, q_amp], so that scores q.k/sqrt(dh) have a standard deviation
 * near q_amp^2 / 3 */
static void check_kernels(drd_context *ctx, drd_rng *rng, const char *cfg, const drd_hparams *hp, uint32_t N,
                          uint32_t H, uint32_t dh, int rounds, bool scalar, const drd_attn_kernel *cm, float q_amp) {
  double t0 = drd_now_s();
  const size_t n = (size_t)N * H * dh;
  float *q = malloc(n * 4), *k = malloc(n * 4), *v = malloc(n * 4), *ref = malloc(n * 4), *got = malloc(n * 4);
  double *bound = malloc(n * sizeof(double));
  if (!q || !k || !v || !ref || !got || !bound) {
    fprintf(stderr, "FAIL: out of host memory\n");
    exit(1);
  }
  drd_hsa_plan plan;
  drd_test_check(drd_hsa_plan_make(hp, N, &plan), "hsa plan");
  drd_attention_plan dp;
  drd_test_check(drd_attention_plan_upload(ctx, &plan, H, dh, &dp), "attention plan upload");
  drd_buffer bq = drd_test_buffer_f32(ctx, NULL, n), bk = drd_test_buffer_f32(ctx, NULL, n);
  drd_buffer bv = drd_test_buffer_f32(ctx, NULL, n), bo = drd_test_buffer_f32(ctx, NULL, n);
  drd_buffer bo16, bq16, bk16, bv16;
  drd_test_check(drd_buffer_create(ctx, n * 2 + 4, &bo16), "buffer_create f16 out");
  drd_test_check(drd_buffer_create(ctx, n * 2 + 4, &bq16), "buffer_create f16 q");
  drd_test_check(drd_buffer_create(ctx, n * 2 + 4, &bk16), "buffer_create f16 k");
  drd_test_check(drd_buffer_create(ctx, n * 2 + 4, &bv16), "buffer_create f16 v");
  uint16_t *got16 = malloc(n * 2 + 4), *h16 = malloc(n * 2 + 4);
  if (!got16 || !h16) {
    fprintf(stderr, "FAIL: out of host memory\n");
    exit(1);
  }

  run runs[3];
  int nr = 0;
  if (scalar) runs[nr++] = (run){.request = {.kind = DRD_ATTN_SCALAR}};
  if (scalar && drd_attention_f32_kind(ctx, dh) == DRD_ATTN_SUBGROUP)
    runs[nr++] = (run){.request = {.kind = DRD_ATTN_SUBGROUP}};
  runs[nr] = (run){.request = cm ? *cm : (drd_attn_kernel){.kind = DRD_ATTN_AUTO}};
  dp.request = runs[nr].request;
  if (drd_attention_kernel(ctx, &dp, &runs[nr].k) == DRD_OK && runs[nr].k.kind == DRD_ATTN_COOPMAT) nr++;
  else if (cm) /* a forced tile this device cannot hold (e.g. under DRDIFF_MAX_SHARED_MEMORY) */
    fprintf(stderr, "  %-5s N=%-5u H=%-2u dh=%-3u skipped: %s\n", cfg, N, H, dh, drd_last_error());
  for (int r = 0; r < nr; r++) {
    dp.request = runs[r].request;
    drd_test_check(drd_attention_kernel(ctx, &dp, &runs[r].k), "attention kernel");
    drd_test_check(drd_seq_begin(ctx, &runs[r].s), "seq_begin");
    drd_test_check(drd_op_attention_hsa(runs[r].s, &dp, &bq, &bk, &bv, &bo), "attention");
    drd_test_check(drd_seq_end(runs[r].s), "seq_end");
    const bool f16_ok = drd_attention_f16_out(ctx, &dp);
    if (f16_ok != (runs[r].k.kind == DRD_ATTN_COOPMAT && dp.window_blocks >= dp.nb)) {
      fprintf(stderr, "FAIL %s N=%u: f16 out %s for kernel %d, %u of %u blocks per window\n", cfg, N,
              f16_ok ? "offered" : "refused", (int)runs[r].k.kind, dp.window_blocks, dp.nb);
      failures++;
    }
    if (f16_ok) {
      drd_test_check(drd_seq_begin(ctx, &runs[r].s16), "seq_begin");
      drd_test_check(drd_op_attention_hsa_f16(runs[r].s16, &dp, &bq, &bk, &bv, false, &bo16), "attention f16");
      drd_test_check(drd_seq_end(runs[r].s16), "seq_end");
      drd_test_check(drd_seq_begin(ctx, &runs[r].s16in), "seq_begin");
      drd_test_check(drd_op_attention_hsa_f16(runs[r].s16in, &dp, &bq16, &bk16, &bv16, true, &bo16), "attention in16");
      drd_test_check(drd_seq_end(runs[r].s16in), "seq_end");
    } else {
      drd_seq *sx;
      drd_test_check(drd_seq_begin(ctx, &sx), "seq_begin");
      if (drd_op_attention_hsa_f16(sx, &dp, &bq, &bk, &bv, false, &bo16) != DRD_ERROR_UNSUPPORTED ||
          drd_op_attention_hsa_f16(sx, &dp, &bq16, &bk16, &bv16, true, &bo16) != DRD_ERROR_UNSUPPORTED) {
        fprintf(stderr, "FAIL %s N=%u: f16 out recorded where drd_attention_f16_out refuses it\n", cfg, N);
        failures++;
      }
      drd_seq_destroy(sx);
    }
  }

  for (int round = 0; round < rounds && nr; round++) {
    drd_fill_uniform(rng, q, n, -q_amp, q_amp);
    drd_fill_uniform(rng, k, n, -q_amp, q_amp);
    drd_fill_uniform(rng, v, n, -1.0f, 1.0f);
    /* f16 q is q times the kernel's scale (that f32 product), then rounded */
    const float f16_normal = 6.103515625e-05f, qs = drd_attention_q_scale(dh); /* 2^-14 */
    for (size_t e = 0; e < n; e++) {
      if (fabsf(q[e] * qs) < f16_normal) q[e] = 0.0f;
      if (fabsf(k[e]) < f16_normal) k[e] = 0.0f;
      if (fabsf(v[e]) < f16_normal) v[e] = 0.0f;
      h16[e] = drd_f32_to_f16(q[e] * qs);
    }
    drd_test_check(drd_buffer_upload(ctx, &bq16, 0, h16, n * 2), "upload f16 q");
    drd_f32_to_f16_row(k, h16, n);
    drd_test_check(drd_buffer_upload(ctx, &bk16, 0, h16, n * 2), "upload f16 k");
    drd_f32_to_f16_row(v, h16, n);
    drd_test_check(drd_buffer_upload(ctx, &bv16, 0, h16, n * 2), "upload f16 v");
    drd_test_check(drd_buffer_upload(ctx, &bq, 0, q, n * 4), "upload q");
    drd_test_check(drd_buffer_upload(ctx, &bk, 0, k, n * 4), "upload k");
    drd_test_check(drd_buffer_upload(ctx, &bv, 0, v, n * 4), "upload v");
    /* one thread: the reference pool (host/ref_ops.c) once hung in a lost wake-up here */
    drd_test_check(drd_ref_attention_hsa(q, k, v, ref, N, H, dh, &plan, 1), "reference attention");
    double maxref = 0.0;
    for (size_t e = 0; e < n; e++) maxref = fmax(maxref, fabs((double)ref[e]));
    const double tol = ATTN_TOL * (maxref > 1e-30 ? maxref : 1e-30); /* drd_rel_error's floor */
    bool have_bound = false;
    for (int r = 0; r < nr; r++) {
      run *x = &runs[r];
      drd_test_check(drd_buffer_fill(ctx, &bo, 0x7fc00000u), "poison out");
      drd_test_check(drd_seq_run(x->s), "seq_run");
      drd_test_download_f32(ctx, &bo, got, n);
      if (x->s16) { /* the f16 out must be exactly this f32 out rounded to nearest even */
        drd_test_check(drd_buffer_fill(ctx, &bo16, 0x7e007e00u), "poison f16 out");
        drd_test_check(drd_seq_run(x->s16), "seq_run f16");
        drd_test_check(drd_buffer_download(ctx, &bo16, 0, got16, n * 2), "download f16 out");
        for (size_t e = 0; e < n; e++) x->f16_bad += got16[e] != drd_f32_to_f16(got[e]);
        drd_test_check(drd_buffer_fill(ctx, &bo16, 0x7e007e00u), "poison f16 out");
        drd_test_check(drd_seq_run(x->s16in), "seq_run in16");
        drd_test_check(drd_buffer_download(ctx, &bo16, 0, got16, n * 2), "download f16 out");
        for (size_t e = 0; e < n; e++) x->in16_bad += got16[e] != drd_f32_to_f16(got[e]);
      }
      if (x->k.kind != DRD_ATTN_COOPMAT) {
        double err = drd_rel_error(got, ref, n);
        if (!(err <= x->worst)) x->worst = err;
        continue;
      }
      if (!have_bound) cm_bound(q, k, v, N, H, dh, &plan, x->k.eager ? 0.0 : CM_SLACK, bound);
      have_bound = true;
      for (size_t e = 0; e < n; e++) {
        const double err = fabs((double)got[e] - ref[e]), ratio = err / (bound[e] + tol);
        if (!(ratio <= x->worst)) x->worst = ratio, x->err_at = err, x->bound_at = bound[e];
      }
    }
  }
  for (int r = 0; r < nr; r++) {
    const run *x = &runs[r];
    char what[160];
    describe(ctx, &x->k, what, sizeof what);
    const bool cmk = x->k.kind == DRD_ATTN_COOPMAT;
    coopmat_runs += cmk;
    subgroup_runs += x->k.kind == DRD_ATTN_SUBGROUP;
    convert_runs += cmk && x->k.convert == DRD_ATTN_CONVERT_ON;
    f16_out_runs += x->s16 != NULL;
    in16_runs += x->s16in != NULL;
    if (x->f16_bad || x->in16_bad) {
      fprintf(stderr, "FAIL %s N=%u H=%u dh=%u (%s): %zu f16 outputs (%zu from f16 q, k and v) differ from the f32 "
              "ones rounded\n", cfg, N, H, dh, what, x->f16_bad, x->in16_bad);
      failures++;
    }
    fprintf(stderr, "  %-5s N=%-5u H=%-2u dh=%-3u mode %u nb=%-3u windows of %u blocks, split %u, %u dispatches, ",
            cfg, N, H, dh, plan.mode, plan.nb, dp.window_blocks, dp.split, drd_attention_dispatch_count(&dp));
    if (cmk)
      fprintf(stderr, "%s: err/(bound+tol) %.3f (err %.2e, bound %.2e, tol %.1e)\n", what, x->worst, x->err_at,
              x->bound_at, ATTN_TOL);
    else
      fprintf(stderr, "%s: rel err %.2e\n", what, x->worst);
    if (!(x->worst <= (cmk ? 1.0 : ATTN_TOL))) {
      fprintf(stderr, "FAIL %s N=%u H=%u dh=%u (%s): %s %.3g > %g\n", cfg, N, H, dh, what,
              cmk ? "error / (bound + tol)" : "relative error", x->worst, cmk ? 1.0 : ATTN_TOL);
      failures++;
    }
    drd_seq_destroy(x->s);
    drd_seq_destroy(x->s16);
    drd_seq_destroy(x->s16in);
  }
  fprintf(stderr, "        (%.2f s)\n", drd_now_s() - t0);
  drd_buffer *bufs[] = {&bq, &bk, &bv, &bo};
  for (int i = 0; i < 4; i++) drd_buffer_destroy(ctx, bufs[i]);
  drd_buffer_destroy(ctx, &bo16);
  drd_buffer_destroy(ctx, &bq16);
  drd_buffer_destroy(ctx, &bk16);
  drd_buffer_destroy(ctx, &bv16);
  free(got16), free(h16);
  drd_attention_plan_free(ctx, &dp);
  drd_hsa_plan_free(&plan);
  free(q), free(k), free(v), free(ref), free(got), free(bound);
}

/* The scalar kernel and, where it is the automatic choice, the coopmat kernel. */
static void check(drd_context *ctx, drd_rng *rng, const char *cfg, const drd_hparams *hp, uint32_t N, uint32_t H,
                  uint32_t dh, int rounds) {
  /* scores with a standard deviation near 3: peaked softmaxes, not flat ones */
  check_kernels(ctx, rng, cfg, hp, N, H, dh, rounds, true, NULL, 3.0f);
}

/* out aliasing q, k or v, wholly or in part, is refused (windowed rows keep their running
 * state in out, which would overwrite inputs still to be read); out right after v is accepted.
 * Every view lies in one buffer, as the allocator's suballocations of one block do. */
static void check_alias(drd_context *ctx, const drd_attention_plan *dp) {
  const uint64_t bytes = (uint64_t)dp->N * dp->H * dp->dh * 4;
  drd_buffer all;
  drd_test_check(drd_buffer_create(ctx, 5 * bytes, &all), "attention alias buffer");
  drd_buffer view[5];
  for (int i = 0; i < 5; i++) view[i] = (drd_buffer){.buffer = all.buffer, .offset = all.offset + i * bytes, .size = bytes, .block = all.block};
  drd_buffer late_v = view[2]; /* v's last bytes are out's first (by a legal binding offset) */
  late_v.offset += ctx->alloc.alignment;
  const struct {
    const drd_buffer *q, *k, *v, *out;
    drd_status want;
    const char *what;
  } cases[] = {{&view[0], &view[1], &view[2], &view[0], DRD_ERROR_INVALID_ARGUMENT, "out = q"},
               {&view[0], &view[1], &view[2], &view[1], DRD_ERROR_INVALID_ARGUMENT, "out = k"},
               {&view[0], &view[1], &late_v, &view[3], DRD_ERROR_INVALID_ARGUMENT, "out on v's last bytes"},
               {&view[0], &view[1], &view[2], &view[3], DRD_OK, "out after v"}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    drd_seq *q;
    drd_test_check(drd_seq_begin(ctx, &q), "seq_begin");
    drd_status st = drd_op_attention_hsa(q, dp, cases[i].q, cases[i].k, cases[i].v, cases[i].out);
    if (st != cases[i].want) {
      fprintf(stderr, "FAIL: attention with %s: %s (%s)\n", cases[i].what, drd_status_string(st), st == DRD_OK ? "" : drd_last_error());
      failures++;
    }
    drd_seq_destroy(q);
  }
  drd_buffer_destroy(ctx, &all);
}

static void check_errors(drd_context *ctx) {
  drd_hparams hp = tiny_hp();
  drd_hsa_plan plan;
  drd_test_check(drd_hsa_plan_make(&hp, 20, &plan), "hsa plan");
  drd_attention_plan dp;
  const uint32_t bad_dh[] = {0, 7, 130};
  for (int i = 0; i < 3; i++)
    if (drd_attention_plan_upload(ctx, &plan, 2, bad_dh[i], &dp) != DRD_ERROR_INVALID_ARGUMENT) {
      fprintf(stderr, "FAIL: head dim %u accepted\n", bad_dh[i]);
      failures++;
    }
  drd_attention_plan_free(ctx, &dp); /* safe after a failure */
  /* kernel requests: an unknown kind; coopmat where the device has no cooperative matrices */
  drd_test_check(drd_attention_plan_upload(ctx, &plan, 2, 64, &dp), "attention plan upload");
  drd_attn_kernel k;
  dp.request.kind = (drd_attn_kind)7;
  if (drd_attention_kernel(ctx, &dp, &k) != DRD_ERROR_INVALID_ARGUMENT) {
    fprintf(stderr, "FAIL: kernel kind 7 accepted\n");
    failures++;
  }
  dp.request = (drd_attn_kernel){.kind = DRD_ATTN_COOPMAT};
  if (!drd_context_caps(ctx)->coopmat_m && drd_attention_kernel(ctx, &dp, &k) != DRD_ERROR_UNSUPPORTED) {
    fprintf(stderr, "FAIL: coopmat kernel accepted without cooperative matrices\n");
    failures++;
  }
  /* P in registers where the device cannot convert; an unknown convert value */
  dp.request = (drd_attn_kernel){.kind = DRD_ATTN_COOPMAT, .convert = DRD_ATTN_CONVERT_ON};
  if (!drd_context_caps(ctx)->coopmat_convert && drd_attention_kernel(ctx, &dp, &k) != DRD_ERROR_UNSUPPORTED) {
    fprintf(stderr, "FAIL: P in registers accepted without the conversion\n");
    failures++;
  }
  dp.request = (drd_attn_kernel){.kind = DRD_ATTN_COOPMAT, .convert = (drd_attn_convert)7};
  if (drd_attention_kernel(ctx, &dp, &k) == DRD_OK) {
    fprintf(stderr, "FAIL: convert 7 accepted\n");
    failures++;
  }
  /* the subgroup kernel off CPU devices */
  dp.request = (drd_attn_kernel){.kind = DRD_ATTN_SUBGROUP};
  if (drd_context_caps(ctx)->type != DRD_DEVICE_CPU && drd_attention_kernel(ctx, &dp, &k) != DRD_ERROR_UNSUPPORTED) {
    fprintf(stderr, "FAIL: the subgroup kernel accepted off CPU devices\n");
    failures++;
  }
  dp.request = (drd_attn_kernel){0};
  check_alias(ctx, &dp);
  drd_attention_plan_free(ctx, &dp);
  drd_hsa_plan_free(&plan);
}

int main(void) {
  drd_context *ctx = drd_test_context();
  uint64_t seed = drd_test_seed();
  drd_rng rng = {seed};
  drd_hparams tiny = tiny_hp(), base = base_hp(), small = small_hp(), odd = odd_hp();
  const drd_device_caps *caps = drd_context_caps(ctx);
  fprintf(stderr, "cooperative-matrix attention: %s\n",
          caps->coopmat_m ? "where the shape suits it (each case says)" : "off (no usable cooperative matrices)");

  /* tiny: dense (N <= 32), mode 1 (<= 64), mode 2 (<= 128), mode 3 */
  static const uint32_t tiny_n[] = {1, 7, 20, 33, 50, 64, 65, 100, 129, 200, 1000};
  static const uint32_t shapes[][2] = {{3, 10}, {4, 16}, {2, 64}, {1, 2}, {2, 128}, {5, 6}, {16, 64}};
  for (size_t i = 0; i < sizeof tiny_n / sizeof *tiny_n; i++) {
    const uint32_t *hd = shapes[i % (sizeof shapes / sizeof *shapes)];
    check(ctx, &rng, "tiny", &tiny, tiny_n[i], hd[0], hd[1], i % 4 == 1 ? 2 : 1);
  }
  check(ctx, &rng, "tiny", &tiny, 129, 3, 10, 1);
  check(ctx, &rng, "tiny", &tiny, 333, 4, 16, 1);

  /* base-220m: mode 1 with 16 heads of 64, mode 2 */
  check(ctx, &rng, "base", &base, 1100, 16, 64, 1);
  check(ctx, &rng, "base", &base, 4500, 2, 64, 1);
  /* the shipped small model's shape (dh 64, B 16): mode 2 and mode 3 with split rows */
  check(ctx, &rng, "small", &small, 700, 4, 64, 1);
  check(ctx, &rng, "small", &small, 1501, 2, 64, 1);
  /* blocks of 20 rows: dense, mode 2 and mode 3 */
  check(ctx, &rng, "odd", &odd, 71, 3, 24, 1);
  check(ctx, &rng, "odd", &odd, 250, 2, 64, 1);
  check(ctx, &rng, "odd", &odd, 1000, 3, 10, 1);

  /* Binding windows forced on any device: a binding range of a few blocks, so q/k/v/out are
   * bound in many windows and most rows are folded across several key rounds. */
  {
    const uint64_t saved = ctx->caps.max_storage_buffer_range;
    ctx->caps.max_storage_buffer_range = 4096;
    check(ctx, &rng, "win", &tiny, 1000, 3, 10, 2);
    check(ctx, &rng, "win", &tiny, 100, 4, 16, 1);
    ctx->caps.max_storage_buffer_range = 20480;
    check(ctx, &rng, "win", &tiny, 200, 2, 128, 1);
    ctx->caps.max_storage_buffer_range = 300000;
    check(ctx, &rng, "win", &base, 1100, 4, 64, 1);
    ctx->caps.max_storage_buffer_range = saved;
  }
  /* The kernel for devices without subgroup shuffles (one thread per query row), forced by
   * hiding the capability. */
  {
    const uint32_t saved = ctx->caps.subgroup_ops;
    ctx->caps.subgroup_ops &= ~(uint32_t)VK_SUBGROUP_FEATURE_SHUFFLE_BIT;
    check(ctx, &rng, "noshf", &tiny, 200, 3, 10, 1);
    check(ctx, &rng, "noshf", &base, 1100, 2, 128, 1);
    ctx->caps.subgroup_ops = saved;
  }

  /* Coopmat tiles beyond this device's automatic choice (coopmat only): several row tiles
   * per subgroup, Q staged in several rounds (BR > 2 BC), one subgroup per block, 16, 32, 64
   * and 128 keys per tile (128: 8 S matrices per row tile where CN is 16; lavapipe's 8 x 8
   * matrices cannot take it and the case says so), eager rescaling (every tile that raises a
   * row's max rescales: the row-max path on every tile), an odd dh padded to the matrix shape,
   * base-220m's shape at a few thousand tokens, and scores spread far wider than f16's range
   * (q and k in [-12, 12], standard deviation ~48: P = exp2(s - m) stays finite only if a raise
   * takes m to the row's max; a raise to the row's minimum gives NaN here, with q and k in
   * [-6, 6] it went unnoticed). One and two subgroups per workgroup matter beyond lavapipe:
   * small per-subgroup arrays once shifted the matrix arrays off 16 bytes on NVIDIA (see
   * attn_hsa_cm.comp), which lavapipe cannot show. */
  if (caps->coopmat_m) {
    static const struct {
      uint32_t ns, tms, bc, eager;
      int hp; /* 0 tiny, 1 base, 2 small */
      uint32_t N, H, dh;
      float q_amp;
    } forced[] = {
        {1, 2, 32, 0, 0, 200, 2, 64, 3},  {2, 1, 64, 0, 0, 129, 3, 16, 3},  {1, 1, 32, 1, 0, 333, 2, 64, 3},
        {4, 2, 16, 0, 1, 1100, 2, 64, 3}, {2, 2, 32, 1, 1, 1100, 2, 64, 3}, {1, 1, 0, 1, 2, 700, 2, 64, 3},
        {0, 0, 0, 0, 0, 100, 3, 10, 3},   {0, 0, 0, 0, 1, 3001, 4, 64, 3},  {4, 1, 128, 0, 1, 1100, 2, 64, 3},
        {2, 1, 16, 1, 2, 1501, 2, 64, 3}, {0, 0, 0, 0, 1, 700, 2, 64, 12},
    };
    const drd_hparams *hps[] = {&tiny, &base, &small};
    for (size_t i = 0; i < sizeof forced / sizeof *forced; i++) {
      const drd_attn_kernel req = {.kind = DRD_ATTN_COOPMAT, .ns = forced[i].ns, .tms = forced[i].tms,
                                   .bc = forced[i].bc, .eager = forced[i].eager};
      check_kernels(ctx, &rng, "cm", hps[forced[i].hp], forced[i].N, forced[i].H, forced[i].dh, 1, false, &req,
                    forced[i].q_amp);
    }
  }
  /* Where the device can convert accumulators, the other way of passing P than its automatic
   * choice (the GPU's registers: shared memory here; lavapipe's shared memory: the conversion,
   * which it compiles slowly, so a few cases): full and partial key tiles, split rows, a head
   * dim padded to the matrix shape, eager rescaling, one subgroup, wide scores (as above). */
  if (caps->coopmat_convert) {
    drd_attention_plan dp0;
    drd_hsa_plan p0;
    drd_test_check(drd_hsa_plan_make(&tiny, 200, &p0), "hsa plan");
    drd_test_check(drd_attention_plan_upload(ctx, &p0, 2, 64, &dp0), "attention plan upload");
    drd_attn_kernel k0;
    drd_test_check(drd_attention_kernel(ctx, &dp0, &k0), "attention kernel");
    const drd_attn_convert other = k0.convert == DRD_ATTN_CONVERT_ON ? DRD_ATTN_CONVERT_OFF : DRD_ATTN_CONVERT_ON;
    drd_attention_plan_free(ctx, &dp0);
    drd_hsa_plan_free(&p0);
    static const struct {
      uint32_t ns, tms, bc, eager;
      int hp; /* 0 tiny, 1 base, 2 small */
      uint32_t N, H, dh;
      float q_amp;
    } conv[] = {{0, 0, 0, 0, 1, 3001, 4, 64, 3},
                {0, 0, 0, 0, 0, 100, 3, 10, 3},
                {1, 1, 16, 1, 2, 300, 2, 64, 3},
                {0, 0, 0, 0, 1, 700, 2, 64, 12}};
    const drd_hparams *hps[] = {&tiny, &base, &small};
    for (size_t i = 0; i < sizeof conv / sizeof *conv; i++) {
      const drd_attn_kernel req = {.kind = DRD_ATTN_COOPMAT, .ns = conv[i].ns, .tms = conv[i].tms,
                                   .bc = conv[i].bc, .eager = conv[i].eager, .convert = other};
      check_kernels(ctx, &rng, "cv", hps[conv[i].hp], conv[i].N, conv[i].H, conv[i].dh, 1, false, &req, conv[i].q_amp);
    }
    if (!convert_runs || convert_runs == coopmat_runs) {
      fprintf(stderr, "FAIL: the device converts accumulators, but %d of %d coopmat cases had P in registers\n",
              convert_runs, coopmat_runs);
      failures++;
    }
  }
  check_errors(ctx);
  fprintf(stderr, "subgroup kernel (CPU devices): %d cases\n", subgroup_runs);
  if (caps->type == DRD_DEVICE_CPU && drd_attention_f32_kind(ctx, 64) == DRD_ATTN_SUBGROUP && !subgroup_runs) {
    fprintf(stderr, "FAIL: the device runs the subgroup kernel but no case ran it\n");
    failures++;
  }
  if (caps->coopmat_m && !coopmat_runs) {
    fprintf(stderr, "FAIL: the device has cooperative matrices but no case ran the coopmat kernel\n");
    failures++;
  }
  fprintf(stderr, "f16 out (exactly the f32 out rounded) checked in %d coopmat cases, %d of them from f16 q, k and v too\n",
          f16_out_runs, in16_runs);
  if (caps->coopmat_m && caps->storage_16bit && !f16_out_runs) {
    fprintf(stderr, "FAIL: no coopmat case ran with f16 out\n");
    failures++;
  }

  int rc = drd_test_finish(ctx);
  if (failures) fprintf(stderr, "%d failures (seed %llu)\n", failures, (unsigned long long)seed);
  return failures || rc ? 1 : 0;
}
