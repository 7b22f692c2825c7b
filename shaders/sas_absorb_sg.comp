#version 450
// SAS soft absorption (SPEC 8) for CPU Vulkan implementations (lavapipe): what
// sas_absorb_f32.comp computes, D_r <- (1 - gamma) D_r + gamma * sum_v softmax_v(D_r . E_v / tau)
// E_v, with the same bindings, splits and outputs (runtime/ops_sas.c), without shared memory
// or barriers, as attn_hsa_sg.comp does attention (see there why): workgroups of SG
// invocations (the subgroup size), each owning R query rows. A step takes BC <= SG vocabulary
// entries: lane j loads entry j straight from E (one loop over the lanes per vec4 for the
// step's BC entries), and every lane gets each entry by subgroupShuffle with a constant index
// (a register splat on lavapipe), for its logits and again for the weighted sum. An online
// softmax (natural exp, as sas_absorb_f32.comp) over the steps keeps m, l and the running sum
// per row; each logit is the same fma chain over the columns in ascending order as there.
//
// Compile time counts as much as run time here: llvmpipe compiles a kernel on its first use
// (then caches it on disk), and Mesa 22.3's turns every load or store instruction whose address
// may differ between lanes into a loop over the lanes with branches per component. With R = 8
// rows of 64 columns, one scalar access per column compiled for 25 s (2026-12-05). So: one
// vector access per 4 columns where the offsets allow (ALIGNED), E loaded once per step (every
// lane reading the same entry, twice per step, compiled for 4 s), and only the output path this
// dispatch takes (DIRECT).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_shuffle : require
#include "pc_sampler.h"

// ids as sas_tile.glsl's where they mean the same (id 1, its CT, is not used)
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint SG = 8;  // invocations per workgroup
layout(constant_id = 2) const uint R = 8;   // rows per invocation: row0 + i * SG + lane
layout(constant_id = 3) const uint BC = 4;  // vocabulary entries per online-softmax step, <= SG
layout(constant_id = 4) const uint DE = 16; // embedding width
layout(constant_id = 5) const uint ETYPE = DRD_SAMPLER_E_F32;
layout(constant_id = 6) const bool DIRECT = false;  // one split: D updated in place, no states
layout(constant_id = 7) const bool ALIGNED = false; // DE % 4 == 0, e_off, d_off, s_off % 4 == 0

const uint DE4 = (DE + 3) / 4; // vec4s per row, the last zero-padded

layout(std430, binding = 0) readonly buffer Emb { uint e_words[]; }; // [V, DE] f32, or f16 pairs
layout(std430, binding = 0) readonly buffer Emb4 { uvec4 e_f32x4[]; }; // the same, as 4 f32 (ALIGNED)
layout(std430, binding = 0) readonly buffer Emb2 { uvec2 e_f16x4[]; }; // the same, as 4 f16 (ALIGNED)
// D [rows, DE] f32 from d_off, updated in place when direct; the splits' states [rows, n_splits,
// DRD_SAS_STATE_FLOATS(DE)] f32 from s_off (unused when direct)
layout(std430, binding = 1) buffer Dbuf { float d[]; };
layout(std430, binding = 1) buffer Dbuf4 { vec4 d4[]; };
layout(std430, binding = 2) writeonly buffer St { float st[]; };
layout(std430, binding = 2) writeonly buffer St4 { vec4 st4[]; }; // states start on a vec4 when ALIGNED
layout(push_constant) uniform Push { drd_pc_sas pc; };

#define NEG_BIG (-3.40282347e38) // as sas_absorb_f32.comp

float e_load(uint i) { // element i of E's binding
  if (ETYPE == DRD_SAMPLER_E_F32) return uintBitsToFloat(e_words[i]);
  return unpackHalf2x16(e_words[i >> 1])[i & 1u];
}

// columns 4q .. 4q + 3 of vocabulary entry v of this binding (zeros past DE)
vec4 e_row4(uint v, uint q) {
  vec4 e = vec4(0.0);
  const uint base = pc.e_off + v * DE + 4 * q;
  if (ALIGNED) {
    if (ETYPE == DRD_SAMPLER_E_F32) return uintBitsToFloat(e_f32x4[base >> 2]);
    const uvec2 w = e_f16x4[base >> 2];
    return vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y));
  }
  [[unroll]] for (uint u = 0; u < 4; u++)
    if (4 * q + u < DE) e[u] = e_load(base + u);
  return e;
}

void main() {
  const uint lane = gl_LocalInvocationID.x;
  const uint row0 = gl_WorkGroupID.x * (SG * R);
  const uint split = gl_WorkGroupID.y;
  const uint vb = split * pc.split_len;
  const uint ve = min(vb + pc.split_len, pc.v_count);

  vec4 dv[R][DE4], acc[R][DE4];
  float m[R], l[R];
  [[unroll]] for (uint i = 0; i < R; i++) {
    const uint r = row0 + i * SG + lane;
    [[unroll]] for (uint q = 0; q < DE4; q++) {
      vec4 v = vec4(0.0);
      if (ALIGNED) {
        if (r < pc.rows) v = d4[(pc.d_off + r * DE) / 4 + q];
      } else {
        [[unroll]] for (uint u = 0; u < 4; u++)
          if (r < pc.rows && 4 * q + u < DE) v[u] = d[pc.d_off + r * DE + 4 * q + u];
      }
      dv[i][q] = v;
      acc[i][q] = vec4(0.0);
    }
    m[i] = NEG_BIG;
    l[i] = 0.0;
  }

  for (uint v0 = vb; v0 < ve; v0 += BC) {
    // lane j < BC loads entry v0 + j (past the split, or past BC: a real entry, masked or unread)
    const uint own = min(v0 + min(lane, BC - 1u), ve - 1u);
    vec4 el[DE4];
    [[unroll]] for (uint q = 0; q < DE4; q++) el[q] = e_row4(own, q);
    float z[R][BC];
    [[unroll]] for (uint j = 0; j < BC; j++) {
      float t[R];
      [[unroll]] for (uint i = 0; i < R; i++) t[i] = 0.0;
      [[unroll]] for (uint q = 0; q < DE4; q++) {
        const vec4 e = subgroupShuffle(el[q], j);
        [[unroll]] for (uint i = 0; i < R; i++) {
          t[i] = fma(dv[i][q].x, e.x, t[i]);
          t[i] = fma(dv[i][q].y, e.y, t[i]);
          t[i] = fma(dv[i][q].z, e.z, t[i]);
          t[i] = fma(dv[i][q].w, e.w, t[i]);
        }
      }
      [[unroll]] for (uint i = 0; i < R; i++) z[i][j] = v0 + j < ve ? t[i] * pc.inv_tau : NEG_BIG;
    }
    [[unroll]] for (uint i = 0; i < R; i++) {
      float tm = NEG_BIG;
      [[unroll]] for (uint j = 0; j < BC; j++) tm = max(tm, z[i][j]);
      const float mn = max(m[i], tm); // a real logit: the step's first entry is in the split
      const float scale = exp(m[i] - mn); // 0 on the first step (m = -FLT_MAX)
      m[i] = mn;
      l[i] *= scale;
      [[unroll]] for (uint q = 0; q < DE4; q++) acc[i][q] *= scale;
      [[unroll]] for (uint j = 0; j < BC; j++) {
        z[i][j] = exp(z[i][j] - mn); // masked entries: 0
        l[i] += z[i][j];
      }
    }
    // the step's BC entries innermost: each accumulator (on the CPU's stack, as in
    // gemm_sg_common.glsl) is loaded and stored once per step; the same fmas in the same order
    [[unroll]] for (uint q = 0; q < DE4; q++) {
      vec4 e[BC];
      [[unroll]] for (uint j = 0; j < BC; j++) e[j] = subgroupShuffle(el[q], j); // masked: weight 0
      [[unroll]] for (uint i = 0; i < R; i++) {
        vec4 a = acc[i][q];
        [[unroll]] for (uint j = 0; j < BC; j++) a = fma(vec4(z[i][j]), e[j], a);
        acc[i][q] = a;
      }
    }
  }

  [[unroll]] for (uint i = 0; i < R; i++) {
    const uint r = row0 + i * SG + lane;
    if (r >= pc.rows) continue;
    if (DIRECT) {
      const float inv = 1.0 / l[i];
      [[unroll]] for (uint q = 0; q < DE4; q++) {
        const vec4 o = (1.0 - pc.gamma) * dv[i][q] + pc.gamma * (acc[i][q] * inv);
        if (ALIGNED) {
          d4[(pc.d_off + r * DE) / 4 + q] = o;
        } else {
          [[unroll]] for (uint u = 0; u < 4; u++)
            if (4 * q + u < DE) d[pc.d_off + r * DE + 4 * q + u] = o[u];
        }
      }
    } else {
      const uint base = pc.s_off + (r * pc.n_splits + pc.split_first + split) * DRD_SAS_STATE_FLOATS(DE);
      if (ALIGNED) {
        st4[base / 4] = vec4(m[i], l[i], 0.0, 0.0);
        [[unroll]] for (uint q = 0; q < DE4; q++) st4[(base + DRD_SAS_STATE_ACC) / 4 + q] = acc[i][q];
      } else {
        st[base] = m[i];
        st[base + 1] = l[i];
        [[unroll]] for (uint q = 0; q < DE4; q++)
          [[unroll]] for (uint u = 0; u < 4; u++)
            if (4 * q + u < DE) st[base + DRD_SAS_STATE_ACC + 4 * q + u] = acc[i][q][u];
      }
    }
  }
}
