// DES router logits for CPU Vulkan implementations (lavapipe), shared by
// des_logits_sg_{f32,f16p}.comp (the includer defines DES_WTYPE): what des_logits.glsl computes,
// logits[t, e] = b[t, :] . router[e, :] in f32, without its shared-memory reduction, whose
// per-lane shared accesses and barriers a CPU driver runs as loops over the lanes and coroutine
// switches (3.7 ms per layer for the shipped model's 1K tokens x 4 experts x 256 on Mesa 22.3).
//
// The workgroup is one subgroup. Lane l owns TOKS tokens (tok0 + i * SG + l) and, SG experts at
// a time, loads expert e0 + l's router chunk, which reaches the other lanes by subgroupShuffle
// with a constant index (a register splat on lavapipe; gemm_sg_common.glsl says why not
// subgroupBroadcast). Each logit is one fma chain over the columns in ascending order, so a
// token's bits depend on d only, not on its batch.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_shuffle : require
#include "des_common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint SG = 8;   // the subgroup size: the workgroup is one subgroup
layout(constant_id = 1) const uint TOKS = 4; // tokens per lane

#include "des_logits_bindings.glsl"

// columns c .. c + 3 of token t's row and of expert e's router row: zeros past d (vec: whole
// vec4s, d and both offsets multiples of 4)
vec4 load_b(uint t, uint c, bool vec) {
  const uint base = pc.b_off + t * pc.d;
  if (vec) return b4[(base + c) / 4u];
  vec4 x;
  [[unroll]] for (uint i = 0; i < 4u; i++) {
    const float v = b[base + min(c + i, pc.d - 1u)];
    x[i] = c + i < pc.d ? v : 0.0;
  }
  return x;
}

vec4 load_r(uint e, uint c, bool vec) {
  const uint base = pc.r_off + e * pc.d;
  if (vec) return DES_WLOAD4(rw4, base + c);
  vec4 w;
  [[unroll]] for (uint i = 0; i < 4u; i++) {
    const float v = DES_WLOAD(rw, base + min(c + i, pc.d - 1u));
    w[i] = c + i < pc.d ? v : 0.0;
  }
  return w;
}

void main() {
  const uint lane = gl_SubgroupInvocationID;
  const uint tok0 = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * SG * TOKS;
  const bool vec = pc.d % 4u == 0u && pc.b_off % 4u == 0u && pc.r_off % 4u == 0u;
  for (uint e0 = 0; e0 < pc.E; e0 += SG) {
    float acc[TOKS][SG];
    [[unroll]] for (uint i = 0; i < TOKS; i++)
      [[unroll]] for (uint j = 0; j < SG; j++) acc[i][j] = 0.0;
    const uint own = min(e0 + lane, pc.E - 1u); // past E: a real expert, never stored
    for (uint c = 0; c < pc.d; c += 4u) {
      vec4 x[TOKS];
      [[unroll]] for (uint i = 0; i < TOKS; i++) x[i] = load_b(min(tok0 + i * SG + lane, pc.T - 1u), c, vec);
      const vec4 w = load_r(own, c, vec);
      [[unroll]] for (uint j = 0; j < SG; j++) {
        const vec4 wj = subgroupShuffle(w, j); // expert e0 + j
        [[unroll]] for (uint i = 0; i < TOKS; i++) {
          float a = acc[i][j];
          a = fma(x[i].x, wj.x, a);
          a = fma(x[i].y, wj.y, a);
          a = fma(x[i].z, wj.z, a);
          acc[i][j] = fma(x[i].w, wj.w, a);
        }
      }
    }
    [[unroll]] for (uint i = 0; i < TOKS; i++) {
      const uint t = tok0 + i * SG + lane;
      [[unroll]] for (uint j = 0; j < SG; j++)
        if (t < pc.T && e0 + j < pc.E) logits[t * pc.E + e0 + j] = acc[i][j];
    }
  }
}
