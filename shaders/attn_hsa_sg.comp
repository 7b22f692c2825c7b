#version 450
// HSA attention for CPU Vulkan implementations (lavapipe): the same work items, bindings and
// outputs as attn_common.glsl's scalar kernel (runtime/ops_attention.c), without shared memory
// or barriers.
//
// Why: a CPU implementation runs a subgroup's invocations as the lanes of one SIMD register
// and a workgroup's subgroups as coroutines. The scalar kernel's shared K / V tiles cost a
// loop over the lanes for every access whose address differs between lanes, and a coroutine
// switch per subgroup at each of its two barriers per tile.
//
// Here the workgroup is one subgroup of SG invocations (sized so; nothing depends on it but
// speed), each owning R query rows (q and the output in registers, online softmax in the log2
// domain as attn_common.glsl). A step takes BC = SG keys: lane l loads key l's K and V rows
// (one loop over the lanes per vec4, for SG keys), and every lane gets each key in turn by
// subgroupShuffle with a constant index, which lavapipe folds into a register splat, so each
// load feeds SG keys times R rows' FMAs. Loads every lane made of the same key cost Mesa 22.3
// a loop over the lanes each (1 key per loop: 28 ms per layer where this takes 11.5), and
// subgroupBroadcast a loop over the execution mask (91 ms with one row per invocation;
// docs/performance.md, thirty-first and thirty-third sessions). Loops over constants are
// [[unroll]]ed so that the arrays stay in registers.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_shuffle : require

// ids as in attn_common.glsl (the host passes one spec array to either kernel)
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint SG = 8;           // invocations: the subgroup size (one SIMD register)
layout(constant_id = 1) const uint DH = 64;          // head dim (even, <= 128)
layout(constant_id = 3) const uint DP4 = 16;         // vec4s of the head dim, (DH + 3) / 4
layout(constant_id = 4) const uint BC = 8;           // keys per online-softmax step: SG, one per lane
layout(constant_id = 5) const uint BR = 16;          // query rows per workgroup, a multiple of SG
layout(constant_id = 6) const bool ALIGNED4 = false; // DH % 4 == 0: rows may be read as vec4

const uint R = BR / SG;    // rows per invocation: rb = tile * BR + r * SG + lane
const float NEG = -1.0e30; // as attn_common.glsl

#include "attn_io.glsl"

void main() {
  const uint lane = gl_LocalInvocationID.x;
  const uint h = gl_WorkGroupID.z;
  const uvec4 it = items[pc.item_off + gl_WorkGroupID.x];
  const uint a = it.x, c0 = it.y, c1 = it.z, dst = it.w;

  // rows past the block or N run with q = 0 and are never stored
  vec4 qv[R][DP4], acc[R][DP4];
  float m[R], l[R];
  [[unroll]] for (uint r = 0; r < R; r++) {
    const uint rb = gl_WorkGroupID.y * BR + r * SG + lane, i = a * pc.B + rb;
    const bool row_ok = rb < pc.B && i < pc.N;
    [[unroll]] for (uint x = 0; x < DP4; x++) {
      qv[r][x] = row_ok ? load_q(i, h, x) * pc.scale_log2 : vec4(0.0);
      acc[r][x] = vec4(0.0);
    }
    m[r] = NEG;
    l[r] = 0.0;
  }

  for (uint c = c0; c < c1; c++) {
    const uint kb = col[c - pc.col_base] * pc.B;     // the block's first key
    const uint nk = kb < pc.N ? min(pc.B, pc.N - kb) : 0u; // its real keys (the last block may be partial)
    for (uint t0 = 0; t0 < nk; t0 += BC) {
      // lane `lane` loads key t0 + lane (past the block's real keys: its last real key, whose
      // score is masked below); the other lanes get it by subgroupShuffle
      const uint own = kb + min(t0 + lane, nk - 1u);
      vec4 kl[DP4];
      [[unroll]] for (uint x = 0; x < DP4; x++) kl[x] = load_kv(false, own, h, x);
      float s[R][BC], mt[R];
      [[unroll]] for (uint r = 0; r < R; r++) mt[r] = NEG;
      [[unroll]] for (uint j = 0; j < BC; j++) {
        float d[R];
        [[unroll]] for (uint r = 0; r < R; r++) d[r] = 0.0;
        [[unroll]] for (uint x = 0; x < DP4; x++) {
          const vec4 kv = subgroupShuffle(kl[x], j);
          [[unroll]] for (uint r = 0; r < R; r++) d[r] += dot(qv[r][x], kv);
        }
        [[unroll]] for (uint r = 0; r < R; r++) {
          s[r][j] = t0 + j < nk ? d[r] : NEG;
          mt[r] = max(mt[r], s[r][j]);
        }
      }
      // as attn_common.glsl: rescale to the new maximum, then add these keys
      [[unroll]] for (uint r = 0; r < R; r++) {
        const float mn = max(m[r], mt[r]), alpha = exp2(m[r] - mn);
        l[r] *= alpha;
        [[unroll]] for (uint x = 0; x < DP4; x++) acc[r][x] *= alpha;
        m[r] = mn;
        [[unroll]] for (uint j = 0; j < BC; j++) s[r][j] = exp2(s[r][j] - mn);
      }
      vec4 vl[DP4]; // V of the same keys (a masked key's weight is 0)
      [[unroll]] for (uint x = 0; x < DP4; x++) vl[x] = load_kv(true, own, h, x);
      [[unroll]] for (uint j = 0; j < BC; j++) {
        [[unroll]] for (uint r = 0; r < R; r++) l[r] += s[r][j];
        [[unroll]] for (uint x = 0; x < DP4; x++) {
          const vec4 vv = subgroupShuffle(vl[x], j);
          [[unroll]] for (uint r = 0; r < R; r++) acc[r][x] += s[r][j] * vv;
        }
      }
    }
  }

  [[unroll]] for (uint r = 0; r < R; r++) {
    const uint rb = gl_WorkGroupID.y * BR + r * SG + lane, i = a * pc.B + rb;
    if (rb >= pc.B || i >= pc.N) continue;
    [[unroll]] for (uint x = 0; x < DP4; x++) store_o(i, rb, h, dst, x, acc[r][x], l[r]);
    if (dst != 0xffffffffu) slot_ml[(dst * pc.B + rb) * pc.H + h] = vec2(m[r], l[r]);
  }
}
