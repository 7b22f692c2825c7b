#version 450
// Rounding (SPEC 8) on cooperative matrices: the op of round_argmax_f32.comp (same bindings,
// push constants, split states and merge kernel) with the logits x E_tile^T on f16 * f16 +
// f32 matrices (sas_cm.glsl: x rows and E rounded to f16; read that first), stored to a shared
// f32 scratch that T = SG / CM invocations per row scan. Each row keeps a running (best
// logit, lowest id) over them: an invocation meets its ids in ascending order (column groups
// t, t + T, ... of each tile, tiles in order), so a strict > keeps the lowest id of a tie;
// the T invocations of a row are then merged with the explicit (value, -id) rule. Duplicated
// embedding rows give bit-identical logits (same f16 operands, same products and sums), so
// exact ties stay exact here. NaN logits never win; a row with no logit above -inf gets
// token 0, as in the scalar kernel.
#extension GL_GOOGLE_include_directive : require

layout(std430, binding = 1) readonly buffer X { float d[]; };    // [rows, DE] f32 from d_off (x)
layout(std430, binding = 2) writeonly buffer St { float st[]; }; // [rows, n_splits, 2] (value, id bits) from s_off
layout(std430, binding = 3) writeonly buffer Tok { int tok[]; }; // [rows] int32 from t_off (when direct)

#include "sas_cm.glsl"

const uint T = SG / CM;       // invocations per argmax row (lane = row * T + phase)
const uint SS = VT + 4;       // Ss row stride in floats
const uint SS4 = SS / 4;
const uint CG = VT / (4 * T); // column groups of 4 per invocation and tile

shared vec4 Ss[BR * SS4]; // the tile's logits [BR, VT] f32, each subgroup its own rows

// The subgroup's logits of the tile in Es, f32, into its rows of Ss (then sync_subgroup()).
// E is the B operand read column-major: element (k = column c, n = entry v) at Es[v][c].
#define SAS_LOGIT_K(k)                                                                                   \
  if (k < QK) {                                                                                         \
    coopMatLoad(eb, Es, j * CN * SE4 + k * (CK / 4u), SE4, gl_CooperativeMatrixLayoutColumnMajor);      \
    s = coopMatMulAdd(q##k, eb, s);                                                                     \
  }
#define SAS_LOGITS                                                                                      \
  for (uint j = 0; j < VT / CN; j++) {                                                                  \
    CM_C s = CM_C(0.0);                                                                                 \
    CM_B eb;                                                                                            \
    SAS_EACH16(SAS_LOGIT_K)                                                                             \
    coopMatStore(s, Ss, sr0 * SS4 + j * (CN / 4u), SS4, gl_CooperativeMatrixLayoutRowMajor);            \
  }

#define NEG_INF uintBitsToFloat(0xff800000u)
const uint NONE = 0xffffffffu;

void main() {
  const uint sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
  const uint row0 = gl_WorkGroupID.x * BR, split = gl_WorkGroupID.y;
  const uint vb = split * pc.split_len, ve = min(vb + pc.split_len, pc.v_count);
  const uint sr0 = sg * CM;
  const uint t = lane % T, srow = sr0 + lane / T;

  SAS_LOAD_QUERY

  float bv = NEG_INF;
  uint bi = NONE;
  for (uint v0 = vb; v0 < ve; v0 += VT) {
    uvec4 w[LTR];
    sas_fetch_tile(v0, ve, w); // in flight while the workgroup meets
    barrier(); // the previous tile (or the query staging) has been read
    sas_put_tile(w, v0, ve);
    barrier();

    SAS_LOGITS
    sync_subgroup();

    // branch-free selects, ids ascending within the invocation
    for (uint g = 0; g < CG; g++) {
      uint q = t + T * g;
      vec4 z = Ss[srow * SS4 + q];
      [[unroll]] for (uint u = 0; u < 4u; u++) {
        uint v = v0 + 4u * q + u;
        bool better = v < ve && z[u] > bv;
        bv = better ? z[u] : bv;
        bi = better ? v : bi;
      }
    }
    // the next tile's logits overwrite Ss only after its two workgroup barriers
  }

  // merge the T invocations of the row (symmetric rule: all of them end with the same pair)
  for (uint w = 1u; w < T; w <<= 1) {
    float ov = subgroupShuffleXor(bv, w);
    uint oi = subgroupShuffleXor(bi, w);
    if (oi != NONE && (bi == NONE || ov > bv || (ov == bv && oi < bi))) {
      bv = ov;
      bi = oi;
    }
  }
  const uint row = row0 + srow;
  if (t != 0u || row >= pc.rows) return;
  const uint vg0 = pc.split_first * pc.split_len; // global id of this dispatch's entry 0
  if (pc.direct != 0) {
    tok[pc.t_off + row] = bi == NONE ? 0 : int(vg0 + bi);
  } else {
    uint b = pc.s_off + (row * pc.n_splits + pc.split_first + split) * 2;
    st[b] = bv;
    st[b + 1] = uintBitsToFloat(bi == NONE ? NONE : vg0 + bi);
  }
}
