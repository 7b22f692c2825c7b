/* SAS soft absorption and rounding, streaming the vocabulary. */
#include "sas.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define SAS_RT 32u  /* rows per task */
#define SAS_VT 512u /* vocabulary entries per tile (a multiple of the GEMM's panel pairs) */

typedef struct sas_ctx {
  const float *E;      /* [V, ldE] f32 embeddings, rows padded so 8-column panels stay inside */
  size_t ldE;
  const drd_ref_packed *Ep;
  uint32_t V, de, rows;
  float *D;            /* absorb: in/out */
  const float *x;      /* round: in */
  int32_t *tokens;     /* round: out */
  double gamma, tau;
  void *scratch;
  size_t scratch_bytes; /* per thread, a multiple of 64 */
} sas_ctx;

/* One thread's scratch: logits [RT][VT] f64 | weights [RT][VT] f32 | part, acc [RT][de] f64 |
 * max, den [RT] f64 | GEMM scratch. */
static size_t sas_scratch_bytes(uint32_t de) {
  const uint32_t kmaxdim = de > SAS_VT ? de : SAS_VT;
  const size_t b = sizeof(double) * SAS_RT * SAS_VT + sizeof(float) * SAS_RT * SAS_VT +
                   sizeof(double) * (2 * (size_t)SAS_RT * de + 2 * SAS_RT + drd_ref_gemm_scratch(kmaxdim));
  return (b + 63) / 64 * 64;
}

/* Online softmax over vocabulary tiles. Logits are exact-product f64 GEMMs against the
 * packed embeddings; the weights p = exp(z - max) are rounded to f32 (as in attention) so
 * that sum_v p_v E_v is again an exact-product GEMM, on E read in place. */
static void absorb_task(void *p, uint32_t task, uint32_t thread) {
  const sas_ctx *c = p;
  const uint32_t r0 = task * SAS_RT, rt = c->rows - r0 < SAS_RT ? c->rows - r0 : SAS_RT;
  const size_t de = c->de;
  uint8_t *base = (uint8_t *)c->scratch + (size_t)thread * c->scratch_bytes;
  double *lg = (double *)base;                       /* [RT][VT] */
  float *pw = (float *)(lg + (size_t)SAS_RT * SAS_VT); /* [RT][VT] */
  double *part = (double *)(pw + (size_t)SAS_RT * SAS_VT); /* [RT][de] */
  double *acc = part + SAS_RT * de;                  /* [RT][de] */
  double *mx = acc + SAS_RT * de;                    /* [RT] */
  double *den = mx + SAS_RT;                         /* [RT] */
  double *ws = den + SAS_RT;
  float *D = c->D + (size_t)r0 * de;
  for (uint32_t r = 0; r < rt; r++) {
    mx[r] = -INFINITY;
    den[r] = 0.0;
    for (size_t j = 0; j < de; j++) acc[r * de + j] = 0.0;
  }
  for (uint32_t v0 = 0; v0 < c->V; v0 += SAS_VT) {
    const uint32_t vn = c->V - v0 < SAS_VT ? c->V - v0 : SAS_VT;
    drd_ref_gemm_tile(D, de, rt, c->Ep, v0, v0 + vn, NULL, NULL, lg, SAS_VT, ws);
    for (uint32_t r = 0; r < rt; r++) {
      double *z = lg + (size_t)r * SAS_VT;
      float *pr = pw + (size_t)r * SAS_VT;
      double tm = -INFINITY;
      for (uint32_t j = 0; j < vn; j++) {
        z[j] /= c->tau;
        if (z[j] > tm) tm = z[j];
      }
      if (tm > mx[r]) { /* new running maximum: rescale what was summed so far */
        const double s = exp(mx[r] - tm);
        den[r] *= s;
        for (size_t k = 0; k < de; k++) acc[r * de + k] *= s;
        mx[r] = tm;
      }
      double ds = 0.0;
      for (uint32_t j = 0; j < vn; j++) {
        pr[j] = (float)exp(z[j] - mx[r]);
        ds += (double)pr[j];
      }
      den[r] += ds;
    }
    const drd_ref_panels ev = {.data = c->E + (size_t)v0 * c->ldE, .N = c->de, .K = vn, .ldw = c->ldE,
                               .pstride = DRD_GEMM_NR};
    drd_ref_gemm_panels(pw, SAS_VT, rt, &ev, 0, c->de, NULL, NULL, part, de, ws);
    for (size_t k = 0; k < (size_t)rt * de; k++) acc[k] += part[k];
  }
  for (uint32_t r = 0; r < rt; r++)
    for (size_t k = 0; k < de; k++)
      D[r * de + k] = (float)((1.0 - c->gamma) * (double)D[r * de + k] + c->gamma * (acc[r * de + k] / den[r]));
}

static void round_task(void *p, uint32_t task, uint32_t thread) {
  const sas_ctx *c = p;
  const uint32_t r0 = task * SAS_RT, rt = c->rows - r0 < SAS_RT ? c->rows - r0 : SAS_RT;
  double *lg = (double *)((uint8_t *)c->scratch + (size_t)thread * c->scratch_bytes); /* [RT][VT] */
  double *best = lg + (size_t)SAS_RT * SAS_VT;                                        /* [RT] */
  double *ws = best + SAS_RT;
  int32_t *tok = c->tokens + r0;
  for (uint32_t r = 0; r < rt; r++) {
    best[r] = -INFINITY;
    tok[r] = 0;
  }
  for (uint32_t v0 = 0; v0 < c->V; v0 += SAS_VT) {
    const uint32_t vn = c->V - v0 < SAS_VT ? c->V - v0 : SAS_VT;
    drd_ref_gemm_tile(c->x + (size_t)r0 * c->de, c->de, rt, c->Ep, v0, v0 + vn, NULL, NULL, lg, SAS_VT, ws);
    for (uint32_t r = 0; r < rt; r++)
      for (uint32_t j = 0; j < vn; j++) /* strict >: the lowest id wins a tie */
        if (lg[(size_t)r * SAS_VT + j] > best[r]) {
          best[r] = lg[(size_t)r * SAS_VT + j];
          tok[r] = (int32_t)(v0 + j);
        }
  }
}

/* Packs E if the caller has no packed copy, pads E's rows to a multiple of 8 columns when
 * the embedding width is not one (the value panels read 8 columns at a time), sizes the
 * scratch and runs the row tasks. */
static drd_status sas_run(sas_ctx *c, const float *E, uint32_t nthreads, drd_ref_task_fn fn) {
  if (c->rows == 0) return DRD_OK;
  if (c->V == 0) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "SAS: empty vocabulary");
  drd_ref_packed own = {0};
  float *padded = NULL;
  if (!c->Ep) {
    if (!E) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "SAS: no token embeddings");
    drd_status st = drd_ref_pack(E, c->V, c->de, &own);
    if (st != DRD_OK) return st;
    c->Ep = &own;
  }
  c->E = E;
  c->ldE = c->de;
  if (E && fn == absorb_task && c->de % DRD_GEMM_NR) {
    c->ldE = (c->de + DRD_GEMM_NR - 1) / DRD_GEMM_NR * DRD_GEMM_NR;
    padded = calloc((size_t)c->V * c->ldE, sizeof(float)); // [V, ldE] f32
    if (!padded) {
      drd_ref_pack_free(&own);
      return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "SAS: padded embeddings");
    }
    for (size_t v = 0; v < c->V; v++) memcpy(padded + v * c->ldE, E + v * c->de, sizeof(float) * c->de);
    c->E = padded;
  }
  const uint32_t tasks = (c->rows + SAS_RT - 1) / SAS_RT;
  if (nthreads < 1) nthreads = 1;
  if (nthreads > tasks) nthreads = tasks;
  c->scratch_bytes = sas_scratch_bytes(c->de);
  c->scratch = malloc(c->scratch_bytes * nthreads);
  if (!c->scratch) {
    free(padded);
    drd_ref_pack_free(&own);
    return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "SAS: scratch for %u threads", nthreads);
  }
  drd_ref_parallel(nthreads, tasks, fn, c);
  free(c->scratch);
  free(padded);
  drd_ref_pack_free(&own);
  return DRD_OK;
}

drd_status drd_sas_absorb(const float *E, const drd_ref_packed *Ep, uint32_t V, uint32_t de,
                          float *D, uint32_t rows, float gamma, float tau, uint32_t nthreads) {
  if (!E) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "SAS: no token embeddings");
  if (!(tau > 0.0f)) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "SAS: temperature %g must be > 0", (double)tau);
  sas_ctx c = {.E = E, .Ep = Ep, .V = V, .de = de, .rows = rows, .D = D,
               .gamma = (double)gamma, .tau = (double)tau};
  return sas_run(&c, E, nthreads, absorb_task);
}

drd_status drd_sas_round(const float *E, const drd_ref_packed *Ep, uint32_t V, uint32_t de,
                         const float *x, uint32_t rows, int32_t *tokens, uint32_t nthreads) {
  sas_ctx c = {.E = E, .Ep = Ep, .V = V, .de = de, .rows = rows, .x = x, .tokens = tokens};
  return sas_run(&c, E, nthreads, round_task);
}
