/* Push-constant layouts of the sampler kernels (SAS soft absorption, rounding, the
 * DPM-Solver++ update, prompt clamp, Philox noise, time features), shared by
 * runtime/ops_sampler.c and the shaders. Scalar 32-bit members only, so the C layout and
 * GLSL's std430 push-constant layout agree byte for byte (same trick as push_constants.h).
 * In GLSL: layout(push_constant) uniform Push { drd_pc_x pc; }; */
#ifndef DRD_PC_SAMPLER_H
#define DRD_PC_SAMPLER_H

#ifdef __STDC_VERSION__ /* C, not GLSL */
#include <stdint.h>
typedef uint32_t uint;
#define DRD_PCS_STRUCT(name) typedef struct name name; struct name
#else
#define DRD_PCS_STRUCT(name) struct name
#endif

/* Token-embedding storage, a specialization constant of every kernel that reads E: E is
 * always bound as 32-bit words, f16 pairs unpacked with unpackHalf2x16 (core GLSL), so no
 * 16-bit storage feature is needed and DRDIFF_DISABLE_F16 changes nothing. */
#define DRD_SAMPLER_E_F32 0u
#define DRD_SAMPLER_E_F16 1u

/* One dispatch of the vocabulary-streaming kernels (sas_absorb, round_argmax) over a chunk
 * of `rows` query rows and `n_splits` vocabulary splits of `split_len` entries each
 * (the last one shorter: it ends at v_count). Workgroup (x, y) = (row block, split).
 * Offsets are in elements of each binding (E: f32 or f16 elements). */
DRD_PCS_STRUCT(drd_pc_sas) {
  uint rows;        /* query rows in this chunk */
  uint v_count;     /* vocabulary entries covered by this dispatch's E binding */
  uint split_len;   /* vocabulary entries per split (a multiple of the tile) */
  uint split_first; /* index of this dispatch's first split among all splits of the op */
  uint n_splits;    /* splits of the whole op (scratch row stride is n_splits states) */
  uint e_off;       /* element offset of vocabulary entry 0 of this dispatch inside E's binding */
  uint d_off;       /* element offset of row 0 inside the D / x binding */
  uint s_off;       /* element offset of row 0's states inside the scratch binding */
  uint t_off;       /* round: element offset of row 0 inside the tokens binding */
  uint direct;      /* 1: one split covers the vocabulary: write D / tokens, no scratch */
  float inv_tau;    /* absorb: 1 / tau */
  float gamma;      /* absorb */
};

/* One (row, split) state of SAS absorption in the scratch: m, l, two unused floats, then the
 * de accumulators padded to a multiple of 4, so that with 16-byte aligned offsets every state
 * and its accumulators start on a vec4 (the CPU-device kernel stores them 4 at a time: each
 * scalar store costs Mesa 22.3's lavapipe a loop over the lanes, in run and compile time). */
#define DRD_SAS_STATE_FLOATS(de) (4u + ((de) + 3u) / 4u * 4u)
#define DRD_SAS_STATE_ACC 4u /* the accumulators' offset inside a state */

/* The merge of per-split states (sas_merge, round_merge) for a chunk of rows. */
DRD_PCS_STRUCT(drd_pc_sas_merge) {
  uint rows;
  uint n_splits;
  uint d_off;   /* absorb: D; round: tokens */
  uint s_off;
  float gamma;  /* absorb */
};

/* x <- cx x + cd0 D0 + cd1 D1 + cd2 D2 over n elements (order terms of D). */
DRD_PCS_STRUCT(drd_pc_solver) {
  uint n;
  uint x_off, d0_off, d1_off, d2_off; /* element offsets inside each binding */
  float cx, cd0, cd1, cd2;
};

/* Rows r < rows of x (row_first.. of the prompt) <- E[ids[r]] when ids[r] is inside this
 * dispatch's vocabulary range [v_first, v_first + v_count). */
DRD_PCS_STRUCT(drd_pc_clamp) {
  uint rows, de;
  uint v_first, v_count;
  uint e_off, x_off, id_off;
};

/* Noise elements f0 + i for i < n of the flat [N, de] array (SPEC 9): pair j = f >> 1,
 * element 2j the cosine, 2j+1 the sine. f0 and the seed are 64-bit, as two words each.
 * Philox words take the seed from seed_lo / seed_hi; the noise reads it from a buffer. */
DRD_PCS_STRUCT(drd_pc_philox) {
  uint n;
  uint x_off; /* element offset of x[0] inside the binding */
  uint f0_lo, f0_hi;
  uint seed_lo, seed_hi;
};

/* Sinusoidal time features: s[i] = cos(2 pi t' phi_i), s[half + i] = sin(2 pi t' phi_i) with
 * t' = t / (2 pi) and phi_i = r^i, both given as unevaluated sums hi + lo of two floats
 * (double-float) so the angle is exact to ~1e-11 turns without f64 in the shader. */
DRD_PCS_STRUCT(drd_pc_time) {
  uint half_dt;
  uint s_off;
  float tt_hi, tt_lo; /* t / (2 pi) */
  float r_hi, r_lo;   /* 10000^(-1/half) */
};

#endif
