#version 450
// SAS soft absorption (SPEC 8) on cooperative matrices: the op of sas_absorb_f32.comp (same
// bindings, push constants, split states and merge kernel) with the logits S = D E_tile^T
// and the weighted sum P E_tile on f16 * f16 + f32 matrices (sas_cm.glsl: D rows and E
// rounded to f16 once; read that first). Per tile, each subgroup:
//   1. computes its CM x VT logits into its rows of Ss;
//   2. runs the online softmax on them (T invocations per row, log domain with inv_tau as
//      the scalar kernel): tile maximum, new running max mn, rescale factor alpha =
//      exp(m - mn), P = exp(z - mn) rounded to f16 into Ps; l sums the rounded P (read back
//      from Ps), so the result normalises exactly the weights the product used;
//   3. for each block of CN embedding columns, multiplies P by the tile's E block into a
//      fresh accumulator, stores it to its scratch, and folds it into the running sum:
//      acc = acc * alpha[row] + y.
// The running sum cannot stay in cooperative matrices: KHR leaves the owner of an
// accumulator element unknown, so no per-row rescale can happen in registers. It lives in
// plain registers instead, in a layout this shader chooses: invocation `lane` owns elements
// e = lane + i * SG (i < EPL) of every CM x CN block, i.e. row e / CN, column e % CN, read
// back from the row-major scratch. Two scratch slots alternate, so one subgroup barrier per
// block suffices (the next store to a slot comes after the barrier that follows its fold).
// With one split (pc.direct) the rows are blended here, D <- (1 - gamma) D + gamma acc / l
// with D the f32 input; otherwise (m, l, acc[DE]) go to the scratch for sas_merge_f32.comp.
#extension GL_GOOGLE_include_directive : require

layout(std430, binding = 1) buffer Dbuf { float d[]; };          // [rows, DE] f32 from d_off, updated in place when direct
layout(std430, binding = 2) writeonly buffer St { float st[]; }; // [rows, n_splits, DE + 2] f32 from s_off (unused when direct)

#include "sas_cm.glsl"

// P fragments: loaded once per tile into registers p0..p7 (GPUs), or per column block in a
// loop (CPU devices: lavapipe compiles each written-out MulAdd into dozens of cross-lane
// reductions, and 128 of them took ~28 s to compile at de = 128 against ~8 s for the loop)
layout(constant_id = 10) const bool PREG = true;

const uint NB = DEP / CN;      // column blocks of the running sum (<= 16)
const uint KP = VT / CK;       // P fragments per tile (<= 8)
const uint EPL = CM * CN / SG; // running-sum elements per invocation and block (<= 8)
const uint SP4 = (VT + 8) / 4; // Ps row stride in f16vec4

shared f16vec4 Ps[BR * SP4]; // the tile's probabilities [BR, VT] f16
shared float alpha_s[BR];    // this tile's rescale factor per row
shared float l_s[BR];        // at the end: the row sums

// As sas_absorb_f32.comp: the most negative float rather than -inf, so exp() never sees an
// infinite argument and m - mn is never inf - inf.
#define NEG_BIG (-3.40282347e38)

// Elements 4g .. 4g+3 (of EPL) of this invocation in scratch slot `slot` of its subgroup.
vec4 y_load(uint g, uint slot) {
  vec4 v = vec4(0.0);
  [[unroll]] for (uint u = 0; u < 4u; u++) {
    uint i = 4u * g + u, e = gl_SubgroupInvocationID + i * SG;
    if (i < EPL) {
      uint rr = gl_SubgroupID * CM + e / CN, cc = slot * CN + e % CN;
      v[u] = Ss[rr * SS4 + cc / 4u][cc % 4u];
    }
  }
  return v;
}

// Per-row values of this invocation's elements 4g .. 4g+3 (alpha_s or l_s).
vec4 row_vals(uint g, bool l_of_row) {
  vec4 v = vec4(0.0);
  [[unroll]] for (uint u = 0; u < 4u; u++) {
    uint i = 4u * g + u, e = gl_SubgroupInvocationID + i * SG;
    if (i < EPL) {
      uint rr = gl_SubgroupID * CM + e / CN;
      v[u] = l_of_row ? l_s[rr] : alpha_s[rr];
    }
  }
  return v;
}

// Elements 4g .. 4g+3 of column block j of the running sum: blended into D, or to the scratch.
void sas_out(vec4 a, vec4 lv, uint g, uint j, uint row0, uint split) {
  [[unroll]] for (uint u = 0; u < 4u; u++) {
    uint i = 4u * g + u, e = gl_SubgroupInvocationID + i * SG;
    uint row = row0 + gl_SubgroupID * CM + e / CN, col = j * CN + e % CN;
    if (i >= EPL || row >= pc.rows || col >= DE) continue;
    if (pc.direct != 0) {
      uint di = pc.d_off + row * DE + col;
      d[di] = (1.0 - pc.gamma) * d[di] + pc.gamma * (a[u] * (1.0 / lv[u]));
    } else {
      st[pc.s_off + (row * pc.n_splits + pc.split_first + split) * (DE + 2) + 2 + col] = a[u];
    }
  }
}

#define SAS_EACH8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define SAS_EACH8_J(X, j) X(j, 0) X(j, 1) X(j, 2) X(j, 3) X(j, 4) X(j, 5) X(j, 6) X(j, 7)
#define SAS_ACC_DECL(j) vec4 a##j##_0 = vec4(0.0), a##j##_1 = vec4(0.0);
#define SAS_P_DECL(k) CM_A p##k;
#define SAS_P_LOAD(k) if (k < KP) coopMatLoad(p##k, Ps, sr0 * SP4 + k * (CK / 4u), SP4, gl_CooperativeMatrixLayoutRowMajor);
// E block as the B operand read row-major: element (k = entry v, n = column c) at Es[v][c]
#define SAS_PV_K(j, k)                                                                                   \
  if (k < KP) {                                                                                         \
    coopMatLoad(eb, Es, k * CK * SE4 + j * (CN / 4u), SE4, gl_CooperativeMatrixLayoutRowMajor);         \
    y = coopMatMulAdd(p##k, eb, y);                                                                     \
  }
#define SAS_PV_BLOCK(j)                                                                                  \
  if (j < NB) {                                                                                         \
    CM_C y = CM_C(0.0);                                                                                 \
    CM_B eb;                                                                                            \
    if (PREG) {                                                                                         \
      SAS_EACH8_J(SAS_PV_K, j)                                                                          \
    } else {                                                                                            \
      for (uint k = 0; k < KP; k++) {                                                                   \
        CM_A pa;                                                                                        \
        coopMatLoad(pa, Ps, sr0 * SP4 + k * (CK / 4u), SP4, gl_CooperativeMatrixLayoutRowMajor);       \
        coopMatLoad(eb, Es, k * CK * SE4 + j * (CN / 4u), SE4, gl_CooperativeMatrixLayoutRowMajor);     \
        y = coopMatMulAdd(pa, eb, y);                                                                   \
      }                                                                                                 \
    }                                                                                                   \
    coopMatStore(y, Ss, sr0 * SS4 + (j % 2u) * (CN / 4u), SS4, gl_CooperativeMatrixLayoutRowMajor);     \
    sync_subgroup();                                                                                    \
    a##j##_0 = a##j##_0 * al0 + y_load(0, j % 2u);                                                      \
    if (EPL > 4u) a##j##_1 = a##j##_1 * al1 + y_load(1, j % 2u);                                        \
  }
#define SAS_OUT(j)                                                                                       \
  if (j < NB) {                                                                                         \
    sas_out(a##j##_0, lv0, 0, j, row0, split);                                                          \
    if (EPL > 4u) sas_out(a##j##_1, lv1, 1, j, row0, split);                                            \
  }

void main() {
  const uint sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
  const uint row0 = gl_WorkGroupID.x * BR, split = gl_WorkGroupID.y;
  const uint vb = split * pc.split_len, ve = min(vb + pc.split_len, pc.v_count);
  const uint sr0 = sg * CM;                              // the subgroup's first row in the block
  const uint t = lane % T, srow = sr0 + lane / T;        // softmax: phase and row

  SAS_LOAD_QUERY

  float m = NEG_BIG, l = 0.0; // running max (scaled logits) and this invocation's share of the sum
  SAS_EACH16(SAS_ACC_DECL)
  SAS_EACH8(SAS_P_DECL)

  for (uint v0 = vb; v0 < ve; v0 += VT) {
    barrier(); // the previous tile (or the query staging) has been read
    sas_stage_tile(v0, ve);
    barrier();

    SAS_LOGITS
    sync_subgroup();

    // online softmax: the T invocations of a row end with the same (exact) maximum
    float mx = NEG_BIG;
    for (uint g = 0; g < CG; g++) {
      uint q = t + T * g;
      vec4 z = Ss[srow * SS4 + q] * pc.inv_tau;
      [[unroll]] for (uint u = 0; u < 4u; u++)
        if (v0 + 4u * q + u < ve) mx = max(mx, z[u]);
    }
    for (uint w = 1u; w < T; w <<= 1) mx = max(mx, subgroupShuffleXor(mx, w));
    const float mn = max(m, mx); // a real logit: every tile holds at least one entry of the split
    const float alpha = exp(m - mn); // 0 on the first tile
    m = mn;
    l *= alpha;
    for (uint g = 0; g < CG; g++) {
      uint q = t + T * g;
      vec4 z = Ss[srow * SS4 + q] * pc.inv_tau, p = vec4(0.0);
      [[unroll]] for (uint u = 0; u < 4u; u++)
        if (v0 + 4u * q + u < ve) p[u] = exp(z[u] - mn);
      Ps[srow * SP4 + q] = f16vec4(p);
    }
    if (t == 0u) alpha_s[srow] = alpha;
    sync_subgroup(); // P and alpha are visible; the logits have been read (the scratch is free)
    // l sums the f16 P the product reads, loaded back from Ps: NVIDIA's compiler (driver 580)
    // dropped the round trip of float(f16vec4(p)) and summed the unrounded p, so a row whose
    // weight is all on one token (p = exp(z - mn) = 1 - 2^-16 after an FMA contraction,
    // rounded to 1 for the product) came out scaled by 1 + 2^-16 (test_kernel_sas on an H200).
    for (uint g = 0; g < CG; g++) {
      vec4 ph = vec4(Ps[srow * SP4 + t + T * g]);
      l += ph.x;
      l += ph.y;
      l += ph.z;
      l += ph.w;
    }

    const vec4 al0 = row_vals(0, false), al1 = row_vals(1, false);
    if (PREG) {
      SAS_EACH8(SAS_P_LOAD)
    }
    SAS_EACH16(SAS_PV_BLOCK)
  }

  // the row's sum: its T partial sums (the butterfly gives all of them the same bits)
  for (uint w = 1u; w < T; w <<= 1) l += subgroupShuffleXor(l, w);
  if (t == 0u) {
    l_s[srow] = l;
    uint row = row0 + srow;
    if (pc.direct == 0 && row < pc.rows) {
      uint base = pc.s_off + (row * pc.n_splits + pc.split_first + split) * (DE + 2);
      st[base] = m;
      st[base + 1] = l;
    }
  }
  sync_subgroup();
  const vec4 lv0 = row_vals(0, true), lv1 = row_vals(1, true);
  SAS_EACH16(SAS_OUT)
}
