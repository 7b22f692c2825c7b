/* DES FFN reference (ref_des.h). */
#include "ref_des.h"

#include <stdlib.h>
#include <string.h>

#include "des.h"
#include "log.h"
#include "ref_ops.h"

drd_status drd_ref_des_ffn(const float *b, const float *router, const float *gate, const float *up,
                           const float *down, uint32_t T, uint32_t d, uint32_t dff, uint32_t E, uint32_t kmax,
                           float p, float *out) {
  return drd_ref_des_ffn_ex(b, router, gate, up, down, T, d, dff, E, kmax, p, out, NULL, NULL, NULL, NULL);
}

drd_status drd_ref_des_ffn_ex(const float *b, const float *router, const float *gate, const float *up,
                              const float *down, uint32_t T, uint32_t d, uint32_t dff, uint32_t E, uint32_t kmax,
                              float p, float *out, float *logits_out, uint32_t *k_out, uint32_t *experts_out,
                              float *weights_out) {
  if (d == 0 || dff == 0 || E == 0 || E > DRD_DES_MAX_EXPERTS || kmax == 0 || kmax > E)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "ref_des: bad shape d=%u dff=%u E=%u kmax=%u", d, dff, E, kmax);
  if (T == 0) return DRD_OK;
  drd_status st = DRD_OK;
  const size_t km = kmax;
  float *logits = malloc(sizeof(float) * T * E);
  uint32_t *kk = malloc(sizeof(uint32_t) * T);
  uint32_t *ex = malloc(sizeof(uint32_t) * T * km);
  float *wt = malloc(sizeof(float) * T * km);
  uint32_t *rows = malloc(sizeof(uint32_t) * T * km); /* (token * kmax + slot), expert-sorted */
  float *xa = malloc(sizeof(float) * T * d);          /* gathered rows of one expert */
  float *g = malloc(sizeof(float) * T * dff);
  float *u = malloc(sizeof(float) * T * dff);
  float *y = malloc(sizeof(float) * T * d);
  float *slots = calloc((size_t)T * km * d, sizeof(float)); /* expert output per (token, slot) */
  if (!logits || !kk || !ex || !wt || !rows || !xa || !g || !u || !y || !slots) {
    st = drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "ref_des: out of host memory");
    goto done;
  }
  if ((st = drd_ref_gemm(b, router, NULL, logits, T, E, d)) != DRD_OK) goto done;
  for (uint32_t t = 0; t < T; t++) {
    for (size_t s = 0; s < km; s++) {
      ex[t * km + s] = UINT32_MAX;
      wt[t * km + s] = 0.0f;
    }
    kk[t] = drd_des_route(logits + (size_t)t * E, E, kmax, p, ex + t * km, wt + t * km);
  }
  /* group (token, slot) pairs by expert, ascending token inside each group (counting sort),
   * as the CPU engine and the GPU do */
  for (uint32_t e = 0, n = 0; e < E; e++) {
    uint32_t r0 = n;
    for (uint32_t t = 0; t < T; t++)
      for (uint32_t s = 0; s < kk[t]; s++)
        if (ex[t * km + s] == e) rows[n++] = (uint32_t)(t * km + s);
    uint32_t m = n - r0;
    if (m == 0) continue;
    for (uint32_t i = 0; i < m; i++) memcpy(xa + (size_t)i * d, b + (size_t)(rows[r0 + i] / km) * d, sizeof(float) * d);
    const size_t wsz = (size_t)dff * d;
    if ((st = drd_ref_gemm(xa, gate + e * wsz, NULL, g, m, dff, d)) != DRD_OK) goto done;
    if ((st = drd_ref_gemm(xa, up + e * wsz, NULL, u, m, dff, d)) != DRD_OK) goto done;
    drd_ref_swiglu(g, u, g, (size_t)m * dff);
    if ((st = drd_ref_gemm(g, down + e * wsz, NULL, y, m, d, dff)) != DRD_OK) goto done;
    for (uint32_t i = 0; i < m; i++) memcpy(slots + (size_t)rows[r0 + i] * d, y + (size_t)i * d, sizeof(float) * d);
  }
  for (uint32_t t = 0; t < T; t++)
    for (uint32_t j = 0; j < d; j++) {
      double acc = 0.0;
      for (uint32_t s = 0; s < kk[t]; s++) acc += (double)wt[t * km + s] * (double)slots[(t * km + s) * d + j];
      out[(size_t)t * d + j] = (float)acc;
    }
  if (logits_out) memcpy(logits_out, logits, sizeof(float) * T * E);
  if (k_out) memcpy(k_out, kk, sizeof(uint32_t) * T);
  if (experts_out) memcpy(experts_out, ex, sizeof(uint32_t) * T * km);
  if (weights_out) memcpy(weights_out, wt, sizeof(float) * T * km);
done:
  free(logits), free(kk), free(ex), free(wt), free(rows), free(xa), free(g), free(u), free(y), free(slots);
  return st;
}
