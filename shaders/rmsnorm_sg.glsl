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
// With RMSNORM_ROUTER (rmsnorm_sg_router_*.comp) the kernel also computes the DES router's
// logits of each normalized row, logits[row, e] = out[row, :] . router[e, :] for e < E <= 8, in
// des_logits.glsl's order (invocation l sums its 4-column chunks l, l + S, l + 2 S, ... in
// column order, then the S partial sums are added in invocation order; S = the subgroup size,
// des_logits' 32 on NVIDIA, where the bits are the same), so the FFN's norm need not write
// the f32 rows only the router read, and the router needs no pass of its own.
// With RMSNORM_DES_COMBINE (des_combine_norm.comp) the row is first made as des_combine.glsl
// makes it, x[row] += sum over the token's DES slots of w * y (same f32 operations in the same
// order), written back to x, and then normalized from registers: the next layer's norm needs
// no pass of its own over x.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "push_constants.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256; // a multiple of the subgroup size

#ifdef RMSNORM_DES_COMBINE
layout(std430, binding = 0) buffer X { vec4 x4[]; };            // [rows, cols] f32 (from x_off), += the FFN
#else
layout(std430, binding = 0) readonly buffer X { vec4 x4[]; };   // [rows, cols] f32 (from x_off)
#endif
layout(std430, binding = 1) readonly buffer W { vec4 w4[]; };   // [cols] f32
#ifndef RMSNORM_NO_F32
layout(std430, binding = 2) writeonly buffer O { vec4 o4[]; };  // [rows, cols] f32 (from o_off)
#endif
#ifdef RMSNORM_F16
layout(std430, binding = 3) writeonly buffer O16 { f16vec4 o16x4[]; }; // [rows, cols] f16 (from h_off)
#endif
#ifdef RMSNORM_ROUTER
#if ROUTER_F16
layout(std430, binding = 4) readonly buffer R { f16vec4 r4[]; }; // [E, cols] f16
#else
layout(std430, binding = 4) readonly buffer R { vec4 r4[]; };    // [E, cols] f32
#endif
layout(std430, binding = 5) writeonly buffer L { float logits[]; }; // [rows, E] f32
const uint EMAX = 8;
// each subgroup's partial sums, [expert][invocation], rows padded by one (the sums read along
// a row); sized for subgroups of one invocation and up
shared float rpart[EMAX * 2u * WG];
#endif
#ifdef RMSNORM_DES_COMBINE
// des_combine.glsl's inputs: the experts' output rows, and each token's slots (row or NONE, weight)
layout(constant_id = 1) const uint KS = 2;                          // slots per token (kmax <= 4)
layout(constant_id = 2) const bool Y16 = false;                     // y f16 (the cooperative-matrix down GEMM's)
layout(std430, binding = 4) readonly buffer Y { vec4 y4[]; };       // [rows of pairs, cols] f32
layout(std430, binding = 4) readonly buffer Yh { f16vec4 y16x4[]; }; // the same, f16 (Y16)
layout(std430, binding = 5) readonly buffer Wts { float wts[]; };   // [rows, KS] f32
layout(std430, binding = 6) readonly buffer Pos { uint pos[]; };    // [rows, KS] row of y or NONE
const uint DES_NONE = 0xffffffffu;
#endif
layout(push_constant) uniform Push { drd_pc_rows pc; };

// vec4s per invocation per batch: a row of up to RV * 4 * subgroup size floats (1024 with
// NVIDIA's 32) stays in registers between the sum and the output
const uint RV = 8;

void main() {
  const uint id = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * gl_NumSubgroups + gl_SubgroupID;
#ifdef RMSNORM_ROUTER
  // every subgroup reaches the barrier below: one past the rows redoes the last row, storing nothing
  const bool live = id < pc.rows;
  const uint row = live ? id : pc.rows - 1u;
  float racc[EMAX];
  [[unroll]] for (uint e = 0; e < EMAX; e++) racc[e] = 0.0;
#else
  const bool live = true;
  const uint row = id;
  if (row >= pc.rows) return; // no barrier below
#endif
  const uint lane = gl_SubgroupInvocationID, sgs = gl_SubgroupSize, c4n = pc.cols / 4u;
  const uint xb = (pc.x_off + row * pc.cols) / 4u, ob = (pc.o_off + row * pc.cols) / 4u;
  const uint hb = (pc.h_off + row * pc.cols) / 4u;
  // a row of at most RV vec4s per invocation stays in v, and its weights are loaded with it
  // (one memory round trip per row instead of two: the 1K step was 1 % slower without),
  // except where the row's DES outputs take the registers: with the weights held, the
  // combine's kernel took 128 registers (and 23 KiB of shared memory for its arrays), without
  // them 118, and ran 5 % faster (H200, 16K tokens)
  const bool kept = c4n <= RV * sgs;
#ifdef RMSNORM_DES_COMBINE
  const bool keep_w = false;
#else
  const bool keep_w = kept;
#endif
  float ss = 0.0;
  vec4 v[RV], wv[RV];
#ifdef RMSNORM_DES_COMBINE
  // the token's slots, once per row; a NONE slot reads row 0 and is skipped (des_combine.glsl)
  uint yr[KS];
  float cw[KS];
  bool real[KS];
  [[unroll]] for (uint j = 0; j < KS; j++) {
    const uint r = pos[row * KS + j];
    cw[j] = wts[row * KS + j];
    real[j] = r != DES_NONE;
    yr[j] = real[j] ? r : 0u;
  }
  vec4 yv[RV][KS];
#endif
  // every load of a batch issued before any use, none behind a branch (past the row: this
  // invocation's first element of the batch, summed as zero)
  for (uint c0 = lane; c0 < c4n; c0 += RV * sgs) {
    [[unroll]] for (uint i = 0; i < RV; i++) {
      const uint c = c0 + i * sgs < c4n ? c0 + i * sgs : c0;
      v[i] = x4[xb + c];
      if (keep_w) wv[i] = w4[c];
#ifdef RMSNORM_DES_COMBINE
      [[unroll]] for (uint j = 0; j < KS; j++) yv[i][j] = Y16 ? vec4(y16x4[yr[j] * c4n + c]) : y4[yr[j] * c4n + c];
#endif
    }
#ifdef RMSNORM_DES_COMBINE
    // des_combine.glsl's sum in slot order, then old + sum; stored back as the residual (rows
    // not kept are reloaded by the output loop, which then reads these sums)
    [[unroll]] for (uint i = 0; i < RV; i++) {
      if (c0 + i * sgs >= c4n) continue;
      vec4 acc = vec4(0.0);
      [[unroll]] for (uint j = 0; j < KS; j++)
        if (real[j]) acc += cw[j] * yv[i][j];
      acc = v[i] + acc;
      v[i] = acc;
      if (live) x4[xb + c0 + i * sgs] = acc;
    }
#endif
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
      const vec4 r = kept ? v[i] * inv * (keep_w ? wv[i] : w4[c]) : x4[xb + c] * inv * w4[c];
#ifndef RMSNORM_NO_F32
      if (live) o4[ob + c] = r;
#endif
#ifdef RMSNORM_F16
      if (live) o16x4[hb + c] = f16vec4(r);
#endif
#ifdef RMSNORM_ROUTER
      // des_logits.glsl's product of a chunk (an expert past E reads row E - 1, never stored)
      [[unroll]] for (uint e = 0; e < EMAX; e++) {
        const vec4 w = vec4(r4[min(e, pc.experts - 1u) * c4n + c]);
        racc[e] += r.x * w.x + r.y * w.y + r.z * w.z + r.w * w.w;
      }
#endif
    }
  }
#ifdef RMSNORM_ROUTER
  const uint rs = sgs + 1u, base = gl_SubgroupID * EMAX * rs;
  [[unroll]] for (uint e = 0; e < EMAX; e++) rpart[base + e * rs + lane] = racc[e];
  barrier();
  for (uint e = lane; e < pc.experts && live; e += sgs) {
    float sum = 0.0;
    for (uint k = 0; k < sgs; k++) sum += rpart[base + e * rs + k];
    logits[row * pc.experts + e] = sum;
  }
#endif
}
