#version 450
// The raw Philox4x32-10 words of blocks j0 + i (counter (j lo, j hi, 0, 0), key = the seed's
// words), four per block: what philox_noise_f32.comp consumes, exposed so that tests can
// compare the integer stream with host/philox.c bit for bit.
#extension GL_GOOGLE_include_directive : require
#include "pc_sampler.h"
#include "philox.glsl"

layout(local_size_x_id = 0) in;
layout(std430, binding = 0) writeonly buffer W { uvec4 w[]; }; // [n, 4] uint32
layout(push_constant) uniform Push { drd_pc_philox pc; };    // f0 = j0 here; x_off in uvec4s

void main() {
  uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= pc.n) return;
  uint carry;
  uint j_lo = uaddCarry(pc.f0_lo, i, carry);
  w[pc.x_off + i] = philox4x32_10(uvec4(j_lo, pc.f0_hi + carry, 0u, 0u), uvec2(pc.seed_lo, pc.seed_hi));
}
