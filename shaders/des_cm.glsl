// DES grouped GEMMs on cooperative matrices (des_gemm{1,2}_cm.comp; see des_common.glsl for
// the scalar kernels and ops_des.h for the pipeline). The including file defines
// DES_GEMM_MODE: 1 = gate/up with the SwiGLU epilogue, 2 = down projection. f16 weights
// through 16-bit storage only; the gathered b rows are rounded to f16 on their way to shared
// memory (cm_gemm.glsl), accumulation is f32. h is stored as f16: the down GEMM would round
// it to f16 anyway, so this halves its traffic without changing a bit of the result. y is
// stored as f16 too (rounded once, read by the combine): half the traffic of the down GEMM's
// stores and of the combine's loads, and half the scratch. One workgroup computes BM x BN of one
// expert's tile, exactly as the scalar kernels lay tiles out (same bindings, push constants
// and indirect dispatch).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_16bit_storage : require
#include "pc_des.h"
#if DES_GEMM_MODE == 1
#define CM_DUAL
#endif
#define CM_DIRECT

// A: mode 1 b [T, d] f32 from a_off (rows gathered through pair_tok); mode 2 h [rows, dff] f16
// (mode 1 with A16: an f16 copy of b)
layout(std430, binding = 0) readonly buffer A_ { float a_mat[]; };
layout(std430, binding = 0) readonly buffer A4_ { vec4 a_mat4[]; };
layout(std430, binding = 0) readonly buffer Ah_ { float16_t a_math[]; };
layout(std430, binding = 0) readonly buffer Ah8_ { uvec4 a_math8[]; };
layout(std430, binding = 1) readonly buffer Tok_ { uint pair_tok[]; };      // [rows] token or NONE
layout(std430, binding = 2) readonly buffer TileE_ { uint tile_expert[]; }; // [tiles] expert
layout(std430, binding = 3) readonly buffer Off_ { uint seg_off[]; };       // [E + 1] padded offsets
layout(std430, binding = 4) readonly buffer W1_ { float16_t w1[]; };  // gate [E, dff, d] / down [E, d, dff], or a chunk
layout(std430, binding = 4) readonly buffer W1v_ { uvec4 w1v[]; };
layout(std430, binding = 5) readonly buffer W2_ { float16_t w2[]; };  // up [E, dff, d] (mode 1); mode 2 ignores it
layout(std430, binding = 5) readonly buffer W2v_ { uvec4 w2v[]; };
#if DES_GEMM_MODE == 1
layout(std430, binding = 6) writeonly buffer O_ { float16_t o_mat[]; }; // h [rows, N] f16
layout(std430, binding = 6) writeonly buffer O4_ { f16vec4 o_mat4[]; };
#else
layout(std430, binding = 6) writeonly buffer O_ { float16_t o_mat[]; }; // y [rows, N] f16
layout(std430, binding = 6) writeonly buffer O4_ { f16vec4 o_mat4[]; };
#endif
layout(push_constant) uniform Push { drd_pc_des_gemm pc; };

#include "cm_gemm.glsl"
layout(constant_id = 10) const bool A16_SPEC = false; // mode 1: b given as f16
const bool A16 = DES_GEMM_MODE == 2 || A16_SPEC;      // h is always f16

#if DES_GEMM_MODE == 1
shared uint tok_s[BM]; // token of each tile row, DRD_DES_NONE for padding
#endif
uint row0, n0, wb1, wb2;
#include "des_tile.glsl"

// VEC: K is a multiple of 8 and every element offset aligned, so k .. k+7 (k < K) are whole
// 16-byte vectors; otherwise element by element, 0 past K.
uvec4 cm_load_a(uint m, uint k) {
  bool row_ok;
  uint base = des_a_row(m, row_ok);
  if (!row_ok) return uvec4(0);
  if (VEC) {
    if (k >= pc.K) return uvec4(0);
    uint i = base + k;
    return A16 ? a_math8[i >> 3] : cm_pack8(a_mat4[i >> 2], a_mat4[(i >> 2) + 1]);
  }
  vec4 v[2];
  [[unroll]] for (uint i = 0; i < 8; i++) {
    uint e = k + i < pc.K ? base + k + i : base;
    float x = A16 ? float(a_math[e]) : a_mat[e];
    v[i / 4][i % 4] = k + i < pc.K ? x : 0.0;
  }
  return cm_pack8(v[0], v[1]);
}

// weight row n0 + n of the bound range, elements k .. k+7, from binding 4 (second = false)
// or 5; columns past n_end read the last valid row and are never written
uvec4 load_w(bool second, uint n, uint k) {
  uint col = min(n0 + n, pc.n_end - 1u);
  uint base = (second ? wb2 : wb1) + (col - pc.n_base) * pc.K;
  if (VEC) {
    if (k >= pc.K) return uvec4(0);
    return second ? w2v[(base + k) >> 3] : w1v[(base + k) >> 3];
  }
  vec4 v[2];
  [[unroll]] for (uint i = 0; i < 8; i++) {
    uint e = k + i < pc.K ? base + k + i : base;
    float x = float(second ? w2[e] : w1[e]);
    v[i / 4][i % 4] = k + i < pc.K ? x : 0.0;
  }
  return cm_pack8(v[0], v[1]);
}

uvec4 cm_load_b(uint n, uint k) { return load_w(false, n, k); }

// Whether the tile's columns all lie before n_end, at places where 4 of them are one aligned
// vector, so that cm_put4 may store 4 at a time (the same for the whole workgroup).
bool des_whole() { return n0 + BN <= pc.n_end && pc.N % 4u == 0 && n0 % 4u == 0; }

#if DES_GEMM_MODE == 1
uvec4 cm_load_b2(uint n, uint k) { return load_w(true, n, k); }

// h = SiLU(gate) * up, element by element on the accumulators (padding rows: 0), in f32 as the
// scalar kernels compute it; rounded to f16 when stored
CM_C cm_combine(CM_C g, CM_C u) {
  for (int i = 0; i < g.length(); i++) g[i] = g[i] / (1.0 + exp(-g[i])) * u[i];
  return g;
}
#endif

void cm_emit(uint m, uint n, float v) {
  if (n0 + n < pc.n_end) o_mat[(row0 + m) * pc.N + n0 + n] = float16_t(v);
}

bool cm_whole() { return des_whole(); }

void cm_pre4(uint m, uint n, out vec4 p, out vec4 p2) { p = p2 = vec4(0.0); } // nothing to load

void cm_put4(uint m, uint n, vec4 v, vec4 p, vec4 p2) { o_mat4[((row0 + m) * pc.N + n0 + n) / 4u] = f16vec4(v); }

void main() {
  if (!des_tile_begin()) return;
  cm_gemm_tile(pc.K);
}
