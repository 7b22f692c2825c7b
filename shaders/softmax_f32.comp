#version 450
// Numerically stable softmax over rows: out[r, c] = exp(x[r, c] - m) / sum_c exp(x[r, c] - m)
// with m the row maximum, so no exp overflows. One workgroup per row, three sweeps (max, sum,
// write) that recompute exp instead of storing it: rows are re-read from cache. The same
// invocation reads and writes an element (out may alias x).
#extension GL_GOOGLE_include_directive : require
#include "push_constants.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256; // a power of two

layout(std430, binding = 0) readonly buffer X { float x[]; };  // [rows, cols] f32 (from x_off)
layout(std430, binding = 1) writeonly buffer O { float o[]; }; // [rows, cols] f32 (from o_off)
layout(push_constant) uniform Push { drd_pc_rows pc; };

shared float red_buf[WG];
#include "row_reduce.glsl"

void main() {
  uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
  if (row >= pc.rows) return; // uniform per workgroup
  uint lid = gl_LocalInvocationID.x;
  uint xb = pc.x_off + row * pc.cols, ob = pc.o_off + row * pc.cols;
  float m = uintBitsToFloat(0xff800000u); // -inf: invocations past the row end hold no element
  for (uint c = lid; c < pc.cols; c += WG) m = max(m, x[xb + c]);
  m = wg_reduce_max(m);
  float s = 0.0;
  for (uint c = lid; c < pc.cols; c += WG) s += exp(x[xb + c] - m);
  s = wg_reduce_sum(s);
  float inv = 1.0 / s;
  for (uint c = lid; c < pc.cols; c += WG) o[ob + c] = exp(x[xb + c] - m) * inv;
}
