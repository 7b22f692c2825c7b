// HSA attention, FlashAttention-2 style (SPEC section 5; runtime/ops_attention.c plans the
// work). TC consecutive threads share a query row, each owning V4 vec4 of its head dim, and
// sum their partial dot products: with subgroup shuffles in attn_hsa_f32.comp (ATTN_SHUFFLE;
// a row's TC threads are consecutive invocations, inside one subgroup since TC (1 or 2)
// divides every subgroup size; this assumes the usual linear mapping of a 1-D workgroup's
// invocations onto subgroups), through shared memory once per tile in
// attn_hsa_f32_noshuffle.comp.
//
// Workgroup = (work item, row tile, head). A work item is (query block a, CSR range [c0, c1)
// of visible key blocks, destination). The workgroup's BR query rows (rows tile*BR.. of block
// a) all see the same keys: each listed block's keys are streamed through shared memory BC at
// a time (K and V tiles; a tile never spans two blocks, so its keys come from one CSR entry
// and which of them are real is one comparison, not a division and a lookup per element);
// each thread keeps its row's q slice, output slice, running max m and running sum l in
// registers (online softmax, never an N x N buffer).
// Scores live in the log2 domain (q is pre-scaled by log2(e)/sqrt(dh)) so exp2 is used.
// Destination: ~0u = the row's only piece, write out = o / l; otherwise a slot index, write
// the unnormalised o and (m, l) for the merge kernel (split-K and window pieces).
#extension GL_GOOGLE_include_directive : require
#ifdef ATTN_SHUFFLE
#extension GL_KHR_shader_subgroup_shuffle : require
#endif
#include "pc_attention.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;        // BR * TC invocations
layout(constant_id = 1) const uint DH = 64;        // head dim (even, <= 128)
layout(constant_id = 2) const uint TC = 1;         // threads per query row (power of two, <= subgroup)
layout(constant_id = 3) const uint V4 = 4;         // vec4s of the head dim per thread
layout(constant_id = 4) const uint BC = 16;        // keys per shared tile
layout(constant_id = 5) const uint BR = 64;        // query rows per workgroup
layout(constant_id = 6) const bool ALIGNED4 = false; // DH % 4 == 0: rows may be read as vec4

const uint DP4 = TC * V4;  // head dim in vec4, padded with zeros to the threads' slices
const float NEG = -1.0e30; // "minus infinity" that keeps exp2(NEG - m) == 0 and never makes NaN

layout(std430, binding = 0) readonly buffer Q { float q[]; };     // [rows, H*DH] f32 (q window)
layout(std430, binding = 0) readonly buffer Q4 { vec4 q4[]; };
layout(std430, binding = 1) readonly buffer K { float k[]; };     // [rows, H*DH] f32 (k/v window)
layout(std430, binding = 1) readonly buffer K4 { vec4 k4[]; };
layout(std430, binding = 2) readonly buffer V { float v[]; };     // [rows, H*DH] f32 (k/v window)
layout(std430, binding = 2) readonly buffer V4B { vec4 v4[]; };
layout(std430, binding = 3) writeonly buffer O { float o_out[]; }; // [rows, H*DH] f32 (q window)
layout(std430, binding = 3) writeonly buffer O4 { vec4 o4_out[]; };
layout(std430, binding = 4) readonly buffer Items { uvec4 items[]; }; // (a, c0, c1, slot or ~0)
layout(std430, binding = 5) readonly buffer Col { uint col[]; };       // CSR key blocks (from col_base)
layout(std430, binding = 6) writeonly buffer SO { float slot_o[]; };   // [slots, B, H, DH] f32
layout(std430, binding = 6) writeonly buffer SO4 { vec4 slot_o4[]; };
layout(std430, binding = 7) writeonly buffer SML { vec2 slot_ml[]; };  // [slots, B, H] (m, l) f32
layout(push_constant) uniform Push { drd_pc_attn pc; };

shared vec4 ks[BC * DP4]; // [BC, DP4] K tile
shared vec4 vs[BC * DP4]; // [BC, DP4] V tile
#ifndef ATTN_SHUFFLE
shared float sp[TC > 1u ? WG * BC : 1u]; // [WG, BC] partial dot products of a tile
#endif

// Column group c4 (4 columns) of head h in token row `row` of a window whose first row is row0
// at element offset off; zeros past DH (the padding of the slices).
vec4 load_q(uint row, uint h, uint c4) {
  uint base = pc.q_off + (row - pc.q_row0) * pc.H * DH + h * DH;
  if (ALIGNED4) return c4 * 4u < DH ? q4[base / 4u + c4] : vec4(0.0);
  vec4 r = vec4(0.0);
  for (uint e = 0; e < 4u; e++)
    if (c4 * 4u + e < DH) r[e] = q[base + c4 * 4u + e];
  return r;
}

void load_kv(uint row, uint h, uint c4, out vec4 kk, out vec4 vv) {
  uint base = pc.kv_off + (row - pc.kv_row0) * pc.H * DH + h * DH;
  kk = vec4(0.0);
  vv = vec4(0.0);
  if (ALIGNED4) {
    if (c4 * 4u < DH) {
      kk = k4[base / 4u + c4];
      vv = v4[base / 4u + c4];
    }
    return;
  }
  for (uint e = 0; e < 4u; e++)
    if (c4 * 4u + e < DH) {
      kk[e] = k[base + c4 * 4u + e];
      vv[e] = v[base + c4 * 4u + e];
    }
}

void main() {
  const uint lid = gl_LocalInvocationID.x;
  const uint r = lid / TC, t = lid % TC;
  const uint h = gl_WorkGroupID.z;
  const uvec4 it = items[pc.item_off + gl_WorkGroupID.x];
  const uint a = it.x, c0 = it.y, c1 = it.z, dst = it.w;
  const uint rb = gl_WorkGroupID.y * BR + r; // row inside the query block
  const uint i = a * pc.B + rb;              // token
  const bool row_ok = r < BR && rb < pc.B && i < pc.N;

  // Rows past the block or N still run the loop (all invocations must reach the barriers and
  // shuffles) with q = 0; they are never stored.
  vec4 qv[V4], acc[V4];
  for (uint x = 0; x < V4; x++) {
    qv[x] = row_ok ? load_q(i, h, t + TC * x) * pc.scale_log2 : vec4(0.0);
    acc[x] = vec4(0.0);
  }
  float m = NEG, l = 0.0;

  for (uint c = c0; c < c1; c++) {
    const uint kb = col[c - pc.col_base] * pc.B;     // the block's first key
    const uint nk = kb < pc.N ? min(pc.B, pc.N - kb) : 0u; // its real keys (the last block may be partial)
    for (uint t0 = 0; t0 < nk; t0 += BC) {
      barrier(); // the previous tile has been consumed
      for (uint e = lid; e < BC * DP4; e += WG) {
        uint j = e / DP4, c4 = e % DP4;
        vec4 kk = vec4(0.0), vv = vec4(0.0);
        if (t0 + j < nk) load_kv(kb + t0 + j, h, c4, kk, vv);
        ks[e] = kk;
        vs[e] = vv;
      }
      barrier();

      float s[BC];
      for (uint j = 0; j < BC; j++) {
        float d = 0.0;
        for (uint x = 0; x < V4; x++) d += dot(qv[x], ks[j * DP4 + t + TC * x]);
#ifdef ATTN_SHUFFLE
        // butterfly: every thread of the row ends with the same (bit-identical) sum
        for (uint w = 1u; w < TC; w <<= 1) d += subgroupShuffleXor(d, w);
#endif
        s[j] = d;
      }
#ifndef ATTN_SHUFFLE
      if (TC > 1u) { // the row's threads add the TC partials in the same order: identical sums
        for (uint j = 0; j < BC; j++) sp[lid * BC + j] = s[j];
        barrier(); // sp is next written after the next tile's two barriers: no second one needed
        for (uint j = 0; j < BC; j++) {
          float d = 0.0;
          for (uint u = 0; u < TC; u++) d += sp[(r * TC + u) * BC + j];
          s[j] = d;
        }
      }
#endif
      float mt = NEG;
      for (uint j = 0; j < BC; j++) {
        s[j] = t0 + j < nk ? s[j] : NEG;
        mt = max(mt, s[j]);
      }
      // Online softmax: rescale the running sums to the new maximum, then add this tile. The
      // first tile always holds a real key, so m is a real score after it and alpha(NEG) = 0.
      float mn = max(m, mt);
      float alpha = exp2(m - mn);
      l *= alpha;
      for (uint x = 0; x < V4; x++) acc[x] *= alpha;
      for (uint j = 0; j < BC; j++) {
        float pj = exp2(s[j] - mn);
        l += pj;
        for (uint x = 0; x < V4; x++) acc[x] += pj * vs[j * DP4 + t + TC * x];
      }
      m = mn;
    }
  }

  if (!row_ok) return;
  if (dst == 0xffffffffu) {
    float inv = 1.0 / l;
    uint base = pc.o_off + (i - pc.q_row0) * pc.H * DH + h * DH;
    for (uint x = 0; x < V4; x++) {
      uint c4 = t + TC * x;
      if (ALIGNED4) {
        if (c4 * 4u < DH) o4_out[base / 4u + c4] = acc[x] * inv;
      } else {
        for (uint e = 0; e < 4u; e++)
          if (c4 * 4u + e < DH) o_out[base + c4 * 4u + e] = acc[x][e] * inv;
      }
    }
  } else {
    uint srow = (dst * pc.B + rb) * pc.H + h;
    uint base = srow * DH;
    for (uint x = 0; x < V4; x++) {
      uint c4 = t + TC * x;
      if (ALIGNED4) {
        if (c4 * 4u < DH) slot_o4[base / 4u + c4] = acc[x];
      } else {
        for (uint e = 0; e < 4u; e++)
          if (c4 * 4u + e < DH) slot_o[base + c4 * 4u + e] = acc[x][e];
      }
    }
    if (t == 0u) slot_ml[srow] = vec2(m, l);
  }
}
