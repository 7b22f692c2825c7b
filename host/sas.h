/* Semantic Anchor States: soft absorption of the denoiser's estimate toward the token
 * embeddings, and the final rounding to token ids (SPEC section 8). Both are attention
 * over the vocabulary; the vocabulary is streamed in tiles (online softmax / running
 * argmax), so memory is O(rows * de), never rows x V. */
#ifndef DRD_SAS_H
#define DRD_SAS_H

#include <stdint.h>

#include "drdiff.h"
#include "ref_ops.h"

/* For every row r < rows of D: D_r <- (1 - gamma) D_r + gamma * sum_v softmax_v(D_r . E_v / tau) E_v.
 * E: [V, de] f32 token embeddings; Ep: the same packed (drd_ref_pack), or NULL to pack
 * here; D: [rows, de] f32, updated in place. Logits are f64 (exact products), the softmax
 * is an online f64 softmax over vocabulary tiles whose weights are rounded to f32 (2^-24
 * relative) before the weighted sum of embeddings, which then is an exact-product GEMM:
 * the same bits on every SIMD path and thread count. */
drd_status drd_sas_absorb(const float *E, const drd_ref_packed *Ep, uint32_t V, uint32_t de,
                          float *D, uint32_t rows, float gamma, float tau, uint32_t nthreads);

/* tokens[r] = argmax_v x_r . E_v (f64 dot products; ties: lowest id) for r < rows.
 * x: [rows, de] f32; Ep as above (E is needed only when Ep is NULL). */
drd_status drd_sas_round(const float *E, const drd_ref_packed *Ep, uint32_t V, uint32_t de,
                         const float *x, uint32_t rows, int32_t *tokens, uint32_t nthreads);

#endif
