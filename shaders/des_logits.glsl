// DES router logits, shared by des_logits_{f32,f16,f16p}.comp (the includer defines DES_WTYPE,
// the router's storage): logits[t, e] = b[t, :] . router[e, :], f32 accumulation.
//
// One workgroup per token: each invocation sums a strided share of the d products for EC
// experts at a time, then a fixed tree adds the shares (the same order on every run). (~80 us
// per layer for 16384 tokens on an H100, 0.8 TB/s of b: issuing 8 loads of b before the
// products, or 4 tokens per workgroup, changed that by under 4 %, docs/performance.md.)
#extension GL_EXT_control_flow_attributes : require
#include "des_common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64; // a power of two
const uint EC = 8;                         // experts reduced together (one barrier ladder)

layout(std430, binding = 0) readonly buffer B_ { float b[]; };        // [T, d] f32 from b_off
DES_WDECL(1, R_, rw)                                                   // [E, d] from r_off
layout(std430, binding = 2) writeonly buffer L_ { float logits[]; };  // [T, E] f32
layout(push_constant) uniform Push { drd_pc_des_logits pc; };

shared float part[EC * WG];

void main() {
  uint t = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
  if (t >= pc.T) return; // uniform per workgroup
  uint tid = gl_LocalInvocationID.x;
  uint brow = pc.b_off + t * pc.d;
  for (uint e0 = 0; e0 < pc.E; e0 += EC) {
    float acc[EC];
    [[unroll]] for (uint j = 0; j < EC; j++) acc[j] = 0.0;
    for (uint k = tid; k < pc.d; k += WG) {
      float x = b[brow + k];
      [[unroll]] for (uint j = 0; j < EC; j++)
        if (e0 + j < pc.E) acc[j] += x * DES_WLOAD(rw, pc.r_off + (e0 + j) * pc.d + k);
    }
    [[unroll]] for (uint j = 0; j < EC; j++) part[j * WG + tid] = acc[j];
    barrier();
    for (uint s = WG / 2; s > 0; s >>= 1) {
      if (tid < s)
        [[unroll]] for (uint j = 0; j < EC; j++) part[j * WG + tid] += part[j * WG + tid + s];
      barrier();
    }
    if (tid < EC && e0 + tid < pc.E) logits[t * pc.E + e0 + tid] = part[tid * WG];
    barrier(); // part[] is rewritten by the next group of experts
  }
}
