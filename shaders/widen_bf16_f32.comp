#version 450
// out[i] = f32 value of bf16 element i (its 16 bits are the f32's upper half, so exact), for the
// engine's BF16 layer weights, which stay 16-bit on the device and are widened into a scratch
// before each product (runtime/engine_session.c). Host reference: drd_tensor_to_f32.
#extension GL_GOOGLE_include_directive : require
#include "push_constants.h"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Q { uint q[]; };   // bf16 pairs, low half first
layout(std430, binding = 1) writeonly buffer O { float o[]; }; // [n] f32
layout(push_constant) uniform Push { drd_pc_eltwise pc; };

void main() {
  uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= pc.n) return;
  uint w = q[i >> 1];
  o[i] = uintBitsToFloat((i & 1u) != 0u ? w & 0xffff0000u : w << 16);
}
