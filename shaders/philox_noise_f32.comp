#version 450
// Gaussian noise of SPEC 9: element f of the flat [N, de] state is Box-Muller of the Philox
// words of pair j = f >> 1 (counter (j lo, j hi, 0, 0), key = the seed's two words):
// u1 = ((r0 >> 8) + 1) 2^-24, u2 = (r1 >> 8) 2^-24 (both exact in f32), R = sqrt(-2 ln u1),
// element 2j = R cos(2 pi u2), 2j + 1 = R sin(2 pi u2). One invocation per element (the
// pair's Philox block is computed twice, which costs less than the bookkeeping of pairs
// across chunk edges). ln and sin/cos come from sampler_math.glsl, all in f32. The seed is
// read from a buffer, not from the push constants, so that a generation's recorded command
// buffer serves every seed (the host writes it into host-visible memory before submitting).
#extension GL_GOOGLE_include_directive : require
#include "pc_sampler.h"
#include "philox.glsl"
#include "sampler_math.glsl"

layout(local_size_x_id = 0) in;
layout(std430, binding = 0) writeonly buffer X { float x[]; }; // [n] f32 from x_off
layout(std430, binding = 1) readonly buffer Seed { uint seed[2]; }; // low word, high word
layout(push_constant) uniform Push { drd_pc_philox pc; };

void main() {
  uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= pc.n) return;
  uint carry;
  uint f_lo = uaddCarry(pc.f0_lo, i, carry);
  uint f_hi = pc.f0_hi + carry;
  // j = f >> 1 as 64 bits
  uint j_lo = (f_lo >> 1) | (f_hi << 31), j_hi = f_hi >> 1;
  uvec4 r = philox4x32_10(uvec4(j_lo, j_hi, 0u, 0u), uvec2(seed[0], seed[1]));
  float u1 = float((r.x >> 8) + 1u) * (1.0 / 16777216.0);
  float u2 = float(r.y >> 8) * (1.0 / 16777216.0);
  float radius = sqrt(-2.0 * log_f32(u1));
  vec2 cs = sincos_turns(u2);
  x[pc.x_off + i] = radius * ((f_lo & 1u) == 0u ? cs.x : cs.y);
}
