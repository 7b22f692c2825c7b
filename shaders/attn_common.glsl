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

#include "attn_io.glsl"

shared vec4 ks[BC * DP4]; // [BC, DP4] K tile
shared vec4 vs[BC * DP4]; // [BC, DP4] V tile
#ifndef ATTN_SHUFFLE
shared float sp[TC > 1u ? WG * BC : 1u]; // [WG, BC] partial dot products of a tile
#endif

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
        if (t0 + j < nk) {
          kk = load_kv(false, kb + t0 + j, h, c4);
          vv = load_kv(true, kb + t0 + j, h, c4);
        }
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
  for (uint x = 0; x < V4; x++) store_o(i, rb, h, dst, t + TC * x, acc[x], l);
  if (dst != 0xffffffffu && t == 0u) slot_ml[(dst * pc.B + rb) * pc.H + h] = vec2(m, l);
}
