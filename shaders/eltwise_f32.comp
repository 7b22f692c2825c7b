#version 450
// Element-wise ops on f32 vectors; the op is a specialization constant so each becomes
// its own branch-free pipeline. Unary ops ignore `b` (the runtime binds `a` there).
#extension GL_GOOGLE_include_directive : require
#include "push_constants.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint OP = 0; // 0 add, 1 mul, 2 scale, 3 silu, 4 swiglu (silu(a)*b)

layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) writeonly buffer O { float o[]; };
layout(push_constant) uniform Push { drd_pc_eltwise pc; };

float silu(float x) { return x / (1.0 + exp(-x)); }

void main() {
  uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= pc.n) return;
  float x = a[i];
  float r;
  if (OP == 0) r = x + b[i];
  else if (OP == 1) r = x * b[i];
  else if (OP == 2) r = pc.alpha * x;
  else if (OP == 3) r = silu(x);
  else r = silu(x) * b[i];
  o[i] = r;
}
