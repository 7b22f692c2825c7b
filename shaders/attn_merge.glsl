// Exact log-sum-exp merge of an HSA attention row's pieces (runtime/ops_attention.c): the
// slots [s0, s1) hold unnormalised outputs o_s with their running max m_s and sum l_s (log2
// domain). With M = max m_s and w_s = exp2(m_s - M): o = sum w_s o_s, l = sum w_s l_s. When
// a row spans several key windows (binding-range chunking), the pieces of earlier windows
// were folded into a running state kept in out (unnormalised o) and stats (m, l): LOAD adds
// it as one more piece; FINAL writes out = o / l, otherwise the new state is stored. With
// MERGE_OUT16 (attn_hsa_merge_f16.comp) out is f16: the host asks it only for final merges
// without a running state (no LOAD).
// Workgroup = (merge item, head, RPR rows of the block), one invocation per column, so a row's
// stats are read by all its columns before one invocation rewrites them. (Walking all B rows in
// one workgroup per (item, head) left an H200 with 128 workgroups, each a chain of dependent
// loads: 117 us per merge at 16K tokens.)
#include "pc_attention.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128; // >= DH
layout(constant_id = 1) const uint DH = 64;

const uint RPR = WG / DH; // rows per round
const float NEG = -1.0e30;

layout(std430, binding = 0) readonly buffer SO { float slot_o[]; };  // [slots, B, H, DH] f32
layout(std430, binding = 1) readonly buffer SML { vec2 slot_ml[]; }; // [slots, B, H] (m, l) f32
layout(std430, binding = 2) buffer O { float o_out[]; };             // [rows, H*DH] f32 (from q_off)
#ifdef MERGE_OUT16
layout(std430, binding = 2) buffer O16 { float16_t o16[]; };        // the same, f16
#endif
layout(std430, binding = 3) buffer ST { vec2 stats[]; };             // [rows, H] (m, l) f32 (from st_off)
layout(std430, binding = 4) readonly buffer Items { uvec4 items[]; }; // (a, s0, s1, flags)
layout(push_constant) uniform Push { drd_pc_attn_merge pc; };

void main() {
  const uint lid = gl_LocalInvocationID.x;
  const uint h = gl_WorkGroupID.y;
  const uvec4 it = items[pc.item_off + gl_WorkGroupID.x];
  const uint a = it.x, s0 = it.y, s1 = it.z, flags = it.w;
  const uint lr = lid / DH, c = lid % DH;
  { // uniform: every invocation reaches the barrier
    uint rb = gl_WorkGroupID.z * RPR + lr, i = a * pc.B + rb;
    bool ok = lr < RPR && rb < pc.B && i < pc.N;
    float M = NEG, L = 0.0, acc = 0.0;
    uint oi = 0, si = 0;
    if (ok) {
      oi = pc.q_off + (i - pc.q_row0) * pc.H * DH + h * DH + c;
      si = pc.st_off / 2u + (i - pc.q_row0) * pc.H + h;
      vec2 st = vec2(NEG, 0.0);
      if ((flags & DRD_ATTN_MERGE_LOAD) != 0u) {
        st = stats[si];
        M = st.x;
      }
      for (uint s = s0; s < s1; s++) M = max(M, slot_ml[(s * pc.B + rb) * pc.H + h].x);
      if ((flags & DRD_ATTN_MERGE_LOAD) != 0u) {
        float w = exp2(st.x - M);
        L = w * st.y;
        acc = w * o_out[oi];
      }
      for (uint s = s0; s < s1; s++) {
        uint srow = (s * pc.B + rb) * pc.H + h;
        vec2 ml = slot_ml[srow];
        float w = exp2(ml.x - M);
        L += w * ml.y;
        acc += w * slot_o[srow * DH + c];
      }
    }
    barrier(); // every column has read the row's old stats
    if (ok) {
      if ((flags & DRD_ATTN_MERGE_FINAL) != 0u) {
#ifdef MERGE_OUT16
        o16[oi] = float16_t(acc / L);
#else
        o_out[oi] = acc / L;
#endif
      } else {
        o_out[oi] = acc;
        if (c == 0u) stats[si] = vec2(M, L);
      }
    }
  }
}
