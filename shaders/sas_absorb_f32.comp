#version 450
// SAS soft absorption (SPEC 8): for each query row r of D,
//   D_r <- (1 - gamma) D_r + gamma * sum_v softmax_v(D_r . E_v / tau) E_v,
// as FlashAttention over the vocabulary: tiles of E are streamed through shared memory with
// an online softmax (running max m and sum l per row, f32) and a running weighted sum acc;
// no rows x V array exists anywhere.
// Workgroup (x, y) = (row block, vocabulary split). With one split (pc.direct) the workgroup
// finishes the rows itself; otherwise it writes its split's unnormalised state
// (m, l, acc[DE]) to the scratch and sas_merge_f32.comp combines the splits.
#extension GL_GOOGLE_include_directive : require

layout(std430, binding = 1) buffer Dbuf { float d[]; };       // [rows, DE] f32 from d_off, updated in place when direct
layout(std430, binding = 2) writeonly buffer St { float st[]; }; // [rows, n_splits, DRD_SAS_STATE_FLOATS(DE)] f32 from s_off (unused when direct)
#define Q_LOAD(i) d[i]

#include "sas_tile.glsl"

shared vec4 sh_p4[RB * (VT / 4)]; // the tile's probabilities, 4 entries per vec4
shared float sh_m[RB * CT];        // per-invocation maxima of the tile's logits; at the end partial sums

// The running maximum starts at, and masked entries are, the most negative float rather than
// -inf: exp() then never sees an infinite argument (and m - mn is never inf - inf), which not
// every driver's exp handles; exp(-FLT_MAX - m) underflows to 0 like exp(-inf).
#define NEG_BIG (-3.40282347e38)

void main() {
  const uint lid = gl_LocalInvocationID.x;
  const uint c = lid % CT, g = lid / CT;
  const uint row0 = gl_WorkGroupID.x * RB;
  const uint split = gl_WorkGroupID.y;
  const uint vb = split * pc.split_len;
  const uint ve = min(vb + pc.split_len, pc.v_count);

  sas_load_rows(row0);

  float m[TR], l[TR];
  vec4 acc[TR * NC4];
  for (uint i = 0; i < TR; i++) {
    m[i] = NEG_BIG;
    l[i] = 0.0; // this invocation's share of the row's sum (its TVC entries of every tile)
  }
  for (uint i = 0; i < TR * NC4; i++) acc[i] = vec4(0.0);

  for (uint v0 = vb; v0 < ve; v0 += VT) {
    barrier(); // the previous tile is no longer read (first pass: sh_d4 is written)
    sas_load_tile(v0, ve);
    barrier();

    sas_logits(g, c);
    // The tile's maximum per row: each invocation's over its entries, then over the CT
    // invocations of the row in column-thread order, so all of them agree on m bit for bit
    // and their partial sums share one scale.
    for (uint i = 0; i < TR; i++) {
      float pm = NEG_BIG;
      for (uint j = 0; j < TVC; j++) {
        float z = v0 + c + j * CT < ve ? lg[i * TVC + j] * pc.inv_tau : NEG_BIG;
        lg[i * TVC + j] = z;
        pm = max(pm, z);
      }
      sh_m[(g * TR + i) * CT + c] = pm;
    }
    barrier();
    for (uint i = 0; i < TR; i++) {
      float tm = NEG_BIG;
      for (uint cc = 0; cc < CT; cc++) tm = max(tm, sh_m[(g * TR + i) * CT + cc]);
      float mn = max(m[i], tm); // a real logit: every tile holds at least one entry of the split
      float scale = exp(m[i] - mn); // 0 on the first tile (m = -FLT_MAX)
      m[i] = mn;
      l[i] *= scale;
      for (uint k = 0; k < NC4; k++) acc[i * NC4 + k] *= scale;
      for (uint j = 0; j < TVC; j++) {
        float p = exp(lg[i * TVC + j] - mn); // masked entries: 0
        l[i] += p;
        uint jj = c + j * CT;
        sh_p4[(g * TR + i) * (VT / 4) + jj / 4][jj % 4] = p;
      }
    }
    barrier();

    // acc[row, cols] += sum_v p[row, v] E[v, cols], 4 entries and 4 columns at a time
    for (uint v4 = 0; v4 < VT / 4; v4++) {
      vec4 pv[TR];
      for (uint i = 0; i < TR; i++) pv[i] = sh_p4[(g * TR + i) * (VT / 4) + v4];
      for (uint u = 0; u < 4; u++)
        for (uint k = 0; k < NC4; k++) {
          uint q = c + k * CT;
          if (q < DE4) {
            vec4 ev = sh_e4[(4 * v4 + u) * ES4 + q];
            for (uint i = 0; i < TR; i++) acc[i * NC4 + k] = fma(vec4(pv[i][u]), ev, acc[i * NC4 + k]);
          }
        }
    }
  }

  // The row's sum: the CT partial sums, added in the same (column-thread) order by everyone.
  barrier();
  for (uint i = 0; i < TR; i++) sh_m[(g * TR + i) * CT + c] = l[i];
  barrier();
  for (uint i = 0; i < TR; i++) {
    float sum = 0.0;
    for (uint cc = 0; cc < CT; cc++) sum += sh_m[(g * TR + i) * CT + cc];
    l[i] = sum;
  }

  for (uint i = 0; i < TR; i++) {
    uint lr = g * TR + i, r = row0 + lr;
    if (r >= pc.rows) break; // rows grow with i
    if (pc.direct != 0) {
      float inv = 1.0 / l[i];
      for (uint k = 0; k < NC4; k++) {
        uint q = c + k * CT;
        if (q >= DE4) break;
        vec4 dv = sh_d4[lr * ES4 + q], a = acc[i * NC4 + k];
        for (uint u = 0; u < 4; u++)
          if (4 * q + u < DE) d[pc.d_off + r * DE + 4 * q + u] = (1.0 - pc.gamma) * dv[u] + pc.gamma * (a[u] * inv);
      }
    } else {
      uint base = pc.s_off + (r * pc.n_splits + pc.split_first + split) * DRD_SAS_STATE_FLOATS(DE);
      if (c == 0) {
        st[base] = m[i];
        st[base + 1] = l[i];
      }
      for (uint k = 0; k < NC4; k++) {
        uint q = c + k * CT;
        if (q >= DE4) break;
        vec4 a = acc[i * NC4 + k];
        for (uint u = 0; u < 4; u++)
          if (4 * q + u < DE) st[base + DRD_SAS_STATE_ACC + 4 * q + u] = a[u];
      }
    }
  }
}
