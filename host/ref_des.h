/* The C reference of the whole DES FFN (SPEC section 6) on f32 arrays: the oracle of the GPU
 * pipeline in runtime/ops_des.c. It follows the CPU engine (host/forward.c) operation for
 * operation: router logits and every expert product by drd_ref_gemm (f64 sums, rounded once),
 * routing by drd_des_route, SwiGLU by drd_ref_swiglu, and the combine summed in f64 in slot
 * order and rounded once. Deterministic: the thread count does not change a bit. */
#ifndef DRD_REF_DES_H
#define DRD_REF_DES_H

#include <stdint.h>

#include "drdiff.h"

/* out[T, d] = DES(b[T, d]) with router [E, d], gate and up [E, dff, d], down [E, d, dff].
 * 1 <= kmax <= E <= DRD_DES_MAX_EXPERTS. Fails only on bad arguments or host memory. */
drd_status drd_ref_des_ffn(const float *b, const float *router, const float *gate, const float *up,
                           const float *down, uint32_t T, uint32_t d, uint32_t dff, uint32_t E, uint32_t kmax,
                           float p, float *out);

/* The same, also returning the routing (each may be NULL): logits [T, E] f32, k [T] experts
 * per token, experts [T, kmax] (UINT32_MAX past k) and weights [T, kmax] (0 past k). */
drd_status drd_ref_des_ffn_ex(const float *b, const float *router, const float *gate, const float *up,
                              const float *down, uint32_t T, uint32_t d, uint32_t dff, uint32_t E, uint32_t kmax,
                              float p, float *out, float *logits, uint32_t *k, uint32_t *experts, float *weights);

#endif
