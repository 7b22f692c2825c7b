#version 450
// GEMM C = A W^T (+ bias) on cooperative matrices: A [M, K] f32 rounded to f16 on its way to
// shared memory, W [N, K] f16, f32 accumulation (cm_gemm.glsl). Same bindings and push
// constants as gemm_f16.comp; drd_op_gemm picks it for f16 weights on devices with
// VK_KHR_cooperative_matrix.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_16bit_storage : require
#include "push_constants.h"

layout(std430, binding = 0) readonly buffer A { float a[]; };       // [M, lda] f32 from a_off
layout(std430, binding = 0) readonly buffer A4 { vec4 a4[]; };
layout(std430, binding = 1) readonly buffer W { float16_t w[]; };   // [N, ldw] f16 from w_off
layout(std430, binding = 1) readonly buffer W4 { f16vec4 w4[]; };
layout(std430, binding = 2) readonly buffer Bias { float bias[]; }; // [N] f32 from bias_off (a dummy without bias)
layout(std430, binding = 3) buffer C { float c[]; };                // [M, ldc] f32 from c_off
layout(push_constant) uniform Push { drd_pc_gemm pc; };

#include "cm_gemm.glsl"

uint m0, n0; // the tile's first row and column

// VEC4: K, lda, ldw and the offsets are multiples of 4, so k .. k+3 is one aligned vector
vec4 cm_load_a(uint m, uint k) {
  uint base = pc.a_off + min(m0 + m, pc.M - 1) * pc.lda; // rows past M are loaded, never stored
  if (VEC4) return k < pc.K ? a4[(base + k) >> 2] : vec4(0.0);
  vec4 v;
  [[unroll]] for (uint i = 0; i < 4; i++) v[i] = k + i < pc.K ? a[base + k + i] : 0.0;
  return v;
}

vec4 cm_load_b(uint n, uint k) {
  uint base = pc.w_off + min(n0 + n, pc.N - 1) * pc.ldw;
  if (VEC4) return k < pc.K ? vec4(w4[(base + k) >> 2]) : vec4(0.0);
  vec4 v;
  [[unroll]] for (uint i = 0; i < 4; i++) v[i] = k + i < pc.K ? float(w[base + k + i]) : 0.0;
  return v;
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
