/* DES (mixture-of-experts FFN) on the GPU against host/ref_des.c and host/des.c:
 *   - routing alone on crafted logits (exact ties, p = 1, E = 1, wide spreads) and random ones;
 *   - the whole FFN on tiny and odd shapes, T in {1, 7, 100, 1000}, f32 and f16 weights, with
 *     direct checks of logits, probabilities, experts, weights, counts, padded offsets, the
 *     expert-sorted pair layout, the tile map and the indirect arguments;
 *   - the weight-binding fallbacks (per expert, chunks of rows) and token chunking, forced on
 *     small shapes and, under DRDIFF_MAX_BUFFER_RANGE=1048576, by a shape over 1 MiB;
 *   - determinism (a replay gives the same bits), replay with fresh inputs, and batch
 *     invariance (a token's bits do not depend on the batch, pass size, binding plan or tile).
 * Outputs and scratch are NaN-poisoned first. Seeded by DRDIFF_TEST_SEED (printed on failure).
 *
 * Routing on the GPU computes pi in f32, the host in f64 (ops_des.h), so a token whose
 * decision hinges on a difference below AMBIG_EPS (two probabilities that close, or a prefix
 * sum that close to p) may be routed differently; such tokens are counted and left out of the
 * element comparison. With random data they are rare (the test prints how many). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "des.h"
#include "dtype.h"
#include "ops_des.h"
#include "pc_des.h"
#include "push_constants.h"
#include "ref_des.h"
#include "ref_ops.h"
#include "util_gpu.h"
#include "util_rand.h"

#define AMBIG_EPS 1e-5
#define OUT_TOL 2e-5    /* max |gpu - ref| / max |ref|: f32 sums of <= 1000 products */
#define LOGIT_TOL 1e-5  /* the same for the router logits */
#define WEIGHT_TOL 5e-7 /* absolute, on weights in [0, 1]: a few ulp (seen: 1 to 2) */
#define PROB_TOL 2e-6   /* relative, pi against the host's f64 softmax rounded to f32 (seen: <= 7e-7 at E = 256) */

static int failures;
static int logits_given_cases; /* FFNs also run from the scratch's logits (b NULL) */
static int norm_fused_cases;   /* FFNs whose combine also did the next norm */
static uint64_t seed;
#define EXPECT(cond, ...)                                           \
  do {                                                              \
    if (!(cond)) {                                                  \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);          \
      fprintf(stderr, __VA_ARGS__);                                 \
      fprintf(stderr, " (DRDIFF_TEST_SEED=%llu)\n", (unsigned long long)seed); \
      failures++;                                                   \
    }                                                               \
  } while (0)

/* ------------------------------------------------------------------ host-side helpers */

/* pi in f64 as the host computes it before rounding, and the selection order */
static void host_pi(const float *l, uint32_t E, double *pi, uint32_t *order) {
  float mx = l[0];
  for (uint32_t e = 1; e < E; e++) mx = l[e] > mx ? l[e] : mx;
  double sum = 0;
  for (uint32_t e = 0; e < E; e++) sum += (pi[e] = exp((double)l[e] - (double)mx));
  for (uint32_t e = 0; e < E; e++) pi[e] /= sum;
  for (uint32_t e = 0; e < E; e++) order[e] = e;
  for (uint32_t i = 0; i < E; i++) /* stable selection sort: descending pi, lower index first */
    for (uint32_t j = i + 1; j < E; j++)
      if (pi[order[j]] > pi[order[i]]) {
        uint32_t x = order[i];
        order[i] = order[j];
        order[j] = x;
      }
}

/* 1 when the routing of these logits hinges on a difference below AMBIG_EPS */
static int ambiguous(const float *l, uint32_t E, uint32_t kmax, float p) {
  double pi[DRD_DES_MAX_EXPERTS];
  uint32_t o[DRD_DES_MAX_EXPERTS];
  host_pi(l, E, pi, o);
  uint32_t n = kmax + 1 < E ? kmax + 1 : E;
  for (uint32_t i = 0; i + 1 < n; i++) {
    double a = pi[o[i]], b = pi[o[i + 1]];
    if (a != b && a - b <= AMBIG_EPS * a) return 1; /* exact ties are exact on both sides */
  }
  if (p < 1.0f) {
    double cum = 0;
    for (uint32_t j = 0; j < kmax; j++) {
      cum += pi[o[j]];
      if (fabs(cum - (double)p) <= AMBIG_EPS) return 1;
    }
  }
  return 0;
}

static uint32_t *download_u32(drd_context *ctx, const drd_buffer *b, size_t n) {
  uint32_t *h = malloc(n * 4 + 4);
  drd_test_check(drd_buffer_download(ctx, b, 0, h, n * 4), "download");
  return h;
}

static float *download_f32(drd_context *ctx, const drd_buffer *b, size_t n) {
  float *h = malloc(n * 4 + 4);
  drd_test_check(drd_buffer_download(ctx, b, 0, h, n * 4), "download");
  return h;
}

/* A device buffer of n weights in f32, or rounded to f16 (host copy rounded in place, so the
 * reference sees the values the GPU reads). */
static drd_buffer weight_buffer(drd_context *ctx, float *host, size_t n, int f16) {
  drd_buffer b;
  if (!f16) return drd_test_buffer_f32(ctx, host, n);
  uint16_t *h = malloc(n * 2 + 2);
  drd_f32_to_f16_row(host, h, n);
  drd_f16_to_f32_row(h, host, n);
  drd_test_check(drd_buffer_create(ctx, n * 2, &b), "buffer_create");
  drd_test_check(drd_buffer_upload(ctx, &b, 0, h, n * 2), "upload f16");
  free(h);
  return b;
}

static void poison_scratch(drd_context *ctx, drd_des_scratch *s) {
  drd_buffer *all[] = {&s->logits, &s->probs, &s->sel, &s->wts, &s->pos, &s->blk, &s->counts,
                       &s->offsets, &s->tile_expert, &s->args, &s->pair_tok, &s->h, &s->y};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    drd_test_check(drd_buffer_fill(ctx, all[i], 0x7fc00000u), "poison");
}

/* ------------------------------------------------------------------ routing checks */

/* GPU routing of T tokens (one pass) against drd_des_route on the same logits `l`, and the
 * pair layout against what the routing implies. Returns the number of ambiguous tokens. */
static uint32_t check_routing(drd_context *ctx, const drd_des_scratch *s, const float *l, uint32_t T, float p,
                              int strict, const char *what) {
  const uint32_t E = s->E, km = s->kmax, bm = s->bm;
  float *probs = download_f32(ctx, &s->probs, (size_t)T * E);
  uint32_t *sel = download_u32(ctx, &s->sel, (size_t)T * km);
  float *wts = download_f32(ctx, &s->wts, (size_t)T * km);
  uint32_t *pos = download_u32(ctx, &s->pos, (size_t)T * km);
  uint32_t *counts = download_u32(ctx, &s->counts, E);
  uint32_t *off = download_u32(ctx, &s->offsets, E + 1);
  uint32_t *args = download_u32(ctx, &s->args, (DRD_DES_ARGS_FIXED + 2 * E) * 3);
  uint32_t ambig = 0, bad_sel = 0, bad_w = 0, bad_pi = 0, bad_k1 = 0, exact_w = 0, n_w = 0;
  double max_pi = 0, max_w = 0;
  uint32_t want_counts[DRD_DES_MAX_EXPERTS] = {0};
  for (uint32_t t = 0; t < T; t++) {
    uint32_t ex[DRD_DES_MAX_EXPERTS];
    float w[DRD_DES_MAX_EXPERTS];
    uint32_t k = drd_des_route(l + (size_t)t * E, E, km, p, ex, w);
    double pi[DRD_DES_MAX_EXPERTS];
    uint32_t o[DRD_DES_MAX_EXPERTS];
    host_pi(l + (size_t)t * E, E, pi, o);
    for (uint32_t e = 0; e < E; e++) {
      double want = (double)(float)pi[e], got = probs[(size_t)t * E + e];
      if (!(fabs(got - want) <= PROB_TOL * want + 1e-37)) bad_pi++;
      if (want > 1e-30 && fabs(got - want) / want > max_pi) max_pi = fabs(got - want) / want;
    }
    /* sel itself must be well formed whatever the host says */
    uint32_t kg = 0;
    while (kg < km && sel[t * km + kg] != DRD_DES_NONE) kg++;
    if (kg == 0) bad_k1++;
    for (uint32_t s2 = 0; s2 < kg; s2++)
      if (sel[t * km + s2] < E) want_counts[sel[t * km + s2]]++;
    if (!strict && ambiguous(l + (size_t)t * E, E, km, p)) {
      ambig++;
      continue;
    }
    if (kg != k) bad_sel++;
    for (uint32_t s2 = 0; s2 < km; s2++) {
      uint32_t we = s2 < k ? ex[s2] : DRD_DES_NONE;
      float ww = s2 < k ? w[s2] : 0.0f;
      if (sel[t * km + s2] != we) bad_sel++;
      double dw = fabs((double)wts[t * km + s2] - (double)ww);
      if (!(dw <= WEIGHT_TOL)) bad_w++;
      if (s2 < k) {
        n_w++;
        exact_w += wts[t * km + s2] == ww;
        max_w = dw > max_w ? dw : max_w;
      }
    }
  }
  fprintf(stderr, "    routing: pi max rel err %.2e, weights max abs err %.2e, %u/%u weights bit-exact\n", max_pi,
          max_w, exact_w, n_w);
  EXPECT(bad_pi == 0, "%s: %u probabilities differ from the host's", what, bad_pi);
  EXPECT(bad_k1 == 0, "%s: %u tokens without an expert", what, bad_k1);
  EXPECT(bad_sel == 0, "%s: %u expert choices differ from drd_des_route", what, bad_sel);
  EXPECT(bad_w == 0, "%s: %u weights differ from drd_des_route", what, bad_w);

  /* counts, padded offsets, args */
  uint32_t o = 0, bad_layout = 0;
  for (uint32_t e = 0; e < E; e++) {
    EXPECT(counts[e] == want_counts[e], "%s: counts[%u] = %u, want %u", what, e, counts[e], want_counts[e]);
    EXPECT(off[e] == o, "%s: offsets[%u] = %u, want %u", what, e, off[e], o);
    o += (want_counts[e] + bm - 1) / bm * bm;
  }
  EXPECT(off[E] == o, "%s: offsets[E] = %u, want %u", what, off[E], o);
  const uint32_t tiles = o / bm;
  EXPECT(args[1] == tiles && args[2] == 1 && args[4] == tiles && args[5] == 1,
         "%s: all-expert indirect args (%u %u %u) (%u %u %u), want %u tiles", what, args[0], args[1], args[2],
         args[3], args[4], args[5], tiles);
  EXPECT(args[0] == (s->dff + s->bn - 1) / s->bn && args[3] == (s->d + s->bn - 1) / s->bn,
         "%s: N tiles in args %u %u", what, args[0], args[3]);
  for (uint32_t e = 0; e < E; e++) {
    uint32_t mt = (off[e + 1] - off[e]) / bm;
    const uint32_t *r1 = args + 3 * (DRD_DES_ARGS_FIXED + e), *r2 = args + 3 * (DRD_DES_ARGS_FIXED + E + e);
    EXPECT(r1[1] == mt && r1[2] == 1 && r2[1] == mt && r2[2] == 1, "%s: expert %u args", what, e);
  }

  /* the pair layout: ascending tokens inside each segment, padding NONE, pos consistent */
  if (o <= s->max_rows) {
    uint32_t *tok = download_u32(ctx, &s->pair_tok, o);
    uint32_t *tile_e = download_u32(ctx, &s->tile_expert, tiles);
    for (uint32_t e = 0; e < E; e++) {
      uint32_t r = off[e];
      for (uint32_t t = 0; t < T; t++)
        for (uint32_t s2 = 0; s2 < km; s2++)
          if (sel[t * km + s2] == e) {
            if (tok[r] != t || pos[t * km + s2] != r) bad_layout++;
            r++;
          }
      for (; r < off[e + 1]; r++)
        if (tok[r] != DRD_DES_NONE) bad_layout++;
      for (uint32_t i = off[e] / bm; i < off[e + 1] / bm; i++)
        if (tile_e[i] != e) bad_layout++;
    }
    for (uint32_t t = 0; t < T; t++)
      for (uint32_t s2 = 0; s2 < km; s2++)
        if ((sel[t * km + s2] == DRD_DES_NONE) != (pos[t * km + s2] == DRD_DES_NONE)) bad_layout++;
    EXPECT(bad_layout == 0, "%s: %u errors in the expert-sorted layout", what, bad_layout);
    free(tok);
    free(tile_e);
  } else {
    EXPECT(0, "%s: offsets[E] = %u over the scratch's %u rows", what, o, s->max_rows);
  }
  free(probs), free(sel), free(wts), free(pos), free(counts), free(off), free(args);
  return ambig;
}

/* ------------------------------------------------------------------ routing alone */

static void test_route_only(drd_context *ctx, drd_rng *rng) {
  struct {
    const char *name;
    uint32_t E, kmax, T;
    float p;
    int kind; /* 0 random, 1 all equal, 2 pairwise ties, 3 wide spread, 4 integer grid */
  } cases[] = {
      {"equal E4 p.5", 4, 4, 5, 0.5f, 1},   {"equal E5 p1", 5, 3, 3, 1.0f, 1},   {"ties E6", 6, 4, 300, 0.6f, 2},
      {"grid E8", 8, 3, 500, 0.7f, 4},      {"wide E8", 8, 2, 300, 0.9f, 3},     {"random E5", 5, 3, 1000, 0.5f, 0},
      {"random E1", 1, 1, 50, 0.7f, 0},     {"random p1", 7, 3, 200, 1.0f, 0},   {"random E64", 64, 8, 200, 0.8f, 0},
      {"random E256", 256, 4, 64, 0.3f, 0},
      /* more blocks of 64 tokens than the scan's 256 invocations: rounds with a carry (few
       * experts, one each: one pass even within the 1 MiB bindings of DRDIFF_MAX_BUFFER_RANGE=1048576) */
      {"random T17000", 3, 1, 17000, 0.6f, 0},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const uint32_t E = cases[c].E, km = cases[c].kmax, T = cases[c].T, d = 8, dff = 8;
    float *dummy = calloc((size_t)E * dff * d, sizeof(float));
    drd_buffer wr = drd_test_buffer_f32(ctx, dummy, (size_t)E * d), wg = drd_test_buffer_f32(ctx, dummy, (size_t)E * dff * d);
    drd_des_weights w = {.d = d, .dff = dff, .E = E, .kmax = km, .p = cases[c].p, .router = &wr, .gate = &wg,
                         .up = &wg, .down = &wg};
    drd_des_scratch s;
    drd_test_check(drd_des_scratch_create(ctx, &w, &(drd_des_scratch_desc){.max_T = T}, &s), "scratch");
    float *l = malloc(sizeof(float) * T * E);
    for (uint32_t i = 0; i < T * E; i++) {
      switch (cases[c].kind) {
      case 1: l[i] = 0.25f; break;
      case 2: l[i] = (float)drd_rng_range(rng, 0, 3) * 0.5f; break; /* many exact ties */
      case 3: l[i] = drd_rng_uniform(rng, -60.0f, 60.0f); break;     /* exp underflows */
      case 4: l[i] = (float)drd_rng_range(rng, 0, 6); break;
      default: l[i] = drd_rng_uniform(rng, -3.0f, 3.0f); break;
      }
    }
    poison_scratch(ctx, &s);
    drd_test_check(drd_buffer_upload(ctx, &s.logits, 0, l, sizeof(float) * T * E), "upload logits");
    drd_seq *q;
    drd_test_check(drd_seq_begin(ctx, &q), "seq_begin");
    drd_test_check(drd_op_des_route(q, &w, T, &s), "des_route");
    drd_test_check(drd_seq_end(q), "seq_end");
    drd_test_check(drd_seq_run(q), "seq_run");
    char what[64];
    snprintf(what, sizeof what, "route %s", cases[c].name);
    /* all-equal logits: pi and every prefix sum are exact on both sides, so even the
     * cum == p boundary (which must stop the prefix) is compared strictly */
    uint32_t amb = check_routing(ctx, &s, l, T, cases[c].p, cases[c].kind == 1, what);
    if (cases[c].p >= 1.0f) { /* exactly kmax experts */
      uint32_t *sel = download_u32(ctx, &s.sel, (size_t)T * km);
      uint32_t bad = 0;
      for (uint32_t i = 0; i < T * km; i++) bad += sel[i] >= E;
      EXPECT(bad == 0, "%s: p = 1 must take exactly kmax experts (%u empty slots)", what, bad);
      free(sel);
    }
    fprintf(stderr, "  %-28s T=%-5u E=%-3u kmax=%u p=%.2f  ambiguous %u\n", what, T, E, km, cases[c].p, amb);
    drd_seq_destroy(q);
    drd_des_scratch_destroy(ctx, &s);
    drd_buffer_destroy(ctx, &wr);
    drd_buffer_destroy(ctx, &wg);
    free(l);
    free(dummy);
  }
}

/* ------------------------------------------------------------------ the whole FFN */

/* The cooperative-matrix kernels round the A operand of both grouped GEMMs to f16 (the b
 * rows, then h; the weights are f16 already), u = 2^-11 relative each. From the reference
 * routing, a first-order bound per output element of what that can move (f32 rounding is
 * covered by OUT_TOL on top):
 *   g, u pre-activations: |dg_j| <= u G_j, G_j = sum_k |b_k Wg_jk| (likewise U_j);
 *   h_j = silu(g_j) u_j: |dh_j| <= 1.1 |dg_j| (|u_j| + |du_j|) + |silu(g_j)| |du_j|
 *   (|silu'| <= 1.0998), then the f16 rounding of h adds u (|h_j| + |dh_j|);
 *   y_c = sum_j D_cj h_j moves by at most dy_c = sum_j |D_cj| (that), and its f16 rounding
 *   adds u (|y_c| + dy_c); out_c = sum_s w_s y_c moves by at most sum_s w_s (those two).
 * bound: [T, d]. */
static void coopmat_bound(const float *b, const float *gate, const float *up, const float *down, uint32_t T,
                          uint32_t d, uint32_t dff, uint32_t km, const uint32_t *ex, const float *wts, double *bound) {
  const double u = ldexp(1.0, -11);
  double *dh = malloc(sizeof(double) * dff), *hv = malloc(sizeof(double) * dff);
  for (size_t i = 0; i < (size_t)T * d; i++) bound[i] = 0;
  for (uint32_t t = 0; t < T; t++)
    for (uint32_t s = 0; s < km; s++) {
      uint32_t e = ex[(size_t)t * km + s];
      if (e == UINT32_MAX) continue;
      for (uint32_t j = 0; j < dff; j++) {
        const float *wg = gate + ((size_t)e * dff + j) * d, *wu = up + ((size_t)e * dff + j) * d;
        double g = 0, uu = 0, G = 0, U = 0;
        for (uint32_t k = 0; k < d; k++) {
          double x = b[(size_t)t * d + k];
          g += x * wg[k], uu += x * wu[k], G += fabs(x * wg[k]), U += fabs(x * wu[k]);
        }
        double dg = u * G, du = u * U, h = g / (1 + exp(-g)) * uu;
        double dhj = 1.1 * dg * (fabs(uu) + du) + fabs(g / (1 + exp(-g))) * du;
        dh[j] = dhj + u * (fabs(h) + dhj);
        hv[j] = h;
      }
      for (uint32_t c = 0; c < d; c++) {
        const float *wd = down + ((size_t)e * d + c) * dff;
        double acc = 0, y = 0;
        for (uint32_t j = 0; j < dff; j++) acc += fabs((double)wd[j]) * dh[j], y += wd[j] * hv[j];
        bound[(size_t)t * d + c] += wts[(size_t)t * km + s] * (acc + u * (fabs(y) + acc));
      }
    }
  free(dh), free(hv);
}

/* max |got - ref| / max |ref| over the tokens not skipped. With cm_worst (the cooperative-
 * matrix kernels ran), each element's f16 rounding bound (coopmat_bound) is taken off its
 * error first, and *cm_worst receives the largest error / (bound + OUT_TOL max |ref|). */
static double out_error(const float *got, const float *ref, const uint8_t *skip, uint32_t T, uint32_t d,
                        uint32_t dff, double *cm_worst, const float *b, const float *gate, const float *up, const float *down,
                        uint32_t km, const uint32_t *ex, const float *wts) {
  double *bound = NULL;
  if (cm_worst) {
    bound = malloc(sizeof(double) * T * d);
    coopmat_bound(b, gate, up, down, T, d, dff, km, ex, wts, bound);
  }
  double num = 0, den = 1e-30;
  for (uint32_t t = 0; t < T; t++)
    for (uint32_t j = 0; j < d && !skip[t]; j++) den = fmax(den, fabs((double)ref[(size_t)t * d + j]));
  for (uint32_t t = 0; t < T; t++)
    for (uint32_t j = 0; j < d && !skip[t]; j++) {
      size_t i = (size_t)t * d + j;
      double e = fabs((double)got[i] - (double)ref[i]);
      if (bound) {
        *cm_worst = fmax(*cm_worst, e / (bound[i] + OUT_TOL * den));
        e = e <= bound[i] ? 0.0 : e - bound[i]; /* a NaN stays NaN */
      }
      if (!(e <= num)) num = e; /* NaN sticks */
    }
  free(bound);
  return num / den;
}

/* Random FFN weights on the host and on the device (f16 or f32): logits with a standard
 * deviation near 2 for b in [-1, 1] (varied routing, few near-ties). w points into the struct. */
typedef struct ffn_weights {
  float *router, *gate, *up, *down;
  drd_buffer wr, wg, wu, wd;
  drd_des_weights w;
} ffn_weights;

static void ffn_weights_make(drd_context *ctx, drd_rng *rng, uint32_t d, uint32_t dff, uint32_t E, uint32_t km,
                             float p, int f16, ffn_weights *f) {
  const size_t nr = (size_t)E * d, nw = (size_t)E * dff * d;
  f->router = malloc(sizeof(float) * nr);
  f->gate = malloc(sizeof(float) * nw), f->up = malloc(sizeof(float) * nw), f->down = malloc(sizeof(float) * nw);
  const float ar = 6.0f / sqrtf((float)d), ag = 1.7f / sqrtf((float)d), ad = 1.7f / sqrtf((float)dff);
  drd_fill_uniform(rng, f->router, nr, -ar, ar);
  drd_fill_uniform(rng, f->gate, nw, -ag, ag);
  drd_fill_uniform(rng, f->up, nw, -ag, ag);
  drd_fill_uniform(rng, f->down, nw, -ad, ad);
  f->wr = weight_buffer(ctx, f->router, nr, f16), f->wg = weight_buffer(ctx, f->gate, nw, f16);
  f->wu = weight_buffer(ctx, f->up, nw, f16), f->wd = weight_buffer(ctx, f->down, nw, f16);
  f->w = (drd_des_weights){.d = d, .dff = dff, .E = E, .kmax = km, .p = p,
                           .router_type = f16 ? DRD_DES_F16 : DRD_DES_F32,
                           .expert_type = f16 ? DRD_DES_F16 : DRD_DES_F32,
                           .router = &f->wr, .gate = &f->wg, .up = &f->wu, .down = &f->wd};
}

static void ffn_weights_free(drd_context *ctx, ffn_weights *f) {
  drd_buffer *bufs[] = {&f->wr, &f->wg, &f->wu, &f->wd};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) drd_buffer_destroy(ctx, bufs[i]);
  free(f->router), free(f->gate), free(f->up), free(f->down);
}

typedef struct ffn_case {
  uint32_t T, d, dff, E, kmax;
  float p;
  int f16;                 /* expert weights (and router) in f16 */
  uint64_t weight_bind;    /* 0: device; else forces the split paths */
  uint32_t chunk_T;        /* 0: automatic */
  int replay;              /* also replay with fresh b */
  uint32_t tile[5];        /* bm, bn, bk, tm, tn; zeros: automatic */
  int gpu_logits;          /* des_logits.glsl even on a CPU device (there des_logits_sg.glsl by default) */
} ffn_case;

static void test_ffn(drd_context *ctx, drd_rng *rng, const ffn_case *c) {
  const uint32_t T = c->T, d = c->d, dff = c->dff, E = c->E, km = c->kmax;
  float *b = malloc(sizeof(float) * T * d);
  float *ref = malloc(sizeof(float) * T * d), *got = malloc(sizeof(float) * T * d), *got2 = malloc(sizeof(float) * T * d);
  float *ref_logits = malloc(sizeof(float) * T * E);
  uint32_t *ref_k = malloc(sizeof(uint32_t) * T), *ref_ex = malloc(sizeof(uint32_t) * T * km);
  float *ref_w = malloc(sizeof(float) * T * km);
  drd_fill_uniform(rng, b, (size_t)T * d, -1.0f, 1.0f);
  ffn_weights fw;
  ffn_weights_make(ctx, rng, d, dff, E, km, c->p, c->f16, &fw);
  const drd_des_weights w = fw.w;
  const float *router = fw.router, *gate = fw.gate, *up = fw.up, *down = fw.down;
  drd_des_scratch s;
  drd_test_check(drd_des_scratch_create(ctx, &w,
                                        &(drd_des_scratch_desc){.max_T = T, .chunk_T = c->chunk_T,
                                                                .weight_bind = c->weight_bind, .bm = c->tile[0],
                                                                .bn = c->tile[1], .bk = c->tile[2], .tm = c->tile[3],
                                                                .tn = c->tile[4], .gpu_logits = c->gpu_logits},
                                        &s),
                 "scratch_create");
  drd_buffer bb = drd_test_buffer_f32(ctx, b, (size_t)T * d), bo = drd_test_buffer_f32(ctx, NULL, (size_t)T * d);
  poison_scratch(ctx, &s);
  drd_seq *q;
  drd_test_check(drd_seq_begin(ctx, &q), "seq_begin");
  drd_test_check(drd_op_des_ffn(q, &w, &bb, &bo, T, &s), "des_ffn");
  drd_test_check(drd_seq_end(q), "seq_end");
  drd_test_check(drd_seq_run(q), "seq_run");
  drd_test_download_f32(ctx, &bo, got, (size_t)T * d);

  char what[160];
  snprintf(what, sizeof what, "ffn T=%u d=%u dff=%u E=%u kmax=%u p=%.2f %s%s%s", T, d, dff, E, km, c->p,
           c->f16 ? "f16" : "f32", s.fused1 && s.fused2 ? "" : (s.rows1 < dff || s.rows2 < d ? " row-chunks" : " per-expert"),
           s.chunk_T < T ? " token-chunks" : "");
  drd_test_check(drd_ref_des_ffn_ex(b, router, gate, up, down, T, d, dff, E, km, c->p, ref, ref_logits, ref_k, ref_ex,
                                    ref_w),
                 "drd_ref_des_ffn");

  /* tokens whose routing hinges on a hair are left out of the element comparison */
  uint8_t *skip = calloc(T, 1);
  uint32_t n_skip = 0;
  for (uint32_t t = 0; t < T; t++) n_skip += skip[t] = (uint8_t)ambiguous(ref_logits + (size_t)t * E, E, km, c->p);
  double cm_worst = 0, err = out_error(got, ref, skip, T, d, dff, s.cm ? &cm_worst : NULL, b, gate, up, down, km, ref_ex, ref_w);
  EXPECT(err <= OUT_TOL, "%s: relative error %.3g > %.3g%s", what, err, OUT_TOL,
         s.cm ? " beyond the f16 rounding bound" : "");

  uint32_t amb_gpu = 0;
  if (s.chunk_T >= T) { /* one pass: the scratch holds every token's routing */
    float *lg = download_f32(ctx, &s.logits, (size_t)T * E);
    double lerr = drd_rel_error(lg, ref_logits, (size_t)T * E);
    EXPECT(lerr <= LOGIT_TOL, "%s: logits relative error %.3g", what, lerr);
    amb_gpu = check_routing(ctx, &s, lg, T, c->p, 0, what);
    /* and against the routing of the host's own logits, token by token */
    uint32_t *sel = download_u32(ctx, &s.sel, (size_t)T * km);
    uint32_t bad = 0;
    for (uint32_t t = 0; t < T; t++)
      for (uint32_t s2 = 0; s2 < km && !skip[t]; s2++)
        if (sel[t * km + s2] != ref_ex[t * km + s2]) bad++;
    EXPECT(bad == 0, "%s: %u expert choices differ from the reference on unambiguous tokens", what, bad);
    free(sel);
    free(lg);
  }

  /* cooperative matrices: an f16 copy of b (drd_op_to_f16) read by the gate/up GEMM gives the
   * same values as the GEMM's own rounding of b, so the same bits */
  if (s.cm) {
    drd_buffer b16, bo16 = drd_test_buffer_f32(ctx, NULL, (size_t)T * d);
    drd_test_check(drd_buffer_create(ctx, (uint64_t)T * d * 2 + 4, &b16), "buffer");
    drd_seq *q16;
    drd_test_check(drd_seq_begin(ctx, &q16), "seq_begin");
    drd_test_check(drd_op_to_f16(q16, &bb, &b16, (uint64_t)T * d), "to_f16");
    drd_test_check(drd_op_des_ffn_ex(q16, &w, &bb, &b16, &bo16, T, &s, false), "des_ffn_ex");
    drd_test_check(drd_seq_end(q16), "seq_end");
    drd_test_check(drd_seq_run(q16), "seq_run");
    drd_test_download_f32(ctx, &bo16, got2, (size_t)T * d);
    EXPECT(memcmp(got, got2, sizeof(float) * T * d) == 0, "%s: b given as f16 gave other bits", what);
    /* b NULL: the logits that run left in the scratch (as drd_op_rmsnorm_router leaves them)
     * give the same bits; without b16 that is refused */
    if (drd_des_logits_in(&s, T)) {
      drd_seq *qn;
      drd_test_check(drd_buffer_fill(ctx, &bo16, 0x7fc00000u), "poison out");
      drd_test_check(drd_seq_begin(ctx, &qn), "seq_begin");
      EXPECT(drd_op_des_ffn_ex(qn, &w, NULL, NULL, &bo16, T, &s, false) == DRD_ERROR_INVALID_ARGUMENT,
             "%s: neither b nor b16 was not refused", what);
      drd_test_check(drd_op_des_ffn_ex(qn, &w, NULL, &b16, &bo16, T, &s, false), "des_ffn_ex, logits given");
      drd_test_check(drd_seq_end(qn), "seq_end");
      drd_test_check(drd_seq_run(qn), "seq_run");
      drd_test_download_f32(ctx, &bo16, got2, (size_t)T * d);
      EXPECT(memcmp(got, got2, sizeof(float) * T * d) == 0, "%s: the logits given gave other bits", what);
      drd_seq_destroy(qn);
      logits_given_cases++;
    }
    drd_seq_destroy(q16);
    drd_buffer_destroy(ctx, &b16);
    drd_buffer_destroy(ctx, &bo16);
  }

  /* determinism: the same recording again gives the same bits */
  drd_test_check(drd_buffer_fill(ctx, &bo, 0x7fc00000u), "poison out");
  drd_test_check(drd_seq_run(q), "seq_run 2");
  drd_test_download_f32(ctx, &bo, got2, (size_t)T * d);
  EXPECT(memcmp(got, got2, sizeof(float) * T * d) == 0, "%s: a replay gave different bits", what);

  /* accumulate: out = r + DES(b) must be, bit for bit, the host's f32 sum r + (the plain run) */
  {
    float *r = malloc(sizeof(float) * T * d), *acc = malloc(sizeof(float) * T * d);
    drd_fill_uniform(rng, r, (size_t)T * d, -4.0f, 4.0f);
    drd_buffer br = drd_test_buffer_f32(ctx, r, (size_t)T * d);
    drd_seq *qa;
    drd_test_check(drd_seq_begin(ctx, &qa), "seq_begin");
    drd_test_check(drd_op_des_ffn_ex(qa, &w, &bb, NULL, &br, T, &s, true), "des_ffn_ex accumulate");
    drd_test_check(drd_seq_end(qa), "seq_end");
    drd_test_check(drd_seq_run(qa), "seq_run");
    drd_test_download_f32(ctx, &br, acc, (size_t)T * d);
    size_t bad = 0;
    for (size_t i = 0; i < (size_t)T * d; i++) {
      volatile float want = r[i] + got[i]; /* one f32 rounding, as the kernel's */
      bad += memcmp(&acc[i], (const float *)&want, sizeof want) != 0;
    }
    EXPECT(bad == 0, "%s: accumulate: %zu of %u values are not r + DES(b)", what, bad, T * d);
    drd_seq_destroy(qa);
    drd_buffer_destroy(ctx, &br);
    free(r), free(acc);
  }

  if (c->replay) { /* record once, replay with new inputs */
    drd_fill_uniform(rng, b, (size_t)T * d, -1.0f, 1.0f);
    drd_test_check(drd_buffer_upload(ctx, &bb, 0, b, sizeof(float) * T * d), "upload b");
    drd_test_check(drd_seq_run(q), "seq_run 3");
    drd_test_download_f32(ctx, &bo, got, (size_t)T * d);
    drd_test_check(drd_ref_des_ffn_ex(b, router, gate, up, down, T, d, dff, E, km, c->p, ref, ref_logits, ref_k,
                                      ref_ex, ref_w),
                   "drd_ref_des_ffn");
    for (uint32_t t = 0; t < T; t++) skip[t] = (uint8_t)ambiguous(ref_logits + (size_t)t * E, E, km, c->p);
    double cm_worst2 = 0, err2 = out_error(got, ref, skip, T, d, dff, s.cm ? &cm_worst2 : NULL, b, gate, up, down, km, ref_ex,
                                           ref_w);
    EXPECT(err2 <= OUT_TOL, "%s: replay with new b: relative error %.3g", what, err2);
  }
  fprintf(stderr, "  %-72s err %.2e  ambiguous %u/%u (gpu logits %u)  tile %ux%ux%u/%ux%u%s", what, err, n_skip, T,
          amb_gpu, s.bm, s.bn, s.bk, s.tm, s.tn, s.cm ? " coopmat" : s.sg ? " subgroup" : "");
  if (s.cm) fprintf(stderr, " (down %ux%u; error / bound %.2f)", s.tm2, s.tn2, cm_worst);
  fprintf(stderr, "\n");

  drd_seq_destroy(q);
  drd_des_scratch_destroy(ctx, &s);
  drd_buffer_destroy(ctx, &bb);
  drd_buffer_destroy(ctx, &bo);
  ffn_weights_free(ctx, &fw);
  free(b), free(ref), free(got), free(got2);
  free(ref_logits), free(ref_k), free(ref_ex), free(ref_w), free(skip);
}

/* drd_op_des_ffn_norm: the combine also writes the next norm's f16 rows. out and out16 must be,
 * bit for bit, those of drd_op_des_ffn_ex (accumulate) then drd_op_rmsnorm_f16 (f16 rows only),
 * which the other cases and test_kernel_rmsnorm compare with the host's references. As in the
 * engine, out16 is the buffer the gate/up GEMM read b16 from (each pass writes only its rows). */
typedef struct norm_case {
  uint32_t T, d, dff, E, kmax;
  float p;
  int f16;
  uint32_t chunk_T; /* 0: automatic */
} norm_case;

static void test_ffn_norm(drd_context *ctx, drd_rng *rng, const norm_case *c) {
  const uint32_t T = c->T, d = c->d, dff = c->dff, E = c->E, km = c->kmax;
  const size_t n = (size_t)T * d;
  float *b = malloc(sizeof(float) * n), *r = malloc(sizeof(float) * n);
  float *nw_host = malloc(sizeof(float) * d), *got[2] = {malloc(sizeof(float) * n), malloc(sizeof(float) * n)};
  uint16_t *h16[2] = {malloc(2 * n), malloc(2 * n)};
  drd_fill_uniform(rng, b, n, -1.0f, 1.0f);
  drd_fill_uniform(rng, r, n, -4.0f, 4.0f);
  drd_fill_uniform(rng, nw_host, d, 0.5f, 1.5f);
  ffn_weights fw;
  ffn_weights_make(ctx, rng, d, dff, E, km, c->p, c->f16, &fw);
  const drd_des_weights w = fw.w;
  drd_des_scratch s;
  drd_test_check(drd_des_scratch_create(ctx, &w, &(drd_des_scratch_desc){.max_T = T, .chunk_T = c->chunk_T}, &s),
                 "scratch_create");
  char what[128];
  snprintf(what, sizeof what, "ffn + norm T=%u d=%u dff=%u E=%u kmax=%u %s%s", T, d, dff, E, km,
           c->f16 ? "f16" : "f32", s.chunk_T < T ? " token-chunks" : "");
  drd_buffer bb = drd_test_buffer_f32(ctx, b, n), bw = drd_test_buffer_f32(ctx, nw_host, d);
  if (!drd_des_norm_fits(ctx, &s, T)) {
    /* where it does not fit (a CPU device's subgroups, kmax > 4), it is refused */
    drd_seq *q;
    drd_test_check(drd_seq_begin(ctx, &q), "seq_begin");
    drd_buffer bo = drd_test_buffer_f32(ctx, r, n), b16;
    drd_test_check(drd_buffer_create(ctx, 2 * n + 4, &b16), "buffer");
    EXPECT(drd_op_des_ffn_norm(q, &w, &bb, NULL, &bo, T, &s, &(drd_des_next_norm){&bw, &b16, 1e-6f}) ==
               DRD_ERROR_UNSUPPORTED,
           "%s: not refused where drd_des_norm_fits says no", what);
    fprintf(stderr, "  %-72s does not fit: refused\n", what);
    drd_seq_destroy(q);
    drd_buffer_destroy(ctx, &bo);
    drd_buffer_destroy(ctx, &b16);
  }
  /* run 0: the two ops; run 1: the fused one; run 2 (where the logits may be given): the fused
   * one from the logits run 1 left in the scratch, as the engine runs it after its router norm */
  const int runs = drd_des_norm_fits(ctx, &s, T) ? (drd_des_logits_in(&s, T) ? 3 : 2) : 0;
  for (int run = 0; run < runs; run++) {
    drd_buffer bo = drd_test_buffer_f32(ctx, r, n), b16;
    drd_test_check(drd_buffer_create(ctx, 2 * n + 4, &b16), "buffer");
    drd_seq *q;
    drd_test_check(drd_seq_begin(ctx, &q), "seq_begin");
    drd_test_check(drd_op_to_f16(q, &bb, &b16, n), "to_f16");
    const drd_des_next_norm nn = {&bw, &b16, 1e-6f};
    if (run == 0) {
      drd_test_check(drd_op_des_ffn_ex(q, &w, &bb, &b16, &bo, T, &s, true), "des_ffn_ex");
      drd_test_check(drd_op_rmsnorm_f16(q, &bo, &bw, NULL, &b16, T, d, nn.eps), "rmsnorm_f16");
    } else {
      drd_test_check(drd_op_des_ffn_norm(q, &w, run == 2 ? NULL : &bb, &b16, &bo, T, &s, &nn), "des_ffn_norm");
    }
    drd_test_check(drd_seq_end(q), "seq_end");
    drd_test_check(drd_seq_run(q), "seq_run");
    const int k = run == 0 ? 0 : 1;
    drd_test_download_f32(ctx, &bo, got[k], n);
    drd_test_check(drd_buffer_download(ctx, &b16, 0, h16[k], 2 * n), "download");
    if (run > 0) {
      size_t bad_x = 0, bad_h = 0;
      for (size_t i = 0; i < n; i++) {
        bad_x += memcmp(&got[0][i], &got[1][i], sizeof(float)) != 0;
        bad_h += h16[0][i] != h16[1][i];
      }
      EXPECT(bad_x == 0 && bad_h == 0, "%s%s: %zu of %zu residual values and %zu f16 norm values differ from the "
             "two ops'", what, run == 2 ? " (logits given)" : "", bad_x, n, bad_h);
    }
    drd_seq_destroy(q);
    drd_buffer_destroy(ctx, &bo);
    drd_buffer_destroy(ctx, &b16);
  }
  if (runs) { /* the norm's f16 rows over out or over b: refused */
    drd_buffer bo = drd_test_buffer_f32(ctx, r, n);
    drd_seq *q;
    drd_test_check(drd_seq_begin(ctx, &q), "seq_begin");
    EXPECT(drd_op_des_ffn_norm(q, &w, &bb, NULL, &bo, T, &s, &(drd_des_next_norm){&bw, &bo, 1e-6f}) ==
               DRD_ERROR_INVALID_ARGUMENT,
           "%s: f16 rows over out not refused", what);
    EXPECT(drd_op_des_ffn_norm(q, &w, &bb, NULL, &bo, T, &s, &(drd_des_next_norm){&bw, &bb, 1e-6f}) ==
               DRD_ERROR_INVALID_ARGUMENT,
           "%s: f16 rows over b not refused", what);
    drd_seq_destroy(q);
    drd_buffer_destroy(ctx, &bo);
  }
  if (runs) fprintf(stderr, "  %-72s same bits as the two ops (%d fused runs)\n", what, runs - 1);
  norm_fused_cases += runs > 0;
  drd_des_scratch_destroy(ctx, &s);
  drd_buffer_destroy(ctx, &bb);
  drd_buffer_destroy(ctx, &bw);
  ffn_weights_free(ctx, &fw);
  free(b), free(r), free(nw_host);
  free(got[0]), free(got[1]), free(h16[0]), free(h16[1]);
}

/* The combines of f16 expert outputs (des_combine_y16.comp, V4 and element-wise, and
 * des_combine_norm.comp with Y16), which the FFNs above reach only on cooperative matrices,
 * run here on any device with 16-bit storage from a hand-made y, slots (NONE after the first
 * NONE, as des_route pads) and weights. Against the host: out = old + sum w y within f32
 * rounding (the kernels may fuse multiplies and adds); the fused kernel's residual rows bit for
 * bit as des_combine_y16's, its f16 rows as drd_op_rmsnorm_f16's of those. */
/* One dispatch of pipeline `name` over `groups` workgroups, recorded, run and waited for. */
static void dispatch_once(drd_context *ctx, const char *name, const uint32_t *spec, uint32_t n_spec,
                          const drd_bind *binds, uint32_t n_binds, const void *pc, uint32_t pc_size, uint64_t groups) {
  drd_pipeline *p;
  drd_test_check(drd_pipeline_get(ctx, &(drd_pipeline_desc){name, n_binds, pc_size, n_spec, spec}, &p), "pipeline");
  uint32_t gx, gy;
  drd_grid_1d(ctx, groups, &gx, &gy);
  drd_seq *q;
  drd_test_check(drd_seq_begin(ctx, &q), "seq_begin");
  drd_test_check(drd_seq_dispatch(q, p, binds, n_binds, pc, gx, gy, 1, name), "dispatch");
  drd_test_check(drd_seq_end(q), "seq_end");
  drd_test_check(drd_seq_run(q), "seq_run");
  drd_seq_destroy(q);
}

static void test_combine_y16(drd_context *ctx, drd_rng *rng, uint32_t T, uint32_t d, uint32_t km) {
  if (!drd_context_caps(ctx)->storage_16bit) return;
  const uint32_t rows = T * km + 7;
  const size_t n = (size_t)T * d;
  if ((uint64_t)n * 4 > drd_max_bind_range(ctx) || (uint64_t)rows * d * 2 > drd_max_bind_range(ctx)) {
    fprintf(stderr, "  combine of f16 y T=%u d=%u kmax=%u: bindings over the device's range, skipped\n", T, d, km);
    return; /* these kernels take whole tensors; the FFN cases above cover token passes */
  }
  float *yf = malloc(sizeof(float) * rows * d), *old = malloc(sizeof(float) * n), *wts = malloc(sizeof(float) * T * km);
  float *got = malloc(sizeof(float) * n), *got2 = malloc(sizeof(float) * n), *nw = malloc(sizeof(float) * d);
  uint16_t *y16 = malloc(2 * (size_t)rows * d), *h[2] = {malloc(2 * n), malloc(2 * n)};
  uint32_t *pos = malloc(sizeof(uint32_t) * T * km);
  drd_fill_uniform(rng, yf, (size_t)rows * d, -3.0f, 3.0f);
  drd_f32_to_f16_row(yf, y16, (size_t)rows * d);
  drd_fill_uniform(rng, old, n, -4.0f, 4.0f);
  drd_fill_uniform(rng, wts, (size_t)T * km, 0.0f, 1.0f);
  drd_fill_uniform(rng, nw, d, 0.5f, 1.5f);
  for (uint32_t t = 0; t < T; t++) {
    const uint32_t used = drd_rng_range(rng, 1, km); /* slots before the first NONE */
    for (uint32_t j = 0; j < km; j++) {
      pos[t * km + j] = j < used ? drd_rng_range(rng, 0, rows - 1) : DRD_DES_NONE;
      if (j >= used) wts[t * km + j] = 0.0f;
    }
  }
  drd_buffer by, bw = drd_test_buffer_f32(ctx, wts, (size_t)T * km), bp, bn = drd_test_buffer_f32(ctx, nw, d), b16;
  drd_test_check(drd_buffer_create(ctx, 2 * (uint64_t)rows * d, &by), "buffer");
  drd_test_check(drd_buffer_upload(ctx, &by, 0, y16, 2 * (uint64_t)rows * d), "upload");
  drd_test_check(drd_buffer_create(ctx, 4 * (uint64_t)T * km, &bp), "buffer");
  drd_test_check(drd_buffer_upload(ctx, &bp, 0, pos, 4 * (uint64_t)T * km), "upload");
  drd_test_check(drd_buffer_create(ctx, 2 * n + 4, &b16), "buffer");
  const uint32_t wg = 64;
  for (uint32_t v4 = 0; v4 < 2; v4++) {
    drd_buffer bo = drd_test_buffer_f32(ctx, old, n);
    const uint32_t spec[2] = {wg, v4 && d % 4 == 0};
    const drd_pc_des_combine pc = {.T = T, .d = d, .kmax = km, .o_off = 0, .accumulate = 1};
    const drd_bind binds[4] = {drd_in(&by), drd_in(&bw), drd_in(&bp), drd_out(&bo)};
    dispatch_once(ctx, "des_combine_y16", spec, 2, binds, 4, &pc, sizeof pc, ((uint64_t)n / (spec[1] ? 4 : 1) + wg - 1) / wg);
    drd_test_download_f32(ctx, &bo, got, n);
    size_t bad = 0;
    for (uint32_t t = 0; t < T; t++)
      for (uint32_t c = 0; c < d; c++) {
        double sum = old[(size_t)t * d + c], mag = fabs(sum);
        for (uint32_t j = 0; j < km && pos[t * km + j] != DRD_DES_NONE; j++) {
          const double term = (double)wts[t * km + j] * drd_f16_to_f32(y16[(size_t)pos[t * km + j] * d + c]);
          sum += term, mag += fabs(term);
        }
        bad += !(fabs(got[(size_t)t * d + c] - sum) <= (km + 1) * ldexp(mag, -24));
      }
    EXPECT(bad == 0, "combine y16 T=%u d=%u kmax=%u %s: %zu of %zu values off the host's sum", T, d, km,
           spec[1] ? "v4" : "element-wise", bad, n);
    drd_buffer_destroy(ctx, &bo);
  }
  /* the fused kernel with f16 y: got holds des_combine_y16's V4 result */
  const uint32_t sgwg = drd_rows_sg_wg(ctx, d);
  if (sgwg && km <= 4) {
    drd_buffer bo = drd_test_buffer_f32(ctx, got, n), bo2 = drd_test_buffer_f32(ctx, old, n);
    const uint32_t spec[3] = {sgwg, km, 1}, per_group = sgwg / drd_context_caps(ctx)->subgroup_size;
    const drd_pc_rows pc = {.rows = T, .cols = d, .eps = 1e-6f};
    const drd_bind hb = drd_out_range(&b16, 0, 2 * n);
    const drd_bind binds[7] = {drd_out(&bo2), drd_in(&bn), hb, hb, drd_in(&by), drd_in(&bw), drd_in(&bp)};
    dispatch_once(ctx, "des_combine_norm", spec, 3, binds, 7, &pc, sizeof pc, (T + per_group - 1) / per_group);
    drd_test_download_f32(ctx, &bo2, got2, n);
    drd_test_check(drd_buffer_download(ctx, &b16, 0, h[1], 2 * n), "download");
    /* the plain norm of des_combine_y16's rows (the subgroup kernel from 2048 rows) */
    drd_seq *q;
    drd_test_check(drd_seq_begin(ctx, &q), "seq_begin");
    drd_test_check(drd_op_rmsnorm_f16(q, &bo, &bn, NULL, &b16, T, d, 1e-6f), "rmsnorm_f16");
    drd_test_check(drd_seq_end(q), "seq_end");
    drd_test_check(drd_seq_run(q), "seq_run");
    drd_test_check(drd_buffer_download(ctx, &b16, 0, h[0], 2 * n), "download");
    drd_seq_destroy(q);
    size_t bad_x = 0, bad_h = 0;
    for (size_t i = 0; i < n; i++) bad_x += memcmp(&got[i], &got2[i], 4) != 0, bad_h += h[0][i] != h[1][i];
    EXPECT(bad_x == 0 && (!drd_rmsnorm_on_subgroups(ctx, T, d) || bad_h == 0),
           "combine + norm y16 T=%u d=%u kmax=%u: %zu residual and %zu f16 values differ", T, d, km, bad_x, bad_h);
    drd_buffer_destroy(ctx, &bo);
    drd_buffer_destroy(ctx, &bo2);
  }
  fprintf(stderr, "  combine of f16 y T=%u d=%u kmax=%u: checked%s\n", T, d, km, sgwg && km <= 4 ? " (and fused)" : "");
  drd_buffer *bufs[] = {&by, &bw, &bp, &bn, &b16};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) drd_buffer_destroy(ctx, bufs[i]);
  free(yf), free(old), free(wts), free(got), free(got2), free(nw), free(y16), free(h[0]), free(h[1]), free(pos);
}

/* Every output element is one f32 fma chain over k in ascending order whatever the tile,
 * the pass size or the weight binding plan, and routing is per token: a token's output bits
 * must not depend on the other tokens in the batch nor on those choices. */
static void test_batch_invariance(drd_context *ctx, drd_rng *rng, int f16) {
  const uint32_t T = 100, d = 64, dff = 96, E = 4, km = 2;
  const size_t nr = (size_t)E * d, nw = (size_t)E * dff * d;
  const drd_device_caps *caps = drd_context_caps(ctx);
  const uint32_t sgs = caps->subgroup_size;
  float *b = malloc(sizeof(float) * T * d), *router = malloc(sizeof(float) * nr);
  float *gate = malloc(sizeof(float) * nw), *up = malloc(sizeof(float) * nw), *down = malloc(sizeof(float) * nw);
  float *base = malloc(sizeof(float) * T * d), *got = malloc(sizeof(float) * T * d);
  drd_fill_uniform(rng, b, (size_t)T * d, -1.0f, 1.0f);
  drd_fill_uniform(rng, router, nr, -0.75f, 0.75f);
  drd_fill_uniform(rng, gate, nw, -0.2f, 0.2f);
  drd_fill_uniform(rng, up, nw, -0.2f, 0.2f);
  drd_fill_uniform(rng, down, nw, -0.2f, 0.2f);
  drd_buffer wr = weight_buffer(ctx, router, nr, f16), wg = weight_buffer(ctx, gate, nw, f16);
  drd_buffer wu = weight_buffer(ctx, up, nw, f16), wd = weight_buffer(ctx, down, nw, f16);
  drd_des_weights w = {.d = d, .dff = dff, .E = E, .kmax = km, .p = 0.7f,
                       .router_type = f16 ? DRD_DES_F16 : DRD_DES_F32, .expert_type = f16 ? DRD_DES_F16 : DRD_DES_F32,
                       .router = &wr, .gate = &wg, .up = &wu, .down = &wd};
  struct {
    const char *name;
    uint32_t first, n; /* tokens [first, first + n) of b */
    drd_des_scratch_desc sd;
  } runs[] = {
      {"whole batch", 0, T, {.max_T = T}},
      {"tokens 0..6", 0, 7, {.max_T = 7}},
      {"tokens 41..99", 41, 59, {.max_T = 59}},
      {"passes of 9 tokens", 0, T, {.max_T = T, .chunk_T = 9}},
      {"weights bound per expert", 0, T, {.max_T = T, .weight_bind = 25000}},
      {"weights in row chunks, tile 16x16x8/2x2", 0, T,
       {.max_T = T, .weight_bind = 16384, .bm = 16, .bn = 16, .bk = 8, .tm = 2, .tn = 2}},
      {"tile 16x16x8/2x2", 0, T, {.max_T = T, .bm = 16, .bn = 16, .bk = 8, .tm = 2, .tn = 2}},
      {"tile 64x128x8/4x8", 0, T, {.max_T = T, .bm = 64, .bn = 128, .bk = 8, .tm = 4, .tn = 8}},
      {"weights in row chunks, coopmat tile 32x32x16/2x2", 0, T,
       {.max_T = T, .weight_bind = 16384, .bm = 32, .bn = 32, .bk = 16, .tm = 2, .tn = 2, .cm = 1}},
      {"coopmat tile 32x32x16/2x2", 0, T, {.max_T = T, .bm = 32, .bn = 32, .bk = 16, .tm = 2, .tn = 2, .cm = 1}},
      {"coopmat tile 64x64x32/2x2", 0, T, {.max_T = T, .bm = 64, .bn = 64, .bk = 32, .tm = 2, .tn = 2, .cm = 1}},
      {"coopmat tile 64x64x48/2x2", 0, T, {.max_T = T, .bm = 64, .bn = 64, .bk = 48, .tm = 2, .tn = 2, .cm = 1}},
      {"subgroup tile 1 x 8", 0, T, {.max_T = T, .bm = sgs, .bn = 8 * sgs, .bk = 4, .tm = 1, .tn = 8, .sg = 1}},
      {"weights in row chunks, subgroup tile 4 x 2", 0, T,
       {.max_T = T, .weight_bind = 16384, .bm = 4 * sgs, .bn = 2 * sgs, .bk = 4, .tm = 4, .tn = 2, .sg = 1}},
  };
  /* the subgroup kernels run on CPU devices, for f32 or f16 weights; there the automatic choice
   * is theirs too, unless f16 weights go to cooperative matrices */
  const bool sg_device = caps->type == DRD_DEVICE_CPU && (caps->subgroup_ops & VK_SUBGROUP_FEATURE_SHUFFLE_BIT) &&
                         (!f16 || !caps->coopmat_m);
  size_t sg_ran = 0, sg_want = 0;
  /* the cooperative-matrix kernels round operands to f16: their bits are compared among
   * themselves, the scalar kernels' among themselves (runs of the other family are skipped) */
  int family = -1;
  size_t checked = 0;
  for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
    const uint32_t n = runs[r].n;
    drd_des_scratch s;
    const drd_des_scratch_desc *sd = &runs[r].sd;
    if (sd->bm && sd->cm != family) continue;
    if (sd->cm && !drd_cm_tile_ok(ctx, sd->bm, sd->bn, sd->bk, sd->tm, sd->tn, 2, 1, 4ull * sd->bm)) continue;
    /* tiles hold whole vec4s of rows and columns: at 2 lanes (lavapipe's LP_NATIVE_VECTOR_WIDTH=64)
     * the 1 x 8 subgroup tile's 2 rows are refused by design */
    if (sd->sg && (!sg_device || sd->bm % 4 || sd->bn % 4)) continue;
    sg_want += sd->sg;
    drd_test_check(drd_des_scratch_create(ctx, &w, &runs[r].sd, &s), "scratch");
    if (r == 0) family = s.cm;
    if (r == 0) EXPECT(s.sg == sg_device, "automatic tile: subgroup kernels %d on a device where they %s", s.sg,
                       sg_device ? "run" : "do not");
    checked += r > 0;
    sg_ran += sd->sg && s.sg;
    drd_buffer bb = drd_test_buffer_f32(ctx, b + (size_t)runs[r].first * d, (size_t)n * d);
    drd_buffer bo = drd_test_buffer_f32(ctx, NULL, (size_t)n * d);
    drd_seq *q;
    drd_test_check(drd_seq_begin(ctx, &q), "seq_begin");
    drd_test_check(drd_op_des_ffn(q, &w, &bb, &bo, n, &s), "des_ffn");
    drd_test_check(drd_seq_end(q), "seq_end");
    drd_test_check(drd_seq_run(q), "seq_run");
    drd_test_download_f32(ctx, &bo, r == 0 ? base : got, (size_t)n * d);
    if (r > 0)
      EXPECT(memcmp(got, base + (size_t)runs[r].first * d, sizeof(float) * n * d) == 0,
             "batch invariance (%s): %s gives other bits than the whole batch", f16 ? "f16" : "f32", runs[r].name);
    drd_seq_destroy(q);
    drd_des_scratch_destroy(ctx, &s);
    drd_buffer_destroy(ctx, &bb);
    drd_buffer_destroy(ctx, &bo);
  }
  fprintf(stderr, "  batch invariance (%s, %s kernels): %zu variants checked bit for bit, %zu of them subgroup tiles\n",
          f16 ? "f16" : "f32", family ? "cooperative-matrix" : "scalar", checked, sg_ran);
  EXPECT(!sg_device || (sg_want && sg_ran == sg_want), "%zu of %zu subgroup tiles ran", sg_ran, sg_want);
  drd_buffer *bufs[] = {&wr, &wg, &wu, &wd};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) drd_buffer_destroy(ctx, bufs[i]);
  free(b), free(router), free(gate), free(up), free(down), free(base), free(got);
}

static void test_errors(drd_context *ctx) {
  float z[64] = {0};
  drd_buffer r = drd_test_buffer_f32(ctx, z, 64);
  drd_des_weights w = {.d = 4, .dff = 4, .E = 4, .kmax = 5, .p = 0.5f, .router = &r, .gate = &r, .up = &r, .down = &r};
  drd_des_scratch s;
  EXPECT(drd_des_scratch_create(ctx, &w, &(drd_des_scratch_desc){.max_T = 4}, &s) == DRD_ERROR_INVALID_ARGUMENT,
         "kmax > E must be refused");
  w.kmax = 2;
  w.p = 0.0f;
  EXPECT(drd_des_scratch_create(ctx, &w, &(drd_des_scratch_desc){.max_T = 4}, &s) == DRD_ERROR_INVALID_ARGUMENT,
         "p = 0 must be refused");
  w.p = 0.5f;
  w.d = 64; /* weights larger than their buffer */
  EXPECT(drd_des_scratch_create(ctx, &w, &(drd_des_scratch_desc){.max_T = 4}, &s) == DRD_ERROR_INVALID_ARGUMENT,
         "short weight buffers must be refused");
  w.d = 4;
  drd_test_check(drd_des_scratch_create(ctx, &w, &(drd_des_scratch_desc){.max_T = 4}, &s), "scratch");
  drd_seq *q;
  drd_test_check(drd_seq_begin(ctx, &q), "seq_begin");
  EXPECT(drd_op_des_ffn(q, &w, &r, &r, 4, &s) == DRD_ERROR_INVALID_ARGUMENT, "aliasing b and out must be refused");
  EXPECT(drd_op_des_ffn(q, &w, &r, &s.y, 5, &s) == DRD_ERROR_INVALID_ARGUMENT, "T over max_T must be refused");
  /* indirect arguments must be 4-byte aligned and inside their buffer */
  drd_pipeline *p;
  uint32_t wg = 64;
  drd_test_check(drd_pipeline_get(ctx, &(drd_pipeline_desc){"des_combine", 4, sizeof(drd_pc_des_combine), 1, &wg}, &p),
                 "pipeline");
  drd_pc_des_combine pc = {0};
  drd_bind bc[4] = {drd_in(&s.y), drd_in(&s.wts), drd_in(&s.pos), drd_out(&s.h)};
  EXPECT(drd_seq_dispatch_indirect(q, p, bc, 4, &pc, &s.args, 2, "x") == DRD_ERROR_INVALID_ARGUMENT,
         "unaligned indirect arguments must be refused");
  EXPECT(drd_seq_dispatch_indirect(q, p, bc, 4, &pc, &s.args, s.args.size - 8, "x") == DRD_ERROR_INVALID_ARGUMENT,
         "indirect arguments past the buffer must be refused");
  drd_seq_destroy(q);
  drd_des_scratch_destroy(ctx, &s);
  drd_des_scratch_destroy(ctx, &s); /* twice: a no-op */
  drd_buffer_destroy(ctx, &r);
}

int main(void) {
  seed = drd_test_seed();
  drd_rng rng = {seed};
  drd_context *ctx = drd_test_context();
  fprintf(stderr, "seed %llu\n", (unsigned long long)seed);
  /* the references here are small: one host thread leaves the CPUs to lavapipe (the bits do
   * not depend on the thread count) */
  drd_ref_set_threads(1);

  test_route_only(ctx, &rng);

  const ffn_case cases[] = {
      /* the tiny configuration */
      {1, 64, 96, 4, 2, 0.7f, 0, 0, 0, 0, {0}, 0},   {7, 64, 96, 4, 2, 0.7f, 0, 0, 0, 0, {0}, 0},
      {100, 64, 96, 4, 2, 0.7f, 0, 0, 0, 1, {0}, 0}, {1000, 64, 96, 4, 2, 0.7f, 0, 0, 0, 0, {0}, 0},
      {1, 64, 96, 4, 2, 0.7f, 1, 0, 0, 0, {0}, 0},   {7, 64, 96, 4, 2, 0.7f, 1, 0, 0, 0, {0}, 0},
      {100, 64, 96, 4, 2, 0.7f, 1, 0, 0, 0, {0}, 0}, {1000, 64, 96, 4, 2, 0.7f, 1, 0, 0, 0, {0}, 0},
      /* odd shapes */
      {1, 33, 17, 5, 3, 0.5f, 0, 0, 0, 0, {0}, 0},   {7, 33, 17, 5, 3, 0.5f, 0, 0, 0, 0, {0}, 0},
      {100, 33, 17, 5, 3, 0.5f, 0, 0, 0, 0, {0}, 0}, {1000, 33, 17, 5, 3, 0.5f, 0, 0, 0, 0, {0}, 0},
      {1, 33, 17, 5, 3, 0.5f, 1, 0, 0, 0, {0}, 0},   {7, 33, 17, 5, 3, 0.5f, 1, 0, 0, 0, {0}, 0},
      {100, 33, 17, 5, 3, 0.5f, 1, 0, 0, 1, {0}, 0}, {1000, 33, 17, 5, 3, 0.5f, 1, 0, 0, 0, {0}, 0},
      /* p = 1: exactly kmax; one expert */
      {100, 33, 17, 5, 3, 1.0f, 0, 0, 0, 0, {0}, 0}, {100, 33, 17, 5, 3, 1.0f, 1, 0, 0, 0, {0}, 0},
      {100, 64, 96, 1, 1, 0.7f, 0, 0, 0, 0, {0}, 0}, {7, 33, 17, 1, 1, 0.5f, 1, 0, 0, 0, {0}, 0},
      /* more experts than the router kernel sums at once (8) */
      {100, 64, 96, 12, 2, 0.7f, 1, 0, 0, 0, {0}, 0}, {7, 33, 17, 11, 3, 0.5f, 0, 0, 0, 0, {0}, 0},
      /* forced fallbacks: weights bound per expert (f16) or in row chunks (f32), token passes */
      {50, 160, 192, 3, 2, 0.8f, 0, 65536, 0, 0, {0}, 0}, {50, 160, 192, 3, 2, 0.8f, 1, 65536, 0, 0, {0}, 0},
      {100, 64, 96, 4, 2, 0.7f, 0, 0, 23, 1, {0}, 0},     {100, 160, 192, 3, 2, 0.8f, 1, 65536, 16, 0, {0}, 0},
      {100, 33, 17, 5, 3, 0.5f, 0, 4096, 0, 0, {0}, 0},   {100, 33, 17, 5, 3, 0.5f, 1, 4096, 0, 0, {0}, 0},
      /* other tiles (all within 16 KiB of shared memory): the GPU ones, 4 x 8 micro-tiles,
       * scalar shared reads */
      {300, 64, 96, 4, 2, 0.7f, 1, 0, 0, 0, {64, 64, 16, 4, 4}, 0},
      {300, 72, 200, 4, 2, 0.7f, 0, 0, 0, 0, {64, 128, 8, 4, 8}, 0},
      {300, 33, 17, 5, 3, 0.5f, 1, 0, 0, 0, {16, 16, 8, 2, 2}, 0},
      /* over 1 MiB of expert weights: per expert under DRDIFF_MAX_BUFFER_RANGE=1048576; the
       * last one also needs short tiles and passes of a few tokens there (h is 8 KiB a row) */
      {16, 256, 512, 4, 2, 0.7f, 0, 0, 0, 0, {0}, 0},     {16, 256, 512, 4, 2, 0.7f, 1, 0, 0, 0, {0}, 0},
      {20, 128, 2048, 8, 1, 0.7f, 1, 0, 0, 0, {0}, 0},
      /* the GPUs' router kernel where a CPU device has its own (elsewhere the same runs again) */
      {100, 33, 17, 5, 3, 0.5f, 0, 0, 0, 0, {0}, 1}, {1000, 64, 96, 4, 2, 0.7f, 1, 0, 0, 0, {0}, 1},
      {100, 64, 96, 12, 2, 0.7f, 1, 0, 0, 0, {0}, 1}, {7, 33, 17, 11, 3, 0.5f, 0, 0, 0, 0, {0}, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) test_ffn(ctx, &rng, &cases[i]);
  /* the combine with the next norm: from 2048 rows (the norm's subgroup kernel), rows held in
   * registers and (d = 260 on 8-wide subgroups) reloaded, one to four slots, token passes, and
   * kmax = 5 (refused) */
  const norm_case norm_cases[] = {
      {2048, 64, 96, 4, 2, 0.7f, 1, 0},  {2053, 68, 40, 5, 3, 0.6f, 0, 0}, {2111, 260, 48, 8, 4, 0.95f, 1, 0},
      {2051, 132, 64, 3, 1, 0.5f, 1, 0}, {2060, 68, 40, 4, 2, 0.8f, 1, 700}, {2048, 64, 40, 6, 5, 0.9f, 1, 0},
  };
  for (size_t i = 0; i < sizeof norm_cases / sizeof norm_cases[0]; i++) test_ffn_norm(ctx, &rng, &norm_cases[i]);
  test_combine_y16(ctx, &rng, 2053, 68, 3);
  test_combine_y16(ctx, &rng, 2048, 260, 2);
  test_combine_y16(ctx, &rng, 301, 33, 5); /* element-wise only; the fused kernel takes <= 4 slots */
  const drd_device_caps *caps = drd_context_caps(ctx);
  EXPECT(!drd_rows_sg_wg(ctx, 64) || !caps->storage_16bit || norm_fused_cases > 0,
         "the device has the norm's subgroup kernel, yet no combine did the norm");
  test_batch_invariance(ctx, &rng, 0);
  test_batch_invariance(ctx, &rng, 1);
  test_errors(ctx);
  /* on cooperative matrices some FFN must have run from logits given in the scratch */
  fprintf(stderr, "test_kernel_des: %d FFNs also from the scratch's logits\n", logits_given_cases);
  EXPECT(!drd_context_caps(ctx)->coopmat_m || logits_given_cases > 0, "no FFN ran from the scratch's logits");

  if (failures) fprintf(stderr, "%d failures (DRDIFF_TEST_SEED=%llu)\n", failures, (unsigned long long)seed);
  int v = drd_test_finish(ctx);
  return failures || v ? 1 : 0;
}
