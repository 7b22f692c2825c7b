#version 450
// GEMM C = A W^T (+ bias) on cooperative matrices: A [M, K] f32 rounded to f16 on its way to
// shared memory (or f16 already, A16), W [N, K] f16, f32 accumulation (cm_gemm.glsl). The
// bindings and push constants of gemm_f16.comp, and a RoPE table: drd_op_gemm picks it for f16
// weights on devices with VK_KHR_cooperative_matrix. With ROPE_HALF > 0 the epilogue applies
// rotate-half RoPE to every head of 2 * ROPE_HALF columns (after the bias), as rope_f32.comp
// does, so the q and k projections need no pass of their own. With C16, C is f16: each sum
// rounded to nearest once (no ACCUMULATE), for readers that round it to f16 anyway (the
// cooperative-matrix attention's q, k and v; q multiplied by the attention's scale first).
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
layout(std430, binding = 3) buffer C4 { vec4 c4[]; };
// C's old values for ACCUMULATE through a read-only view: cm_pre4 loads them before the
// accumulator's trip through the scratch (each is read and then written by one invocation)
layout(std430, binding = 3) readonly buffer C4old { vec4 c4_old[]; };
layout(std430, binding = 3) writeonly buffer Ch { float16_t c16[]; };  // [M, ldc] f16 (C16)
layout(std430, binding = 3) writeonly buffer Ch4 { f16vec4 c16x4[]; };
// the chunk's rows of the session's RoPE table from rope_off: [M, 2, ROPE_HALF] f32, each
// position's cosines, then its sines (drd_rope_table; a dummy without RoPE)
layout(std430, binding = 4) readonly buffer RopeTab { float rope_tab[]; };
layout(std430, binding = 4) readonly buffer RopeTab4 { vec4 rope_tab4[]; };
layout(push_constant) uniform Push { drd_pc_gemm pc; };

#define CM_ROPE
#define CM_DIRECT
#include "cm_gemm.glsl"
layout(constant_id = 10) const bool A16 = false; // A holds f16
layout(constant_id = 12) const bool C16 = false; // C holds f16 (c_off, ldc in halves)

uint m0, n0; // the tile's first row and column

// C's element i / 4-element group i4, as f32 or, with C16, times c_scale and rounded to f16
// (the attention's q arrives so, scaled as that kernel would scale it)
void c_store(uint i, float v) {
  if (C16)
    c16[i] = float16_t(v * pc.c_scale);
  else
    c[i] = v;
}

void c_store4(uint i4, vec4 v) {
  if (C16)
    c16x4[i4] = f16vec4(v * pc.c_scale);
  else
    c4[i4] = v;
}

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
  c_store(ci, v);
}

// Whether the tile lies wholly inside C at 16-byte-aligned places (CN is a multiple of 8), so
// that cm_put4 may store 4 columns at a time. (With bias too: leaving biased tiles to cm_emit
// cost a 16384 x 1024 x 1024 product 27 % on an H200, 158 against 215 TFLOP/s.)
bool cm_whole() {
  return m0 + BM <= pc.M && n0 + BN <= pc.N && pc.c_off % 4u == 0 && pc.ldc % 4u == 0;
}

// bias of tile columns n .. n+3, element by element: bias_off need not be 16-byte aligned
vec4 cm_bias4(uint n) {
  const uint b = pc.bias_off + n0 + n;
  return vec4(bias[b], bias[b + 1u], bias[b + 2u], bias[b + 3u]);
}

// Columns n .. n+3 of tile row m, plus the bias and C's old values for ACCUMULATE, added in
// cm_emit's order (the same f32 sums).
uint cm_c4(uint m, uint n) { return (pc.c_off + (m0 + m) * pc.ldc + n0 + n) / 4u; }

void cm_pre4(uint m, uint n, out vec4 old, out vec4 b) {
  old = (pc.flags & DRD_GEMM_ACCUMULATE) != 0 ? c4_old[cm_c4(m, n)] : vec4(0.0);
  b = (pc.flags & DRD_GEMM_BIAS) != 0 ? cm_bias4(n) : vec4(0.0);
}

void cm_put4(uint m, uint n, vec4 v, vec4 old, vec4 b) {
  if ((pc.flags & DRD_GEMM_BIAS) != 0) v += b;
  if ((pc.flags & DRD_GEMM_ACCUMULATE) != 0) v += old;
  c_store4(cm_c4(m, n), v);
}

// Column n (tile-relative, in the first half of its head) and its partner n + ROPE_HALF, rotated
// by the angle of row m's position: the arithmetic of rope_f32.comp, on the sums with bias.
void cm_emit2(uint m, uint n, float x1, float x2) {
  m += m0, n += n0;
  const uint n2 = n + ROPE_HALF;
  if (m >= pc.M || n2 >= pc.N) return; // N is a whole number of heads
  if ((pc.flags & DRD_GEMM_BIAS) != 0) x1 += bias[pc.bias_off + n], x2 += bias[pc.bias_off + n2];
  const uint t = pc.rope_off + m * 2u * ROPE_HALF + n % (2u * ROPE_HALF);
  const float cs = rope_tab[t], sn = rope_tab[t + ROPE_HALF];
  const uint ci = pc.c_off + m * pc.ldc;
  c_store(ci + n, x1 * cs - x2 * sn);
  c_store(ci + n2, x1 * sn + x2 * cs);
}

// The RoPE pairs of a whole tile, 4 columns at a time: the table rows start 16-byte aligned
// where rope_off does (ROPE_HALF is a multiple of CN).
bool cm_whole2() { return cm_whole() && pc.rope_off % 4u == 0; }

uint cm_rope4(uint m, uint n) { return (pc.rope_off + (m0 + m) * 2u * ROPE_HALF + (n0 + n) % (2u * ROPE_HALF)) / 4u; }

void cm_pre4x2(uint m, uint n, out vec4 cs, out vec4 sn) {
  cs = rope_tab4[cm_rope4(m, n)];
  sn = rope_tab4[cm_rope4(m, n) + ROPE_HALF / 4u];
}

void cm_put4x2(uint m, uint n, vec4 x1, vec4 x2, vec4 cs, vec4 sn) {
  if ((pc.flags & DRD_GEMM_BIAS) != 0) x1 += cm_bias4(n), x2 += cm_bias4(n + ROPE_HALF);
  const uint ci = cm_c4(m, n);
  c_store4(ci, x1 * cs - x2 * sn);
  c_store4(ci + ROPE_HALF / 4u, x1 * sn + x2 * cs);
}

void main() {
  m0 = gl_WorkGroupID.y * BM;
  n0 = gl_WorkGroupID.x * BN;
  cm_gemm_tile(pc.K);
}
