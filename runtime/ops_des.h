/* Dynamic Expert Scheduling (SPEC section 6): the mixture-of-experts FFN of one layer,
 * recorded once into a drd_seq and replayed every step, with no host round trip.
 *
 * Pipeline per pass over Tc tokens (all on the GPU):
 *   des_logits   logits[Tc, E] = b . router^T
 *   des_route    softmax + top-p selection capped at kmax -> (expert, weight) per (token, slot),
 *                plus a per-block expert histogram
 *   des_scan     per-expert counts, segment offsets padded to the tile height, tile -> expert
 *                map, padding rows, and the grouped GEMMs' VkDispatchIndirectCommand records
 *   des_scatter  (token, slot) pairs into expert-sorted order, ascending token in an expert
 *   des_gemm1    per tile of one expert: gather b rows, h = SiLU(b Wg^T) * (b Wu^T)   [indirect]
 *   des_gemm2    y = h Wd^T (stored as f16 on cooperative matrices)                   [indirect]
 *   des_combine  out[t] (+)= sum over slots, in slot order, of w * y[pair]
 *
 * Determinism: no float atomics; pair positions come from counts, not from atomic order;
 * every reduction has a fixed order. The same inputs give the same bits on one device.
 *
 * Routing vs the host (host/des.c): the host computes exp and the softmax sum in f64. The
 * GPU computes pi in f32 with a portable exp (des_common.glsl), so pi may differ by a few
 * ulp and the router logits (f32 accumulation here, f64 in host/ref_ops.c) by a few ulp
 * of their magnitude. The cumulative sum compared with p is kept exact (two-float sum),
 * as the host's f64 one. Selections therefore agree except when two probabilities or a
 * prefix sum and p are within about 1e-6 of each other; weights agree to a few ulp.
 *
 * Binding limits: expert tensors [E, dff, d] larger than one descriptor may cover are
 * bound per expert, and an expert larger than that in chunks of output rows (one indirect
 * dispatch each, with that expert's tile count). Activations larger than one binding are
 * handled by running the pipeline over token chunks of at most chunk_T tokens, and, where the
 * per-expert padding of one pass alone would not fit (tiny ranges), by a shorter tile.
 *
 * Batch invariance: every output element is one f32 fma chain over k in ascending order and
 * routing is per token, so a token's bits do not depend on the other tokens, the pass size,
 * the weight binding plan or the tile (tests/test_kernel_des.c checks it). */
#ifndef DRD_OPS_DES_H
#define DRD_OPS_DES_H

#include "ops.h"

/* Weight element types, with GGUF's numbering (drd_dtype in host/model_file.h). */
#define DRD_DES_F32 0u
#define DRD_DES_F16 1u

typedef struct drd_des_weights {
  uint32_t d, dff, E, kmax; /* 1 <= kmax <= E <= 256 */
  float p;                  /* 0 < p <= 1; p >= 1 takes exactly kmax experts */
  uint32_t router_type;     /* DRD_DES_F32 or DRD_DES_F16 */
  uint32_t expert_type;     /* of gate, up and down */
  const drd_buffer *router; /* [E, d] */
  const drd_buffer *gate;   /* [E, dff, d] */
  const drd_buffer *up;     /* [E, dff, d] */
  const drd_buffer *down;   /* [E, d, dff] */
} drd_des_weights;

typedef struct drd_des_scratch_desc {
  uint32_t max_T;      /* largest token count drd_op_des_ffn will be given */
  /* 0 = automatic. Tests and benchmarks only: */
  uint32_t chunk_T;    /* tokens per pass (else the most whose activations fit one binding) */
  uint64_t weight_bind; /* largest weight binding (else drd_max_bind_range): forces the
                          * per-expert / chunked weight paths on small shapes */
  uint32_t bm, bn, bk, tm, tn; /* grouped-GEMM tile (all five, or none) */
  int cm;                      /* with a tile: the cooperative-matrix kernels, tm x tn subgroups */
  int sg;                      /* with a tile: the CPU devices' subgroup kernels (des_gemm*_sg): bm =
                                * tm x the subgroup size, bn = tn x the subgroup size, bk unused */
  int gpu_logits;              /* the router logits by des_logits.glsl even on a CPU device */
} drd_des_scratch_desc;

/* Buffers of one pass, sized once for chunk_T tokens, and the plan that goes with the
 * weights' shapes. Rows = (token, slot) pairs in expert-sorted, padded order. */
typedef struct drd_des_scratch {
  uint32_t d, dff, E, kmax, router_type, expert_type;
  uint32_t max_T, chunk_T;
  uint32_t bm, bn, bk, tm, tn;  /* grouped-GEMM tile */
  int cm;                       /* cooperative-matrix kernels (des_gemm*_cm): tm x tn subgroups */
  int sg;                       /* CPU devices' subgroup kernels (des_gemm*_sg): tm x tn per lane */
  uint32_t tm2, tn2;            /* the down GEMM's subgroups (cm: one weight operand, fewer may do) */
  uint32_t tb;                  /* tokens per route/scatter block */
  int logits_sg;                /* router logits by des_logits_sg.glsl (a CPU device), else des_logits.glsl */
  uint32_t wg_logits, wg_scan, wg_combine;
  uint32_t max_rows, max_tiles, max_blocks;
  uint64_t weight_bind;
  /* per-expert binding plan of each GEMM's weights: whole tensor (fused) or chunks of
   * rows1 / rows2 output rows of one expert */
  int fused1, fused2;
  uint32_t rows1, rows2, chunks1, chunks2;
  drd_buffer logits;      /* [chunk_T, E] f32 */
  drd_buffer probs;       /* [chunk_T, E] f32 pi */
  drd_buffer sel;         /* [chunk_T, kmax] u32 expert per slot, DRD_DES_NONE past the token's k */
  drd_buffer wts;         /* [chunk_T, kmax] f32 renormalised weight, 0 past k */
  drd_buffer pos;         /* [chunk_T, kmax] u32 row of the pair, DRD_DES_NONE past k */
  drd_buffer blk;         /* [max_blocks, E] u32 block histogram, then exclusive offsets */
  drd_buffer counts;      /* [E] u32 pairs per expert */
  drd_buffer offsets;     /* [E + 1] u32 padded segment starts; offsets[E] = rows in use */
  drd_buffer tile_expert; /* [max_tiles] u32 */
  drd_buffer args;        /* [2 + 2E][3] u32 VkDispatchIndirectCommand records (pc_des.h) */
  drd_buffer pair_tok;    /* [max_rows] u32 token of each row, DRD_DES_NONE for padding */
  drd_buffer h;           /* [max_rows, dff] f32 SwiGLU activations; f16 with the cooperative-
                           * matrix kernels (their down GEMM rounds h to f16 anyway) */
  drd_buffer y;           /* [max_rows, d] expert outputs, f16 under cm (else f32) */
} drd_des_scratch;

/* Plans and allocates the scratch of drd_op_des_ffn for the weights' shapes and types.
 * Fails with DRD_ERROR_UNSUPPORTED (and a message) when the device cannot run the shapes. */
drd_status drd_des_scratch_create(drd_context *ctx, const drd_des_weights *w, const drd_des_scratch_desc *desc,
                                  drd_des_scratch *out);
void drd_des_scratch_destroy(drd_context *ctx, drd_des_scratch *s); /* zeroed / NULL: no-op */

/* out[T, d] f32 = DES(b[T, d] f32). Records the whole pipeline (ceil(T / chunk_T) passes);
 * T <= scratch->max_T. out must not alias b. */
drd_status drd_op_des_ffn(drd_seq *s, const drd_des_weights *w, const drd_buffer *b, const drd_buffer *out,
                          uint32_t T, drd_des_scratch *scratch);

/* The same, with b16: an f16 copy of b ([T, d], or NULL) that the cooperative-matrix gate/up
 * GEMM reads instead of rounding b itself (the same values, half the bytes and no
 * conversion); the router still reads b. Ignored by the scalar kernels. With accumulate,
 * out += DES(b) (the residual connection, in the combine: the same f32 sum as adding the
 * plain result afterwards, without its pass over out). With b NULL the router's logits are
 * already in drd_des_logits_in(scratch, T), and b16 is the input. */
drd_status drd_op_des_ffn_ex(drd_seq *s, const drd_des_weights *w, const drd_buffer *b, const drd_buffer *b16,
                             const drd_buffer *out, uint32_t T, drd_des_scratch *scratch, bool accumulate);

/* The next RMSNorm done by the combine (drd_op_des_ffn_norm): out16 = f16(RMSNorm(out) * w) of
 * the rows the combine has just summed, with drd_op_rmsnorm_f16's bits (one subgroup per row). */
typedef struct drd_des_next_norm {
  const drd_buffer *w;     /* [d] f32 */
  const drd_buffer *out16; /* [T, d] f16; may be b16 (each pass writes only its own tokens' rows),
                            * must not overlap out or b (INVALID_ARGUMENT) */
  float eps;
} drd_des_next_norm;

/* Whether drd_op_des_ffn_norm can run T tokens: where drd_op_rmsnorm_f16 would run one subgroup
 * per row (drd_rmsnorm_on_subgroups), kmax <= 4, 16-bit storage. */
bool drd_des_norm_fits(const drd_context *ctx, const drd_des_scratch *s, uint32_t T);

/* drd_op_des_ffn_ex with accumulate (out += DES) whose combine also writes the next norm's f16
 * rows (shaders/des_combine_norm.comp): the same bits in out and norm->out16 as
 * drd_op_des_ffn_ex then drd_op_rmsnorm_f16(out, NULL, out16), one pass over out fewer (64 MiB
 * per layer at 16K tokens of d = 1024). UNSUPPORTED where drd_des_norm_fits says no. */
drd_status drd_op_des_ffn_norm(drd_seq *s, const drd_des_weights *w, const drd_buffer *b, const drd_buffer *b16,
                               const drd_buffer *out, uint32_t T, drd_des_scratch *scratch,
                               const drd_des_next_norm *norm);

/* The scratch's logits buffer ([T, E] f32) where drd_op_des_ffn_ex may take the logits
 * precomputed (b NULL; drd_op_rmsnorm_router writes them): T tokens in one pass on the
 * cooperative-matrix kernels. NULL otherwise. */
const drd_buffer *drd_des_logits_in(const drd_des_scratch *s, uint32_t T);

/* The routing part alone, for tests: from scratch->logits [T, E] (T <= chunk_T) to sel, wts,
 * probs, counts, offsets, tile_expert, pair_tok, pos and args. */
drd_status drd_op_des_route(drd_seq *s, const drd_des_weights *w, uint32_t T, drd_des_scratch *scratch);

#endif
