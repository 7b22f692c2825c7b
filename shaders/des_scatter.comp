#version 450
// DES scatter: the (token, slot) pairs of expert e go to seg_off[e] + (pairs of e in earlier
// blocks) + (pairs of e among earlier tokens of this block). A token chooses an expert at
// most once, so that is ascending token order inside every segment, computed by counting
// rather than by atomics: the layout, and everything after it, is the same on every run.
#extension GL_GOOGLE_include_directive : require
#include "des_common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint TB = 64; // tokens per block, as in des_route

layout(std430, binding = 0) readonly buffer S_ { uint sel[]; };        // [T, kmax]
layout(std430, binding = 1) readonly buffer Blk_ { uint blk[]; };      // [n_blocks, E] exclusive
layout(std430, binding = 2) readonly buffer Off_ { uint seg_off[]; };  // [E + 1]
layout(std430, binding = 3) writeonly buffer Tok_ { uint pair_tok[]; }; // [rows] token
layout(std430, binding = 4) writeonly buffer Pos_ { uint pos[]; };     // [T, kmax] row or NONE
layout(push_constant) uniform Push { drd_pc_des_scatter pc; };

void main() {
  const uint b = gl_WorkGroupID.x;
  const uint t = b * TB + gl_LocalInvocationID.x;
  if (t >= pc.T) return;
  const uint km = pc.kmax, t0 = b * TB;
  for (uint s = 0; s < km; s++) {
    uint e = sel[t * km + s];
    if (e == DRD_DES_NONE) {
      pos[t * km + s] = DRD_DES_NONE;
      continue;
    }
    uint rank = 0;
    for (uint u = t0; u < t; u++)
      for (uint j = 0; j < km; j++) {
        uint f = sel[u * km + j];
        if (f == DRD_DES_NONE) break;
        if (f == e) rank++;
      }
    uint r = seg_off[e] + blk[b * pc.E + e] + rank;
    pair_tok[r] = t;
    pos[t * km + s] = r;
  }
}
