#version 450
// GEMM C = A W^T (+ bias) on cooperative matrices: A [M, K] f32 rounded to f16 on its way to
// shared memory (or f16 already, A16), W [N, K] f16, f32 accumulation (cm_gemm.glsl). Same
// bindings and push constants as gemm_f16.comp; drd_op_gemm picks it for f16 weights on
// devices with VK_KHR_cooperative_matrix.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_16bit_storage : require
#include "push_constants.h"

layout(std430, binding = 0) readonly buffer A { float a[]; };       // [M, lda] f32 from a_off
layout(std430, binding = 0) readonly buffer A4 { vec4 a4[]; };
layout(std430, binding = 0) readonly buffer Ah { float16_t ah[]; }; // the same, f16 (A16)
layout(std430, binding = 0) readonly buffer Ah8 { uvec4 ah8[]; };
layout(std430, binding = 1) readonly buffer W { float16_t w[]; };   // [N, ldw] f16 from w_off
layout(std430, binding = 1) readonly buffer W8 { uvec4 w8[]; };
layout(std430, binding = 2) readonly buffer Bias { float bias[]; }; // [N] f32 from bias_off (a dummy without bias)
layout(std430, binding = 3) buffer C { float c[]; };                // [M, ldc] f32 from c_off
layout(push_constant) uniform Push { drd_pc_gemm pc; };

#include "cm_gemm.glsl"
layout(constant_id = 10) const bool A16 = false; // A holds f16

uint m0, n0; // the tile's first row and column

// VEC: K is a multiple of 8 and the offsets are aligned, so k .. k+7 (k < K) are whole
// 16-byte vectors; otherwise element by element, 0 past K.
uvec4 cm_load_a(uint m, uint k) {
  uint base = pc.a_off + min(m0 + m, pc.M - 1) * pc.lda; // rows past M are loaded, never stored
  if (VEC) {
    if (k >= pc.K) return uvec4(0);
    uint i = base + k;
    return A16 ? ah8[i >> 3] : cm_pack8(a4[i >> 2], a4[(i >> 2) + 1]);
  }
  vec4 v[2];
  [[unroll]] for (uint i = 0; i < 8; i++) {
    uint e = k + i < pc.K ? base + k + i : base;
    float x = A16 ? float(ah[e]) : a[e];
    v[i / 4][i % 4] = k + i < pc.K ? x : 0.0;
  }
  return cm_pack8(v[0], v[1]);
}

uvec4 cm_load_b(uint n, uint k) {
  uint base = pc.w_off + min(n0 + n, pc.N - 1) * pc.ldw;
  if (VEC) return k < pc.K ? w8[(base + k) >> 3] : uvec4(0);
  vec4 v[2];
  [[unroll]] for (uint i = 0; i < 8; i++) {
    float x = float(w[k + i < pc.K ? base + k + i : base]);
    v[i / 4][i % 4] = k + i < pc.K ? x : 0.0;
  }
  return cm_pack8(v[0], v[1]);
}

void cm_emit(uint m, uint n, float v) {
  m += m0, n += n0;
  if (m >= pc.M || n >= pc.N) return;
  if ((pc.flags & DRD_GEMM_BIAS) != 0) v += bias[pc.bias_off + n];
  uint ci = pc.c_off + m * pc.ldc + n;
  if ((pc.flags & DRD_GEMM_ACCUMULATE) != 0) v += c[ci];
  c[ci] = v;
}

void main() {
  m0 = gl_WorkGroupID.y * BM;
  n0 = gl_WorkGroupID.x * BN;
  cm_gemm_tile(pc.K);
}
