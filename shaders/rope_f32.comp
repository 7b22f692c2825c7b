#version 450
// Rotate-half (NeoX) RoPE, SPEC section 4: for position n and pair i < n_pairs,
// (x_i, x_{i+n_pairs}) <- (x_i cos - x_{i+n_pairs} sin, x_i sin + x_{i+n_pairs} cos), angle n * f_i.
// One invocation per (row, head, pair). cos and sin come from the session's table (the host's
// f64 values rounded to f32, drd_rope_table): the angle is never formed in f32, where at
// n ~ 7e4 its rounding alone would be ~4e-3 rad.
// Out may alias x: each invocation reads its two elements before writing them.
#extension GL_GOOGLE_include_directive : require
#include "pc_attention.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;

layout(std430, binding = 0) readonly buffer X { float x[]; };  // [rows, heads * 2 * n_pairs] f32 (from x_off)
layout(std430, binding = 1) writeonly buffer O { float o[]; }; // [rows, heads * 2 * n_pairs] f32 (from o_off)
layout(std430, binding = 2) readonly buffer T { float tab[]; }; // [rows, 2, n_pairs]: cosines, then sines (from t_off)
layout(push_constant) uniform Push { drd_pc_rope pc; };

void main() {
  uint idx = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * WG;
  if (idx >= pc.rows * pc.heads * pc.n_pairs) return;
  uint i = idx % pc.n_pairs;
  uint rh = idx / pc.n_pairs;
  uint h = rh % pc.heads;
  uint r = rh / pc.heads;
  uint t = pc.t_off + r * 2u * pc.n_pairs + i;
  float c = tab[t], s = tab[t + pc.n_pairs];
  uint base = (r * pc.heads + h) * 2u * pc.n_pairs + i;
  float a = x[pc.x_off + base], b = x[pc.x_off + base + pc.n_pairs];
  o[pc.o_off + base] = a * c - b * s;
  o[pc.o_off + base + pc.n_pairs] = a * s + b * c;
}
