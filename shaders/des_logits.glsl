// DES router logits, shared by des_logits_{f32,f16,f16p}.comp (the includer defines DES_WTYPE,
// the router's storage): logits[t, e] = b[t, :] . router[e, :], f32 accumulation.
//
// One workgroup per token: invocation tid sums the products of k = tid, tid + WG, ... in that
// order for EC experts at a time, then a fixed tree adds the WG shares (the same order on every
// run and device, which the routing's ties depend on). Each round first issues the loads of LU
// consecutive k of b and then multiplies them out: b is read once, mostly from memory, and a
// loop that loaded one value and waited for it before the next spent most of its time waiting
// (H200, 16384 tokens: ~80 us per layer for 64 MiB). The router (E x d) stays in the L1 cache.
#extension GL_EXT_control_flow_attributes : require
#include "des_common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64; // a power of two
const uint EC = 8;                         // experts reduced together (one barrier ladder)
const uint LU = 8;                         // values of b in flight per invocation

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
    for (uint k0 = tid; k0 < pc.d; k0 += LU * WG) {
      float x[LU];
      [[unroll]] for (uint u = 0; u < LU; u++) {
        uint k = k0 + u * WG;
        x[u] = k < pc.d ? b[brow + k] : 0.0;
      }
      [[unroll]] for (uint u = 0; u < LU; u++) {
        uint k = k0 + u * WG;
        if (k < pc.d)
          [[unroll]] for (uint j = 0; j < EC; j++)
            if (e0 + j < pc.E) acc[j] += x[u] * DES_WLOAD(rw, pc.r_off + (e0 + j) * pc.d + k);
      }
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
