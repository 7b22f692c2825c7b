// The HSA attention kernels' vec4 output views, loads and stores, shared by the scalar
// kernel (attn_common.glsl) and the CPU-device one (attn_hsa_sg.comp), which take the same
// work items and write the same outputs (runtime/ops_attention.c). The includer declares the
// constants DH (head dim) and ALIGNED4 (DH % 4 == 0: rows may be read as vec4).
#include "attn_bindings.glsl"

layout(std430, binding = 3) writeonly buffer O4 { vec4 o4_out[]; };  // the output, 4 at a time
layout(std430, binding = 6) writeonly buffer SO4 { vec4 slot_o4[]; }; // the slots, 4 at a time

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

// Column group c4 of head h in key row `row` of V (value) or K: zeros past DH
vec4 load_kv(bool value, uint row, uint h, uint c4) {
  const uint base = pc.kv_off + (row - pc.kv_row0) * pc.H * DH + h * DH;
  if (ALIGNED4) return c4 * 4u < DH ? (value ? v4[base / 4u + c4] : k4[base / 4u + c4]) : vec4(0.0);
  vec4 r = vec4(0.0);
  for (uint e = 0; e < 4u; e++)
    if (c4 * 4u + e < DH) r[e] = value ? v[base + c4 * 4u + e] : k[base + c4 * 4u + e];
  return r;
}

// Column group c4 of head h's output in token row i (row rb of its query block): o / l into out
// for a row's only piece (dst == ~0u), else the unnormalised o into slot dst for the merge
// kernel (its (m, l) is the caller's to store).
void store_o(uint i, uint rb, uint h, uint dst, uint c4, vec4 o, float l) {
  const bool whole = dst == 0xffffffffu;
  const uint base = whole ? pc.o_off + (i - pc.q_row0) * pc.H * DH + h * DH : ((dst * pc.B + rb) * pc.H + h) * DH;
  if (whole) o *= 1.0 / l;
  if (ALIGNED4) {
    if (c4 * 4u >= DH) return;
    if (whole) o4_out[base / 4u + c4] = o;
    else slot_o4[base / 4u + c4] = o;
    return;
  }
  for (uint e = 0; e < 4u; e++)
    if (c4 * 4u + e < DH) {
      if (whole) o_out[base + c4 * 4u + e] = o[e];
      else slot_o[base + c4 * 4u + e] = o[e];
    }
}
