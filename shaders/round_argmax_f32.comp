#version 450
// Rounding (SPEC 8): tokens[r] = argmax_v x_r . E_v, ties to the lowest id, as a running
// argmax over vocabulary tiles streamed through shared memory (the logits are those of
// sas_tile.glsl, f32). Candidates compare as (value, -id): an invocation meets its ids in
// ascending order, so a strict > keeps the lowest id of a tie; the column threads of a row
// are then merged with the explicit (value, -id) rule. NaN logits never win.
// Workgroup (x, y) = (row block, vocabulary split). With one split (pc.direct) the tokens are
// written here; otherwise (best value, best id) per split goes to the scratch and
// round_merge_f32.comp picks among the splits. A row with no logit above -inf (all NaN) gets
// token 0, as in the host reference, whose running maximum starts at (-inf, token 0).
#extension GL_GOOGLE_include_directive : require

layout(std430, binding = 1) readonly buffer X { float x[]; };    // [rows, DE] f32 from d_off
layout(std430, binding = 2) writeonly buffer St { float st[]; }; // [rows, n_splits, 2] (value, id bits) from s_off
layout(std430, binding = 3) writeonly buffer Tok { int tok[]; }; // [rows] int32 from t_off (when direct)
#define Q_LOAD(i) x[i]

#include "sas_tile.glsl"

shared float sh_bv[RB * CT];
shared uint sh_bi[RB * CT];

#define NEG_INF uintBitsToFloat(0xff800000u)
const uint NONE = 0xffffffffu;

void main() {
  const uint lid = gl_LocalInvocationID.x;
  const uint c = lid % CT, g = lid / CT;
  const uint row0 = gl_WorkGroupID.x * RB;
  const uint split = gl_WorkGroupID.y;
  const uint vb = split * pc.split_len;
  const uint ve = min(vb + pc.split_len, pc.v_count);

  sas_load_rows(row0);

  float bv[TR];
  uint bi[TR];
  for (uint i = 0; i < TR; i++) {
    bv[i] = NEG_INF;
    bi[i] = NONE;
  }

  for (uint v0 = vb; v0 < ve; v0 += VT) {
    barrier();
    sas_load_tile(v0, ve);
    barrier();
    sas_logits(g, c);
    // branch-free selects (straight-line code keeps the compiler unrolling and lg in registers)
    for (uint i = 0; i < TR; i++)
      for (uint j = 0; j < TVC; j++) {
        uint v = v0 + c + j * CT;
        bool better = v < ve && lg[i * TVC + j] > bv[i];
        bv[i] = better ? lg[i * TVC + j] : bv[i];
        bi[i] = better ? v : bi[i];
      }
  }

  for (uint i = 0; i < TR; i++) {
    sh_bv[(g * TR + i) * CT + c] = bv[i];
    sh_bi[(g * TR + i) * CT + c] = bi[i];
  }
  barrier();
  if (c != 0) return; // after the last barrier
  // global id of this dispatch's vocabulary entry 0
  const uint vg0 = pc.split_first * pc.split_len;
  for (uint i = 0; i < TR; i++) {
    uint lr = g * TR + i, r = row0 + lr;
    if (r >= pc.rows) break;
    float best = NEG_INF;
    uint id = NONE;
    for (uint cc = 0; cc < CT; cc++) {
      float v = sh_bv[lr * CT + cc];
      uint k = sh_bi[lr * CT + cc];
      if (k != NONE && (id == NONE || v > best || (v == best && k < id))) {
        best = v;
        id = k;
      }
    }
    if (pc.direct != 0) {
      tok[pc.t_off + r] = id == NONE ? 0 : int(vg0 + id);
    } else {
      uint b = pc.s_off + (r * pc.n_splits + pc.split_first + split) * 2;
      st[b] = best;
      st[b + 1] = uintBitsToFloat(id == NONE ? NONE : vg0 + id);
    }
  }
}
