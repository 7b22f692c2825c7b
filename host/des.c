/* DES router: softmax, top-p prefix capped at kmax, renormalisation. */
#include "des.h"

#include <math.h>

uint32_t drd_des_route(const float *logits, uint32_t E, uint32_t kmax, float p,
                       uint32_t *experts, float *weights) {
  if (E > DRD_DES_MAX_EXPERTS) E = DRD_DES_MAX_EXPERTS;
  if (kmax > E) kmax = E;
  if (kmax < 1) kmax = 1;
  float pi[DRD_DES_MAX_EXPERTS];
  float mx = logits[0];
  for (uint32_t e = 1; e < E; e++)
    if (logits[e] > mx) mx = logits[e];
  double sum = 0.0;
  double ex[DRD_DES_MAX_EXPERTS];
  for (uint32_t e = 0; e < E; e++) {
    ex[e] = exp((double)logits[e] - (double)mx);
    sum += ex[e];
  }
  for (uint32_t e = 0; e < E; e++) pi[e] = (float)(ex[e] / sum);

  /* Selection sort of the kmax largest: E is small, and scanning with a strict > keeps
   * the lower index first among equal probabilities. */
  uint8_t taken[DRD_DES_MAX_EXPERTS] = {0};
  float cum = 0.0f; /* f32 running sum, as the PyTorch reference (torch.cumsum in f32) */
  uint32_t k = 0;
  while (k < kmax) {
    uint32_t best = E;
    for (uint32_t e = 0; e < E; e++)
      if (!taken[e] && (best == E || pi[e] > pi[best])) best = e;
    taken[best] = 1;
    experts[k++] = best;
    cum += pi[best];
    if (p < 1.0f && cum >= p) break;
  }
  float chosen = 0.0f;
  for (uint32_t i = 0; i < k; i++) chosen += pi[experts[i]];
  for (uint32_t i = 0; i < k; i++) weights[i] = pi[experts[i]] / chosen;
  return k;
}
