#version 450
// Prompt clamp (SPEC 8): rows n < P of the state x <- token_embd[prompt[n]]. One invocation
// per element; the dispatch covers the vocabulary range [v_first, v_first + v_count) that E's
// binding holds (large embeddings are bound in ranges), and rows whose id lies elsewhere are
// left to the other dispatches. Ids outside [0, V) are never in any range: such rows stay
// unchanged (the host validates prompts).
#extension GL_GOOGLE_include_directive : require
#include "pc_sampler.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint ETYPE = DRD_SAMPLER_E_F32;

layout(std430, binding = 0) readonly buffer Emb { uint e_words[]; }; // [V, de] f32, or f16 pairs
layout(std430, binding = 1) readonly buffer Ids { int ids[]; };     // [P] int32 from id_off
layout(std430, binding = 2) writeonly buffer X { float x[]; };      // [P, de] f32 from x_off
layout(push_constant) uniform Push { drd_pc_clamp pc; };

float e_load(uint i) {
  if (ETYPE == DRD_SAMPLER_E_F32) return uintBitsToFloat(e_words[i]);
  return unpackHalf2x16(e_words[i >> 1])[i & 1u];
}

void main() {
  uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= pc.rows * pc.de) return;
  uint r = i / pc.de, c = i - r * pc.de;
  uint v = uint(ids[pc.id_off + r]) - pc.v_first; // negative ids wrap far out of range
  if (v < pc.v_count) x[pc.x_off + i] = e_load(pc.e_off + v * pc.de + c);
}
