#version 450
// DES scan, one workgroup: turns the per-block expert histograms of the route kernel into
//   blk[b, e]      exclusive prefix over blocks (in place): where block b's pairs of expert e
//                  start inside e's segment, so the scatter is stable (ascending token);
//   counts[e]      pairs routed to expert e;
//   seg_off[e]     start of e's segment, every segment padded to a multiple of the tile
//                  height bm (seg_off[E] = rows of all tiles);
//   tile_expert[i] the expert of tile i (rows [i * bm, i * bm + bm));
//   pair_tok[r]    NONE for the padding rows of every segment;
//   args           the indirect workgroup counts of the grouped GEMMs (pc_des.h).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "des_common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256; // a power of two

layout(std430, binding = 0) buffer Blk_ { uint blk[]; };                  // [n_blocks, E]
layout(std430, binding = 1) writeonly buffer Cnt_ { uint counts[]; };      // [E]
layout(std430, binding = 2) writeonly buffer Off_ { uint seg_off[]; };     // [E + 1]
layout(std430, binding = 3) writeonly buffer TileE_ { uint tile_expert[]; }; // [max_tiles]
layout(std430, binding = 4) writeonly buffer Tok_ { uint pair_tok[]; };     // [max_tiles * bm]
layout(std430, binding = 5) writeonly buffer Args_ { uint args[]; };       // [2 + 2E][3]
layout(push_constant) uniform Push { drd_pc_des_scan pc; };

const uint EG = 8; // experts scanned together
shared uint s_scan[EG * WG]; // [expert of the group][block of the round]
shared uint s_cnt[256];
shared uint s_off[257];

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint E = pc.E, nb = pc.n_blocks, bm = pc.bm;

  // per expert: exclusive scan over the blocks, WG blocks at a time with a carry; EG experts
  // side by side, so that one ladder of barriers serves all of them
  for (uint e0 = 0; e0 < E; e0 += EG) {
    uint carry[EG];
    [[unroll]] for (uint i = 0; i < EG; i++) carry[i] = 0u;
    for (uint base = 0; base < nb; base += WG) {
      const uint b = base + tid;
      uint v[EG];
      [[unroll]] for (uint i = 0; i < EG; i++) v[i] = 0u;
      if (b < nb) // this invocation's own row; experts past E read its last entry, then count 0
        [[unroll]] for (uint i = 0; i < EG; i++) v[i] = blk[b * E + min(e0 + i, E - 1u)];
      [[unroll]] for (uint i = 0; i < EG; i++) {
        if (e0 + i >= E) v[i] = 0u;
        s_scan[i * WG + tid] = v[i];
      }
      barrier();
      for (uint st = 1; st < WG; st <<= 1) { // Hillis-Steele inclusive scan
        uint add[EG];
        [[unroll]] for (uint i = 0; i < EG; i++) add[i] = tid >= st ? s_scan[i * WG + tid - st] : 0u;
        barrier();
        [[unroll]] for (uint i = 0; i < EG; i++) s_scan[i * WG + tid] += add[i];
        barrier();
      }
      [[unroll]] for (uint i = 0; i < EG; i++) {
        if (b < nb && e0 + i < E) blk[b * E + e0 + i] = carry[i] + s_scan[i * WG + tid] - v[i];
        carry[i] += s_scan[i * WG + WG - 1];
      }
      barrier(); // s_scan is reused
    }
    if (tid == 0)
      [[unroll]] for (uint i = 0; i < EG; i++)
        if (e0 + i < E) s_cnt[e0 + i] = carry[i];
  }
  barrier();
  if (tid == 0) { // E <= 256 additions: not worth a parallel scan
    uint off = 0;
    for (uint e = 0; e < E; e++) {
      s_off[e] = off;
      off += (s_cnt[e] + bm - 1) / bm * bm;
    }
    s_off[E] = off;
  }
  barrier();
  const uint tiles = s_off[E] / bm;
  for (uint e = tid; e < E; e += WG) counts[e] = s_cnt[e];
  for (uint e = tid; e <= E; e += WG) seg_off[e] = s_off[e];
  for (uint i = tid; i < tiles && i < pc.max_tiles; i += WG) {
    // the last expert whose segment starts at or before the tile: empty segments before a
    // non-empty one share its start and are skipped because a later index wins
    uint row = i * bm, lo = 0, hi = E - 1;
    while (lo < hi) {
      uint mid = (lo + hi + 1) / 2;
      if (s_off[mid] <= row) lo = mid;
      else hi = mid - 1;
    }
    tile_expert[i] = lo;
  }
  for (uint e = 0; e < E; e++)
    for (uint r = s_off[e] + s_cnt[e] + tid; r < s_off[e + 1]; r += WG) pair_tok[r] = DRD_DES_NONE;
  if (tid == 0) {
    args[3 * DRD_DES_ARGS_GEMM1 + 0] = pc.ntn1;
    args[3 * DRD_DES_ARGS_GEMM1 + 1] = tiles;
    args[3 * DRD_DES_ARGS_GEMM1 + 2] = 1u;
    args[3 * DRD_DES_ARGS_GEMM2 + 0] = pc.ntn2;
    args[3 * DRD_DES_ARGS_GEMM2 + 1] = tiles;
    args[3 * DRD_DES_ARGS_GEMM2 + 2] = 1u;
  }
  for (uint e = tid; e < E; e += WG) {
    uint mt = (s_off[e + 1] - s_off[e]) / bm;
    uint r1 = DRD_DES_ARGS_FIXED + e, r2 = DRD_DES_ARGS_FIXED + E + e;
    args[3 * r1 + 0] = pc.ctn1;
    args[3 * r1 + 1] = mt;
    args[3 * r1 + 2] = 1u;
    args[3 * r2 + 0] = pc.ctn2;
    args[3 * r2 + 1] = mt;
    args[3 * r2 + 2] = 1u;
  }
}
