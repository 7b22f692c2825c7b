// GEMM C = A W^T (+ bias) for CPU Vulkan implementations (lavapipe, SwiftShader), shared by
// the gemm_sg_*.comp variants, which differ only in how W is stored.
//
// Why a second kernel: a CPU implementation runs SG invocations as the lanes of one SIMD
// register, so every load whose address differs between lanes (any shared-memory read of
// the tiled kernel, gemm_common.glsl) becomes a loop over the lanes, about ten times the
// cost of the FMAs it feeds. Here the workgroup is one subgroup and shared memory is not
// used: lane l loads 4 consecutive k of A row (i*SG + l) and of W columns (j*SG + l) straight
// from the buffers (one lane loop per 4 values, vec4 loads where K allows), and the A values
// reach the other lanes through subgroupShuffle with a constant lane. Not subgroupBroadcast:
// Mesa 22's lavapipe turns each broadcast into a loop over the lanes' execution mask (it
// reads the lane from the first active invocation), a third of this kernel's time, while a
// shuffle by a constant index folds into one register splat (docs/performance.md,
// thirty-third session). Each invocation accumulates (TM*SG) x TN outputs: SG*TM rows, its TN
// columns j*SG + l. Loops over constants are [[unroll]]ed: without it lavapipe keeps the
// arrays in per-lane memory and runs four times slower.
// Edge tiles: rows and columns past M and N are clamped to the last one for loading and not
// stored; k past K reads 0. The sum over k runs in ascending order, like the tiled kernel.
//
// The includer declares W's buffer at binding 1 twice (element and 4-element views) and
// defines W_LOAD(e) -> float and W_LOAD4(e) -> vec4 (e a multiple of 4).

#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_control_flow_attributes : require
#include "push_constants.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint SG = 8;       // the subgroup size: the workgroup is one subgroup
layout(constant_id = 1) const uint TM = 2;       // groups of SG rows per workgroup
layout(constant_id = 2) const uint TN = 8;       // columns per invocation
layout(constant_id = 3) const bool VEC4 = false; // K and the A / W offsets are multiples of 4

layout(std430, binding = 0) readonly buffer A { float a[]; };   // [M, lda] f32 from a_off
layout(std430, binding = 0) readonly buffer A4 { vec4 a4[]; }; // the same, 4 at a time
layout(std430, binding = 2) readonly buffer Bias { float bias[]; }; // [N] f32 from bias_off (a dummy without bias)
layout(std430, binding = 3) buffer C { float c[]; };                // [M, ldc] f32 from c_off
layout(push_constant) uniform Push { drd_pc_gemm pc; };

// elements k .. k+3 of the row that starts at element `base`; 0 past K
vec4 load_a(uint base, uint k) {
  if (VEC4) return a4[(base + k) >> 2];
  vec4 v;
  [[unroll]] for (uint i = 0; i < 4; i++) {
    bool ok = k + i < pc.K;
    float x = a[ok ? base + k + i : base];
    v[i] = ok ? x : 0.0;
  }
  return v;
}

vec4 load_w(uint base, uint k) {
  if (VEC4) return W_LOAD4(base + k);
  vec4 v;
  [[unroll]] for (uint i = 0; i < 4; i++) {
    bool ok = k + i < pc.K;
    float x = W_LOAD(ok ? base + k + i : base);
    v[i] = ok ? x : 0.0;
  }
  return v;
}

void main() {
  uint l = gl_SubgroupInvocationID;
  uint m0 = gl_WorkGroupID.y * (SG * TM), n0 = gl_WorkGroupID.x * (SG * TN);
  uint abase[TM], wbase[TN];
  [[unroll]] for (uint i = 0; i < TM; i++) abase[i] = pc.a_off + min(m0 + i * SG + l, pc.M - 1) * pc.lda;
  [[unroll]] for (uint j = 0; j < TN; j++) wbase[j] = pc.w_off + min(n0 + j * SG + l, pc.N - 1) * pc.ldw;

  float acc[TM * SG * TN]; // acc[(i * SG + r) * TN + j]: row m0 + i*SG + r, column n0 + j*SG + l
  [[unroll]] for (uint i = 0; i < TM * SG * TN; i++) acc[i] = 0.0;

  for (uint k = 0; k < pc.K; k += 4) {
    vec4 av[TM], wv[TN];
    [[unroll]] for (uint i = 0; i < TM; i++) av[i] = load_a(abase[i], k);
    [[unroll]] for (uint j = 0; j < TN; j++) wv[j] = load_w(wbase[j], k);
    // the 4 k of a step innermost: each accumulator (they outnumber the CPU's registers and
    // live on its stack) is loaded and stored once per step, not once per k; same sum order
    [[unroll]] for (uint i = 0; i < TM; i++)
      [[unroll]] for (uint r = 0; r < SG; r++) {
        vec4 x = subgroupShuffle(av[i], r); // A[m0 + i*SG + r][k .. k + 3]
        [[unroll]] for (uint j = 0; j < TN; j++) {
          float t = acc[(i * SG + r) * TN + j];
          [[unroll]] for (uint kk = 0; kk < 4; kk++) t = fma(x[kk], wv[j][kk], t);
          acc[(i * SG + r) * TN + j] = t;
        }
      }
  }

  bool add_bias = (pc.flags & DRD_GEMM_BIAS) != 0, accumulate = (pc.flags & DRD_GEMM_ACCUMULATE) != 0;
  [[unroll]] for (uint j = 0; j < TN; j++) {
    uint n = n0 + j * SG + l;
    if (n >= pc.N) continue;
    float b = 0.0;
    if (add_bias) b = bias[pc.bias_off + n]; // a branch, not a select: without bias, binding 2 is a stand-in
    [[unroll]] for (uint i = 0; i < TM; i++)
      [[unroll]] for (uint r = 0; r < SG; r++) {
        uint m = m0 + i * SG + r;
        if (m < pc.M) {
          uint ci = pc.c_off + m * pc.ldc + n;
          float v = acc[(i * SG + r) * TN + j] + b;
          if (accumulate) v += c[ci];
          c[ci] = v;
        }
      }
  }
}
