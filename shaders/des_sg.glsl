// DES grouped GEMMs for CPU Vulkan implementations (lavapipe): des_common.glsl's products,
// computed the way gemm_sg_common.glsl computes a dense GEMM (see there why: a CPU device runs
// a subgroup as the lanes of one SIMD register, so shared-memory reads at per-lane addresses
// and barriers are what the tiled kernel spends its time on). Included by
// des_gemm{1,2}_sg_{f32,f16p}.comp after des_common.glsl with DES_SG defined.
//
// The workgroup is one subgroup. A tile is BM = TM * SG rows (token, slot pairs of one expert)
// by BN = TN * SG output columns: lane l loads 4 consecutive k of rows i * SG + l and of weight
// rows j * SG + l straight from the buffers, the A values reach the other lanes through
// subgroupShuffle with a constant lane (not subgroupBroadcast: gemm_sg_common.glsl says why),
// and lane l accumulates rows (i * SG + r) x columns j * SG + l. The sum over k runs in
// ascending order with one fma per term, as in the tiled kernels, so both give the same bits
// (test_kernel_des compares them). Loops over constants are [[unroll]]ed so that the
// accumulators stay in registers.
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_shuffle : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint SG = 8;       // the subgroup size: the workgroup is one subgroup
layout(constant_id = 1) const uint TM = 2;       // groups of SG rows per tile
layout(constant_id = 2) const uint TN = 4;       // columns per invocation
layout(constant_id = 3) const bool VEC4 = false; // K and every element offset multiples of 4

const uint WG = SG, BM = SG * TM, BN = SG * TN;
#if DES_GEMM_MODE == 1
shared uint tok_s[BM];
#endif
#include "des_gemm_io.glsl"

void main() {
  const uint l = gl_SubgroupInvocationID;
  if (!des_tile_begin()) return;

  float acc1[TM * SG * TN]; // acc1[(i * SG + r) * TN + j]: row i * SG + r, column j * SG + l
#if DES_GEMM_MODE == 1
  float acc2[TM * SG * TN];
#endif
  [[unroll]] for (uint i = 0; i < TM * SG * TN; i++) {
    acc1[i] = 0.0;
#if DES_GEMM_MODE == 1
    acc2[i] = 0.0;
#endif
  }

  for (uint k = 0; k < pc.K; k += 4) {
    vec4 av[TM], wv1[TN], wv2[TN];
    [[unroll]] for (uint i = 0; i < TM; i++) av[i] = load_a(i * SG + l, k);
    [[unroll]] for (uint j = 0; j < TN; j++) load_w(j * SG + l, k, wv1[j], wv2[j]);
    // the 4 k of a step innermost, as gemm_sg_common.glsl (why there); same sum order
    [[unroll]] for (uint i = 0; i < TM; i++)
      [[unroll]] for (uint r = 0; r < SG; r++) {
        const vec4 x = subgroupShuffle(av[i], r); // A[row i * SG + r][k ..]
        [[unroll]] for (uint j = 0; j < TN; j++) {
          const uint a = (i * SG + r) * TN + j;
          float t1 = acc1[a];
#if DES_GEMM_MODE == 1
          float t2 = acc2[a];
#endif
          [[unroll]] for (uint kk = 0; kk < 4; kk++) {
            t1 = fma(x[kk], wv1[j][kk], t1);
#if DES_GEMM_MODE == 1
            t2 = fma(x[kk], wv2[j][kk], t2);
#endif
          }
          acc1[a] = t1;
#if DES_GEMM_MODE == 1
          acc2[a] = t2;
#endif
        }
      }
  }

  [[unroll]] for (uint j = 0; j < TN; j++) {
    const uint n = n0 + j * SG + l;
    if (n >= pc.n_end) continue;
    [[unroll]] for (uint i = 0; i < TM; i++)
      [[unroll]] for (uint r = 0; r < SG; r++) {
        const uint row = row0 + i * SG + r, a = (i * SG + r) * TN + j;
#if DES_GEMM_MODE == 1
        o_mat[row * pc.N + n] = des_silu(acc1[a]) * acc2[a];
#else
        o_mat[row * pc.N + n] = acc1[a];
#endif
      }
  }
}
