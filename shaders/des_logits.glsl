// DES router logits, shared by des_logits_{f32,f16,f16p}.comp (the includer defines DES_WTYPE,
// the router's storage): logits[t, e] = b[t, :] . router[e, :], f32 accumulation.
//
// Each token has a group of GS invocations, TPW groups per workgroup: invocation l of the group
// sums the products of k = l, l + GS, ... in that order for EC experts at a time, then a fixed
// tree adds the GS shares (the same order on every run and device, which the routing's ties
// depend on). Each round first issues the loads of LU consecutive k of b and then multiplies
// them out. Several tokens per workgroup: with one, the H100 spent ~80 us per layer on
// 16384 tokens (64 MiB of b), launching 16384 workgroups of 2 warps. The router (E x d)
// stays in the L1 cache.
#extension GL_EXT_control_flow_attributes : require
#include "des_common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64; // TPW * GS
layout(constant_id = 1) const uint TPW = 1; // tokens per workgroup
const uint GS = WG / TPW;                  // invocations per token, a power of two
const uint EC = 8;                         // experts reduced together (one barrier ladder)
const uint LU = 8;                         // values of b in flight per invocation

layout(std430, binding = 0) readonly buffer B_ { float b[]; };        // [T, d] f32 from b_off
DES_WDECL(1, R_, rw)                                                   // [E, d] from r_off
layout(std430, binding = 2) writeonly buffer L_ { float logits[]; };  // [T, E] f32
layout(push_constant) uniform Push { drd_pc_des_logits pc; };

shared float part[EC * WG];

void main() {
  const uint tid = gl_LocalInvocationID.x, l = tid % GS;
  const uint t = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * TPW + tid / GS;
  const bool valid = t < pc.T; // every invocation still meets the barriers
  const uint brow = pc.b_off + t * pc.d;
  for (uint e0 = 0; e0 < pc.E; e0 += EC) {
    float acc[EC];
    [[unroll]] for (uint j = 0; j < EC; j++) acc[j] = 0.0;
    for (uint k0 = l; valid && k0 < pc.d; k0 += LU * GS) {
      float x[LU];
      [[unroll]] for (uint u = 0; u < LU; u++) {
        uint k = k0 + u * GS;
        x[u] = k < pc.d ? b[brow + k] : 0.0;
      }
      [[unroll]] for (uint u = 0; u < LU; u++) {
        uint k = k0 + u * GS;
        if (k < pc.d)
          [[unroll]] for (uint j = 0; j < EC; j++)
            if (e0 + j < pc.E) acc[j] += x[u] * DES_WLOAD(rw, pc.r_off + (e0 + j) * pc.d + k);
      }
    }
    [[unroll]] for (uint j = 0; j < EC; j++) part[j * WG + tid] = acc[j];
    barrier();
    for (uint s = GS / 2; s > 0; s >>= 1) {
      if (l < s)
        [[unroll]] for (uint j = 0; j < EC; j++) part[j * WG + tid] += part[j * WG + tid + s];
      barrier();
    }
    if (valid && l < EC && e0 + l < pc.E) logits[t * pc.E + e0 + l] = part[l * WG + tid - l];
    barrier(); // part[] is rewritten by the next group of experts
  }
}
