#version 450
// DES combine: out[t, c] = sum over the token's slots, in slot order, of w[t, s] * y[pos, c];
// with pc.accumulate, out[t, c] += that sum (the residual connection, the f32 add an
// eltwise add of the plain result would do, without its extra pass).
// One invocation per output element and a fixed order: no float atomics, the same bits on
// every run.
#extension GL_GOOGLE_include_directive : require
#include "des_common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;

layout(std430, binding = 0) readonly buffer Y_ { float y[]; };      // [rows, d] f32
layout(std430, binding = 1) readonly buffer W_ { float wts[]; };    // [T, kmax] f32
layout(std430, binding = 2) readonly buffer Pos_ { uint pos[]; };   // [T, kmax] row or NONE
layout(std430, binding = 3) buffer O_ { float o[]; };               // [T, d] f32 from o_off
layout(push_constant) uniform Push { drd_pc_des_combine pc; };

void main() {
  uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * WG;
  if (i >= pc.T * pc.d) return;
  uint t = i / pc.d, c = i % pc.d;
  float acc = 0.0;
  for (uint s = 0; s < pc.kmax; s++) {
    uint r = pos[t * pc.kmax + s];
    if (r == DRD_DES_NONE) break;
    acc += wts[t * pc.kmax + s] * y[r * pc.d + c];
  }
  if (pc.accumulate != 0u) acc = o[pc.o_off + i] + acc;
  o[pc.o_off + i] = acc;
}
