#version 450
// DES routing (SPEC section 6), one invocation per token, TB tokens per workgroup:
//   pi = softmax(logits) in f32 (max-subtracted, a portable exp, sum in ascending expert order);
//   experts in descending pi, ties to the lower index; the shortest prefix whose cumulative pi
//   reaches p (p >= 1: exactly kmax), at most kmax, at least 1; weights pi / sum(chosen pi).
// The host reference (host/des.c) computes exp and the sum in f64; the GPU has no f64 on
// most targets, so pi may differ from the host's by a few ulp (docs: ops_des.h). The cumulative
// sum, however, is kept as an unevaluated pair of floats (hi + lo, error-free additions), so
// the comparison with p is as exact as the host's f64 one.
// The workgroup also counts, per expert, how many of its tokens chose it (block histogram
// for the scan kernel); integer atomics in shared memory give the same counts on every run.
#extension GL_GOOGLE_include_directive : require
#include "des_common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint TB = 64; // tokens per workgroup (block)

layout(std430, binding = 0) readonly buffer L_ { float logits[]; };     // [T, E] f32
layout(std430, binding = 1) buffer P_ { float probs[]; };               // [T, E] f32 pi
layout(std430, binding = 2) writeonly buffer S_ { uint sel[]; };        // [T, kmax] expert or NONE
layout(std430, binding = 3) buffer W_ { float wts[]; };                 // [T, kmax] weight or 0
layout(std430, binding = 4) writeonly buffer C_ { uint blk_counts[]; }; // [n_blocks, E]
layout(push_constant) uniform Push { drd_pc_des_route pc; };

shared uint cnt[256]; // E <= 256 (DRD_DES_MAX_EXPERTS), checked by the runtime

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint blk = gl_WorkGroupID.x;
  const uint t = blk * TB + tid;
  const uint E = pc.E;
  for (uint e = tid; e < E; e += TB) cnt[e] = 0u;
  barrier();
  if (t < pc.T) {
    const uint row = t * E, srow = t * pc.kmax;
    float mx = logits[row];
    for (uint e = 1; e < E; e++) mx = max(mx, logits[row + e]);
    float sum = 0.0;
    for (uint e = 0; e < E; e++) {
      float x = des_exp_diff(logits[row + e], mx);
      probs[row + e] = x;
      sum += x;
    }
    for (uint e = 0; e < E; e++) probs[row + e] = probs[row + e] / sum;

    // Selection: the next expert is the largest (pi, -index) strictly below the previous
    // pick in that order, which is the host's "largest untaken, lower index on ties".
    const uint kmax = min(pc.kmax, E);
    precise float hi = 0.0, lo = 0.0; // cumulative pi = hi + lo
    uint prev = DRD_DES_NONE;
    float prev_pi = 0.0;
    uint k = 0;
    while (k < kmax) {
      uint best = DRD_DES_NONE;
      float bp = 0.0;
      for (uint e = 0; e < E; e++) {
        float pe = probs[row + e];
        bool after = prev == DRD_DES_NONE || pe < prev_pi || (pe == prev_pi && e > prev);
        if (after && (best == DRD_DES_NONE || pe > bp)) {
          best = e;
          bp = pe;
        }
      }
      if (best == DRD_DES_NONE) break; // only with NaN logits: keep memory accesses in bounds
      sel[srow + k] = best;
      wts[srow + k] = bp;
      k++;
      atomicAdd(cnt[best], 1u);
      // hi + lo += bp without rounding error (two-sum); then the sign of hi + lo - p
      precise float s = hi + bp;
      precise float bb = s - hi;
      precise float err = (hi - (s - bb)) + (bp - bb);
      hi = s;
      lo = lo + err;
      precise float d = hi - pc.p;
      precise float dd = d - hi;
      precise float derr = (hi - (d - dd)) + (-pc.p - dd);
      precise float diff = d + (derr + lo);
      if (pc.p < 1.0 && diff >= 0.0) break;
      prev = best;
      prev_pi = bp;
    }
    precise float chosen = hi + lo;
    for (uint s = 0; s < k; s++) wts[srow + s] = wts[srow + s] / chosen;
    for (uint s = k; s < pc.kmax; s++) {
      sel[srow + s] = DRD_DES_NONE;
      wts[srow + s] = 0.0;
    }
  }
  barrier();
  for (uint e = tid; e < E; e += TB) blk_counts[blk * E + e] = cnt[e];
}
