#version 450
// out[i] = f16(x[i]): the f16 copy of an activation that the cooperative-matrix GEMMs read
// 16 bytes at a time (runtime/ops_eltwise.c, drd_op_to_f16). Round to nearest even.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_16bit_storage : require
#include "push_constants.h"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer X { float x[]; };       // [n] f32
layout(std430, binding = 1) writeonly buffer O { float16_t o[]; };  // [n] f16
layout(push_constant) uniform Push { drd_pc_eltwise pc; };

void main() {
  uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i < pc.n) o[i] = float16_t(x[i]);
}
