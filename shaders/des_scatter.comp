#version 450
// DES scatter: the (token, slot) pairs of expert e go to seg_off[e] + (pairs of e in earlier
// blocks) + (pairs of e among earlier tokens of this block). A token chooses an expert at
// most once, so that is ascending token order inside every segment, computed by counting
// rather than by atomics: the layout, and everything after it, is the same on every run.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "des_common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint TB = 64; // tokens per block, as in des_route

layout(std430, binding = 0) readonly buffer S_ { uint sel[]; };        // [T, kmax]
layout(std430, binding = 1) readonly buffer Blk_ { uint blk[]; };      // [n_blocks, E] exclusive
layout(std430, binding = 2) readonly buffer Off_ { uint seg_off[]; };  // [E + 1]
layout(std430, binding = 3) writeonly buffer Tok_ { uint pair_tok[]; }; // [rows] token
layout(std430, binding = 4) writeonly buffer Pos_ { uint pos[]; };     // [T, kmax] row or NONE
layout(push_constant) uniform Push { drd_pc_des_scatter pc; };

// Ranks by counting, all of a token's choices (SC at a time) in one pass over the block's
// earlier entries: a token chooses an expert at most once and pads its slots with NONE, which
// is never a choice, so the entries equal to e among tokens t0 .. t - 1 (every slot) are the
// earlier tokens that chose e. The count has no branch on the loaded values, and LU entries
// are loaded before any is compared, so their loads are in flight together (one behind each
// trip of a loop's branch would wait for the previous one: des_logits.glsl).
const uint SC = 4, LU = 8;

void main() {
  const uint b = gl_WorkGroupID.x;
  const uint t = b * TB + gl_LocalInvocationID.x;
  if (t >= pc.T) return;
  const uint km = pc.kmax, x0 = b * TB * km, x1 = t * km; // the block's first entry, t's first
  for (uint s0 = 0; s0 < km; s0 += SC) {
    uint e[SC], rank[SC];
    [[unroll]] for (uint i = 0; i < SC; i++) {
      e[i] = s0 + i < km ? sel[x1 + s0 + i] : DRD_DES_NONE;
      rank[i] = 0u;
    }
    for (uint x = x0; x < x1; x += LU) {
      uint f[LU];
      [[unroll]] for (uint j = 0; j < LU; j++) f[j] = sel[min(x + j, x1 - 1u)];
      [[unroll]] for (uint j = 0; j < LU; j++)
        [[unroll]] for (uint i = 0; i < SC; i++) rank[i] += uint(x + j < x1 && f[j] == e[i]);
    }
    [[unroll]] for (uint i = 0; i < SC; i++) {
      const uint s = s0 + i;
      if (s >= km) break;
      if (e[i] == DRD_DES_NONE) {
        pos[x1 + s] = DRD_DES_NONE;
        continue;
      }
      uint r = seg_off[e[i]] + blk[b * pc.E + e[i]] + rank[i];
      pair_tok[r] = t;
      pos[x1 + s] = r;
    }
  }
}
