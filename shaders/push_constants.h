/* Push-constant layouts shared by the C runtime and the GLSL shaders: one struct per
 * kernel, scalar 32-bit members only, so C and std430 layouts agree byte for byte.
 * In GLSL: layout(push_constant) uniform Push { drd_pc_x pc; }; */
#ifndef DRD_PUSH_CONSTANTS_H
#define DRD_PUSH_CONSTANTS_H

#ifdef __STDC_VERSION__ /* C, not GLSL */
#include <stdint.h>
typedef uint32_t uint;
#define DRD_PC_STRUCT(name) typedef struct name name; struct name
#else
#define DRD_PC_STRUCT(name) struct name
#endif

/* out[i] = op(a[i], b[i]) for i < n; alpha for scale */
DRD_PC_STRUCT(drd_pc_eltwise) {
  uint n;
  float alpha;
};

/* out[i] = element i of Q8_0 blocks, i < n; the first block at byte in_byte of the bound range */
DRD_PC_STRUCT(drd_pc_dequant) {
  uint n;
  uint in_byte;
};

/* Row ops (RMSNorm, softmax) on [rows, cols] f32. x_off / o_off / h_off: element offsets of
 * row 0 inside the bound ranges (bindings start at an aligned byte offset at or before it). */
DRD_PC_STRUCT(drd_pc_rows) {
  uint rows;
  uint cols;
  uint x_off;
  uint o_off;
  float eps;  /* RMSNorm only */
  uint h_off; /* rmsnorm_f16: the f16 copy's */
  uint experts; /* rmsnorm_sg_router: the router's rows E (<= 8) */
};

/* GEMM tile of C[M, N] = A[M, K] W[N, K]^T (+ bias[N]). Offsets are in elements of each
 * binding's type (W: f32 or f16 elements, also for the packed-word f16 variant). */
#define DRD_GEMM_BIAS 1u       /* add bias[n] */
#define DRD_GEMM_ACCUMULATE 2u /* C += A W^T: later K chunks of a split-K (bias added by the first) */
DRD_PC_STRUCT(drd_pc_gemm) {
  uint M, N, K;   /* of this chunk */
  uint lda, ldw, ldc;
  uint a_off, w_off, c_off, bias_off;
  uint flags;     /* DRD_GEMM_BIAS | DRD_GEMM_ACCUMULATE */
  uint rope_off;  /* gemm_cm with RoPE: the chunk's first row in the table binding (floats) */
  float c_scale;  /* gemm_cm with f16 C: each value times this before it is rounded (else 1) */
};

#endif
