#version 450
// Picks the rounding winner among the vocabulary splits of round_argmax_f32.comp: the
// largest value, ties to the lowest id; a row whose logits were all NaN gets token 0 (as the
// host reference, whose running maximum starts at -inf with token 0).
#extension GL_GOOGLE_include_directive : require
#include "pc_sampler.h"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer St { float st[]; }; // [rows, n_splits, 2] from s_off
layout(std430, binding = 1) writeonly buffer Tok { int tok[]; }; // [rows] int32 from d_off
layout(push_constant) uniform Push { drd_pc_sas_merge pc; };

const uint NONE = 0xffffffffu;

void main() {
  uint r = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (r >= pc.rows) return;
  float best = 0.0;
  uint id = NONE;
  for (uint s = 0; s < pc.n_splits; s++) {
    uint b = pc.s_off + (r * pc.n_splits + s) * 2;
    float v = st[b];
    uint k = floatBitsToUint(st[b + 1]);
    if (k != NONE && (id == NONE || v > best || (v == best && k < id))) {
      best = v;
      id = k;
    }
  }
  tok[pc.d_off + r] = id == NONE ? 0 : int(id);
}
