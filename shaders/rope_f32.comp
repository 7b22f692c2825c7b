#version 450
// Rotate-half (NeoX) RoPE, SPEC section 4: for position n and pair i < n_pairs,
// (x_i, x_{i+n_pairs}) <- (x_i cos - x_{i+n_pairs} sin, x_i sin + x_{i+n_pairs} cos), angle n * f_i.
// One invocation per (row, head, pair). The angle is never formed in f32: at n ~ 7e4 its f32
// rounding alone would be ~4e-3 rad. Instead n = k0 + 256 k1 + 65536 k2 and the rotation is
// the product of three unit complex numbers looked up in a table the host computed in f64
// ({cos, sin}(k * 256^l * f_i)), so the error stays at a few f32 ulps for any n < 2^24.
// Out may alias x: each invocation reads its two elements before writing them.
#extension GL_GOOGLE_include_directive : require
#include "pc_attention.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;

layout(std430, binding = 0) readonly buffer X { float x[]; };  // [rows, heads * 2 * n_pairs] f32 (from x_off)
layout(std430, binding = 1) writeonly buffer O { float o[]; }; // [rows, heads * 2 * n_pairs] f32 (from o_off)
layout(std430, binding = 2) readonly buffer T { vec2 tab[]; }; // [3, n_pairs, 256] (cos, sin) f32
layout(push_constant) uniform Push { drd_pc_rope pc; };

vec2 cmul(vec2 a, vec2 b) { return vec2(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x); }

void main() {
  uint idx = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * WG;
  if (idx >= pc.rows * pc.heads * pc.n_pairs) return;
  uint i = idx % pc.n_pairs;
  uint rh = idx / pc.n_pairs;
  uint h = rh % pc.heads;
  uint r = rh / pc.heads;
  uint n = pc.pos0 + r;
  vec2 e0 = tab[i * 256u + (n & 255u)];
  vec2 e1 = tab[(pc.n_pairs + i) * 256u + ((n >> 8) & 255u)];
  vec2 e2 = tab[(2u * pc.n_pairs + i) * 256u + ((n >> 16) & 255u)];
  vec2 cs = cmul(cmul(e0, e1), e2);
  uint base = (r * pc.heads + h) * 2u * pc.n_pairs + i;
  float a = x[pc.x_off + base], b = x[pc.x_off + base + pc.n_pairs];
  o[pc.o_off + base] = a * cs.x - b * cs.y;
  o[pc.o_off + base + pc.n_pairs] = a * cs.y + b * cs.x;
}
