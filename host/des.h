/* Dynamic Expert Scheduling: the per-token router of SPEC section 6. */
#ifndef DRD_DES_H
#define DRD_DES_H

#include <stdint.h>

/* Routes one token. logits: [E] f32 router outputs. Writes the chosen experts in selection
 * order (descending probability, ties to the lower index) to experts[0..k) and their
 * renormalised weights (sum 1) to weights[0..k); returns k, 1 <= k <= min(kmax, E).
 *
 * pi = softmax(logits) in f32 (max-subtracted, exp and sum in f64, each pi rounded once to
 * f32); the prefix is the shortest whose running f32 sum of pi in selection order is >= p,
 * capped to kmax; p >= 1 takes exactly kmax (even if the f32 sum reaches 1 early). Weights
 * are pi_e / (f32 sum of the chosen pi), in f32. E <= DRD_DES_MAX_EXPERTS. */
#define DRD_DES_MAX_EXPERTS 256
uint32_t drd_des_route(const float *logits, uint32_t E, uint32_t kmax, float p,
                       uint32_t *experts, float *weights);

#endif
