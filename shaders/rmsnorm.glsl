// RMSNorm over rows: out[r, c] = x[r, c] / sqrt(mean_c(x[r, :]^2) + eps) * w[c], shared by
// rmsnorm_f32.comp and rmsnorm_f16.comp. With RMSNORM_F16 the kernel also writes f16(out)
// (round to nearest even) to binding 3: the copy the cooperative-matrix GEMMs read, made
// here instead of by a separate pass over out (runtime/ops_rows.c). With RMSNORM_NO_F32 as well
// (rmsnorm_f16only.comp) only the f16 copy is written: the engine's attention and output norms,
// whose f32 result no kernel reads, save a third of their memory traffic.
// One workgroup per row; each invocation walks the row with stride WG, so the same
// invocation reads and writes an element (out may alias x).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "push_constants.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256; // a power of two

layout(std430, binding = 0) readonly buffer X { float x[]; };  // [rows, cols] f32 (from x_off)
layout(std430, binding = 1) readonly buffer W { float w[]; };  // [cols] f32
#ifndef RMSNORM_NO_F32
layout(std430, binding = 2) writeonly buffer O { float o[]; }; // [rows, cols] f32 (from o_off)
#endif
#ifdef RMSNORM_F16
layout(std430, binding = 3) writeonly buffer O16 { float16_t o16[]; }; // [rows, cols] f16 (from h_off)
#endif
layout(push_constant) uniform Push { drd_pc_rows pc; };

shared float red_buf[WG];
#include "row_reduce.glsl"

// Elements c = lid + i * WG of the row, RU at a time: every load of a batch is issued before
// any use, none behind a branch (a past-the-row element reads the batch's first one, this
// invocation's own), so the driver keeps them in flight together rather than one loop trip
// each (des_logits.glsl measured that at 2x). The squares are summed in the plain strided
// loop's order, so the bits are those of one element per trip.
const uint RU = 4;

void main() {
  uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
  if (row >= pc.rows) return; // uniform per workgroup: no barrier is skipped by half a group
  uint lid = gl_LocalInvocationID.x;
  uint xb = pc.x_off + row * pc.cols, ob = pc.o_off + row * pc.cols;
  float ss = 0.0, v[RU];
  for (uint c0 = lid; c0 < pc.cols; c0 += RU * WG) {
    [[unroll]] for (uint i = 0; i < RU; i++) v[i] = x[xb + (c0 + i * WG < pc.cols ? c0 + i * WG : c0)];
    [[unroll]] for (uint i = 0; i < RU; i++)
      if (c0 + i * WG < pc.cols) ss = fma(v[i], v[i], ss);
  }
  ss = wg_reduce_sum(ss);
  float inv = inversesqrt(ss / float(pc.cols) + pc.eps);
  // a row of at most RU * WG elements is still in v (out may alias x, so nothing reads x after
  // a store; each invocation reads and writes only its own elements)
  const bool kept = pc.cols <= RU * WG;
  for (uint c0 = lid; c0 < pc.cols; c0 += RU * WG) {
    float wv[RU];
    [[unroll]] for (uint i = 0; i < RU; i++) {
      const uint c = c0 + i * WG < pc.cols ? c0 + i * WG : c0;
      if (!kept) v[i] = x[xb + c];
      wv[i] = w[c];
    }
    [[unroll]] for (uint i = 0; i < RU; i++) {
      const uint c = c0 + i * WG;
      if (c >= pc.cols) continue;
      float r = v[i] * inv * wv[i];
#ifndef RMSNORM_NO_F32
      o[ob + c] = r;
#endif
#ifdef RMSNORM_F16
      o16[pc.h_off + row * pc.cols + c] = float16_t(r);
#endif
    }
  }
}
