#version 450
// One DPM-Solver++ update (SPEC 8) in the form host/solver.h plans it:
//   x <- cx x + cd0 D0 + cd1 D1 + cd2 D2, the D terms past ORDER not read.
// Evaluated in f32 as r = cx * x, then r = fma(cd_k, D_k, r) for k = 0, 1, 2 in that order
// (the host's summation order; fma or mul + add, as the device's fma() does it). The D
// bindings are separate so that the engine rotates the history (D_{i-1}, D_{i-2}, D_{i-3})
// by binding different buffers per recorded step, never by copying.
#extension GL_GOOGLE_include_directive : require
#include "pc_sampler.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint ORDER = 1;

layout(std430, binding = 0) buffer Xb { float x[]; };             // [n] f32 from x_off
layout(std430, binding = 1) readonly buffer D0b { float d0[]; };  // [n] f32: D_{i-1}
layout(std430, binding = 2) readonly buffer D1b { float d1[]; };  // [n] f32: D_{i-2} (ORDER >= 2)
layout(std430, binding = 3) readonly buffer D2b { float d2[]; };  // [n] f32: D_{i-3} (ORDER >= 3)
layout(push_constant) uniform Push { drd_pc_solver pc; };

void main() {
  uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= pc.n) return;
  float r = pc.cx * x[pc.x_off + i];
  r = fma(pc.cd0, d0[pc.d0_off + i], r);
  if (ORDER >= 2) r = fma(pc.cd1, d1[pc.d1_off + i], r);
  if (ORDER >= 3) r = fma(pc.cd2, d2[pc.d2_off + i], r);
  x[pc.x_off + i] = r;
}
