/* Push-constant layouts of the DES (mixture-of-experts FFN) kernels, shared by the C runtime
 * (runtime/ops_des.c) and the GLSL shaders (shaders/des_*.comp). Scalar 32-bit members
 * only, so C and std430 layouts agree byte for byte. In GLSL:
 * layout(push_constant) uniform Push { drd_pc_des_x pc; }; */
#ifndef DRD_PC_DES_H
#define DRD_PC_DES_H

#ifdef __STDC_VERSION__ /* C, not GLSL */
#include <stdint.h>
#ifndef DRD_PC_STRUCT
typedef uint32_t uint;
#define DRD_PC_STRUCT(name) typedef struct name name; struct name
#endif
#else
#ifndef DRD_PC_STRUCT
#define DRD_PC_STRUCT(name) struct name
#endif
#endif

/* A (token, slot) without an expert, a padding row of a tile, an unused slot. */
#define DRD_DES_NONE 0xFFFFFFFFu

/* Indirect-argument records (VkDispatchIndirectCommand, 3 uint32 each) the scan kernel
 * writes: record 0 = gate/up GEMM over all experts, 1 = down GEMM over all experts,
 * 2 + e = gate/up of expert e alone, 2 + E + e = down of expert e alone. */
#define DRD_DES_ARGS_GEMM1 0u
#define DRD_DES_ARGS_GEMM2 1u
#define DRD_DES_ARGS_FIXED 2u

/* Router logits [T, E] = b[T, d] . router[E, d]^T: one workgroup per token. Offsets are in
 * elements of each binding's type, from the (aligned) start of the bound range. */
DRD_PC_STRUCT(drd_pc_des_logits) {
  uint T, d, E;
  uint b_off; /* element of b[0, 0] */
  uint r_off; /* element of router[0, 0] (f16 elements for both f16 variants) */
};

/* Routing of T tokens, `tb` tokens per workgroup (= the workgroup size; the per-block
 * histogram and the scatter use the same blocks). */
DRD_PC_STRUCT(drd_pc_des_route) {
  uint T, E, kmax;
  float p;
};

/* Single-workgroup scan: per-expert totals, padded segment offsets, tile -> expert map,
 * padding rows, indirect arguments. */
DRD_PC_STRUCT(drd_pc_des_scan) {
  uint E;
  uint n_blocks;  /* token blocks of the route kernel */
  uint bm;        /* tile height: every expert segment is padded to a multiple */
  uint max_tiles; /* capacity of tile_expert */
  uint ntn1;      /* N tiles of the gate/up GEMM over the whole dff (all-experts dispatch) */
  uint ntn2;      /* N tiles of the down GEMM over the whole d */
  uint ctn1;      /* N tiles of one weight chunk of the gate/up GEMM (per-expert dispatches) */
  uint ctn2;      /* the same for the down GEMM */
};

/* Scatter of (token, slot) pairs into expert-sorted, padded order. */
DRD_PC_STRUCT(drd_pc_des_scatter) {
  uint T, E, kmax;
};

/* Grouped GEMM over M tiles of one expert each: out[row, n] for n in [n_base, n_end).
 * gate/up (GEMM1): A rows are b rows gathered through pair_tok, N = dff, K = d, output
 * h = SiLU(A Wg^T) * (A Wu^T). down (GEMM2): A = h rows, N = d, K = dff, output y = A Wd^T.
 * Weight element (e, n, k) is at w_off + e * w_estride + (n - n_base) * K + k of its
 * binding, e the tile's expert when expert == DRD_DES_NONE (one dispatch, the whole tensor
 * bound) and 0 otherwise (one dispatch per expert and weight chunk, that chunk bound). */
DRD_PC_STRUCT(drd_pc_des_gemm) {
  uint N, K;
  uint expert;     /* DRD_DES_NONE: tile_expert[] says; else this expert's tiles only */
  uint n_base;     /* first output column the bound weight range holds */
  uint n_end;      /* one past the last */
  uint w_off;      /* element offset of (expert 0 or this expert, n_base, 0) in the gate/down binding */
  uint w2_off;     /* the same in the up binding (GEMM1) */
  uint w_estride;  /* elements from one expert to the next (whole-tensor binding), else 0 */
  uint a_off;      /* element offset of b[0, 0] in its binding (GEMM1) */
};

/* out[t, c] (+)= sum over slots (in slot order) of w[t, s] * y[pos[t, s], c]. */
DRD_PC_STRUCT(drd_pc_des_combine) {
  uint T, d, kmax;
  uint o_off;      /* element offset of out[0, 0] in its binding */
  uint accumulate; /* nonzero: out += the sum (out + sum, one f32 add) */
};

#endif
