// RMSNorm as rmsnorm.glsl computes it, one subgroup per row instead of one workgroup: the
// row's sum of squares is a subgroupAdd, so there is no barrier and no shared memory, and each
// invocation keeps RV 16-byte loads of its row in flight at once. rmsnorm.glsl's workgroup
// per row spends ten barriers on its reduction tree and holds four loads per invocation;
// at 16K tokens of base-220m on an H200 its 24 calls per step moved 2.6 TB/s (1.19 ms).
// Shared by rmsnorm_sg_{f32,f16,f16only}.comp (the defines of rmsnorm.glsl). Needs subgroup
// arithmetic and rows of whole vec4s at 16-byte-aligned offsets (cols, x_off, o_off multiples
// of 4; h_off of 4 halves): runtime/ops_rows.c falls back to rmsnorm.glsl otherwise.
// Rows per workgroup: gl_NumSubgroups (the host dispatches for its subgroupSize property; a
// driver running smaller subgroups covers the rows with fewer workgroups, the rest return).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "push_constants.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256; // a multiple of the subgroup size

layout(std430, binding = 0) readonly buffer X { vec4 x4[]; };   // [rows, cols] f32 (from x_off)
layout(std430, binding = 1) readonly buffer W { vec4 w4[]; };   // [cols] f32
#ifndef RMSNORM_NO_F32
layout(std430, binding = 2) writeonly buffer O { vec4 o4[]; };  // [rows, cols] f32 (from o_off)
#endif
#ifdef RMSNORM_F16
layout(std430, binding = 3) writeonly buffer O16 { f16vec4 o16x4[]; }; // [rows, cols] f16 (from h_off)
#endif
layout(push_constant) uniform Push { drd_pc_rows pc; };

// vec4s per invocation per batch: a row of up to RV * 4 * subgroup size floats (1024 with
// NVIDIA's 32) stays in registers between the sum and the output
const uint RV = 8;

void main() {
  const uint row = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * gl_NumSubgroups + gl_SubgroupID;
  if (row >= pc.rows) return; // no barrier below
  const uint lane = gl_SubgroupInvocationID, sgs = gl_SubgroupSize, c4n = pc.cols / 4u;
  const uint xb = (pc.x_off + row * pc.cols) / 4u, ob = (pc.o_off + row * pc.cols) / 4u;
  const uint hb = (pc.h_off + row * pc.cols) / 4u;
  // a row of at most RV vec4s per invocation stays in v, and its weights are loaded with it
  // (one memory round trip per row instead of two: the 1K step was 1 % slower without)
  const bool kept = c4n <= RV * sgs;
  float ss = 0.0;
  vec4 v[RV], wv[RV];
  // every load of a batch issued before any use, none behind a branch (past the row: this
  // invocation's first element of the batch, summed as zero)
  for (uint c0 = lane; c0 < c4n; c0 += RV * sgs) {
    [[unroll]] for (uint i = 0; i < RV; i++) {
      const uint c = c0 + i * sgs < c4n ? c0 + i * sgs : c0;
      v[i] = x4[xb + c];
      if (kept) wv[i] = w4[c];
    }
    [[unroll]] for (uint i = 0; i < RV; i++)
      if (c0 + i * sgs < c4n) ss += dot(v[i], v[i]);
  }
  ss = subgroupAdd(ss);
  const float inv = inversesqrt(ss / float(pc.cols) + pc.eps);
  // out may alias x: each invocation writes only what it read
  for (uint c0 = lane; c0 < c4n; c0 += RV * sgs) {
    [[unroll]] for (uint i = 0; i < RV; i++) {
      const uint c = c0 + i * sgs;
      if (c >= c4n) break;
      const vec4 r = kept ? v[i] * inv * wv[i] : x4[xb + c] * inv * w4[c];
#ifndef RMSNORM_NO_F32
      o4[ob + c] = r;
#endif
#ifdef RMSNORM_F16
      o16x4[hb + c] = f16vec4(r);
#endif
    }
  }
}
