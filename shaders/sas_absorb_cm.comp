#version 450
// SAS soft absorption (SPEC 8) on cooperative matrices: the op of sas_absorb_f32.comp (same
// bindings, push constants, split states and merge kernel) as FlashAttention over the
// vocabulary with the softmax on the accumulators, as attn_hsa_cm.comp does it (sas_cm.glsl:
// D rows and E rounded to f16 once; read that first). Each subgroup streams the workgroup's
// vocabulary tiles in blocks of CN entries; per block:
//   1. the logits s = Q E_block^T (QK multiply-adds) stay in an accumulator, scaled by
//      1 / tau (z, the scalar kernel's units) and masked past the split's end;
//   2. P = exp(z - m), rounded to f16, goes through one of the subgroup's two P slots in
//      shared memory to become A operands (coopmat 1 has no conversion between uses);
//   3. O += P E_block for the DEP / CN column blocks of the running sum, and l += P 1 on the
//      same f16 P (every column of l holds its row's sum), so O / l normalises exactly the
//      weights the product used.
// Row-wise state without knowing which invocation holds which element (KHR leaves it open):
// the reference m is an accumulator too, every element holding its row's m, so exp(z - m)
// and the rescales O *= alpha, l *= alpha are component-wise operations between matrices of
// one type. Only raising m needs rows: `id` holds each element's index r * CN + c, and a
// row's new reference is a subgroupMax over the elements whose id says that row. m is raised
// lazily, when a logit exceeds its row's m by more than SLACK (then every row of the subgroup
// takes its block maximum): P stays <= e^SLACK (f16 holds it) and m <= the row's true
// maximum, so (m, l, O) is a valid split state for sas_merge_f32.comp, whose log-sum-exp
// merge only needs the three to share one reference.
// Two P slots alternate, so one subgroup barrier per block suffices: the next store to a slot
// comes after the barrier of the block in between, which every invocation reaches only after
// its loads from that slot.
// With one split (pc.direct) the rows are blended here, D <- (1 - gamma) D + gamma O / l
// with D the f32 input; otherwise (m, l, O[DE]) go to the scratch.
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_vote : require
#extension GL_KHR_shader_subgroup_arithmetic : require

layout(std430, binding = 1) buffer Dbuf { float d[]; };          // [rows, DE] f32 from d_off, updated in place when direct
layout(std430, binding = 2) writeonly buffer St { float st[]; }; // [rows, n_splits, DRD_SAS_STATE_FLOATS(DE)] f32 from s_off (unused when direct)

#include "sas_cm.glsl"

// natural-log units a logit may exceed its row's m before m is raised: e^SLACK must stay a
// normal f16 (<= 11); 0 raises on every new maximum (plain FlashAttention-2 rescaling)
layout(constant_id = 10) const uint SLACK = 8;

#define CM_CH coopmat<float16_t, gl_ScopeSubgroup, CM, CN, gl_MatrixUseAccumulator>

const uint NB = DEP / CN;  // column blocks of the running sum (<= 16)
const uint SP = CN + 8;    // P slot row stride in halves: ldmatrix rows land in distinct banks
const uint PSLOT = CM * SP;

// Both arrays' sizes are multiples of 16 bytes, so whatever order the driver packs shared
// variables in, every start stays 16-byte aligned for coopMatLoad / coopMatStore (see
// attn_hsa_cm.comp).
shared float16_t Ps[NS * 2 * PSLOT]; // per subgroup: two P slots [CM, SP] f16
shared float cs[NS * CM * CN];       // per subgroup: one accumulator's scratch (ids, outputs)

const float NEG = -1.0e30; // exp(NEG - m) == 0 for any real m, never NaN

// Component-wise helpers: every element of an accumulator is paired with the element of the
// same index in another accumulator (the same matrix position), whoever holds it.
CM_C exp_minus(CM_C z, CM_C m) { // exp(z - m)
  for (int i = 0; i < z.length(); i++) z[i] = exp(z[i] - m[i]);
  return z;
}

// z with NEG in the columns c whose entry c0 + c is at or past ve (id: r * CN + c)
CM_C masked(CM_C z, uint c0, uint ve, CM_C id) {
  for (int i = 0; i < z.length(); i++)
    if (c0 + uint(id[i]) % CN >= ve) z[i] = NEG;
  return z;
}

bool exceeds(CM_C z, CM_C m) { // some element of z above its row's m by more than SLACK
  bool up = false;
  for (int i = 0; i < z.length(); i++) up = up || z[i] > m[i] + float(SLACK);
  return up;
}

// Raises m (every element its row's reference) to the row maxima of z; returns the rescale
// factors alpha = exp(m_old - m_new) in the same layout. Subgroup-uniform control flow.
CM_C raise_rows(inout CM_C m, CM_C z, CM_C id) {
  CM_C mn = m, al = m;
  for (uint r = 0; r < CM; r++) {
    float part = NEG;
    for (int i = 0; i < z.length(); i++)
      if (uint(id[i]) / CN == r) part = max(part, z[i]);
    part = subgroupMax(part);
    for (int i = 0; i < z.length(); i++)
      if (uint(id[i]) / CN == r) mn[i] = max(mn[i], part);
  }
  for (int i = 0; i < al.length(); i++) al[i] = exp(m[i] - mn[i]);
  m = mn;
  return al;
}

// Accumulator x (column block n) out through the subgroup's scratch at sc: blended into D,
// or its split state's columns. Consecutive invocations write consecutive columns.
void emit(CM_C x, uint n, uint sc, uint lane, uint row0, uint split) {
  coopMatStore(x, cs, sc, CN, gl_CooperativeMatrixLayoutRowMajor);
  sync_subgroup();
  for (uint e = lane; e < CM * CN; e += SG) {
    uint row = row0 + gl_SubgroupID * CM + e / CN, col = n * CN + e % CN;
    if (row >= pc.rows || col >= DE) continue;
    if (pc.direct != 0) {
      uint di = pc.d_off + row * DE + col;
      d[di] = (1.0 - pc.gamma) * d[di] + pc.gamma * cs[sc + e];
    } else {
      st[pc.s_off + (row * pc.n_splits + pc.split_first + split) * DRD_SAS_STATE_FLOATS(DE) + DRD_SAS_STATE_ACC + col] = cs[sc + e];
    }
  }
  sync_subgroup(); // read before the next store
}

// Row `lane` (< CM) of x, whose rows hold one value each (m, or l after P 1).
float row_value(CM_C x, uint sc, uint lane) {
  coopMatStore(x, cs, sc, CN, gl_CooperativeMatrixLayoutRowMajor);
  sync_subgroup();
  const float r = lane < CM ? cs[sc + lane * CN] : 0.0;
  sync_subgroup(); // read before the next store
  return r;
}

#define O_DECL(n) CM_C o##n = CM_C(0.0);
// Logits: E as the B operand read column-major, element (k = column c, n = entry v) at Es[v][c]
#define LOGIT_K(k)                                                                                      \
  if (k < QK) {                                                                                         \
    coopMatLoad(eb, Es, j * CN * SE4 + k * (CK / 4u), SE4, gl_CooperativeMatrixLayoutColumnMajor);      \
    s = coopMatMulAdd(q##k, eb, s);                                                                     \
  }
#define O_SCALE(n) if (n < NB) o##n = o##n * al;
// P E: E read row-major, element (k = entry v, n = column c) at Es[v][c]
#define PV_N(n)                                                                                         \
  if (n < NB) {                                                                                         \
    coopMatLoad(eb, Es, (j * CN + kk * CK) * SE4 + n * (CN / 4u), SE4, gl_CooperativeMatrixLayoutRowMajor); \
    o##n = coopMatMulAdd(pa, eb, o##n);                                                                 \
  }
#define O_NORM(n) if (n < NB) o##n = o##n / l;
#define O_EMIT(n) if (n < NB) emit(o##n, n, sc, lane, row0, split);

void main() {
  const uint sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
  const uint row0 = gl_WorkGroupID.x * BR, split = gl_WorkGroupID.y;
  const uint vb = split * pc.split_len, ve = min(vb + pc.split_len, pc.v_count);
  const uint sr0 = sg * CM;            // the subgroup's first row in the block
  const uint sc = sg * CM * CN;        // its scratch in cs
  const uint ps0 = sg * 2u * PSLOT;    // its P slots in Ps

  // Each element's position r * CN + c (exact in f32), in the accumulator layout.
  for (uint e = lane; e < CM * CN; e += SG) cs[sc + e] = float(e);
  sync_subgroup();
  CM_C id;
  coopMatLoad(id, cs, sc, CN, gl_CooperativeMatrixLayoutRowMajor);
  sync_subgroup(); // loaded before the scratch is reused

  // The next tile's loads are in flight while the subgroups compute on this one (an H200 at
  // 16384 rows: 2.64 ms per absorption against 2.94 with the loads issued just before the
  // tile's barrier, docs/performance.md): the workgroups hold many registers, so few of them
  // share an SM to hide the loads' latency.
  uvec4 nxt[LTR]; // a vocabulary tile's raw words
  sas_fetch_tile(vb, ve, nxt); // in flight during the query staging
  SAS_LOAD_QUERY

  SAS_EACH16(O_DECL)
  CM_C m = CM_C(NEG), l = CM_C(0.0); // per row: the reference maximum (z units) and the sum
  const CM_B ones = CM_B(float16_t(1.0));
  uint slot = 0u;

  for (uint v0 = vb; v0 < ve; v0 += VT) {
    barrier(); // the previous tile (or the query staging) has been read
    sas_put_tile(nxt, v0, ve);
    barrier();
    if (v0 + VT < ve) sas_fetch_tile(v0 + VT, ve, nxt);

    // blocks wholly past the split's end are skipped, so every block holds a real entry
    const uint nblk = min(VT, ve - v0 + CN - 1u) / CN;
    for (uint j = 0; j < nblk; j++) {
      CM_C s = CM_C(0.0);
      CM_B eb;
      SAS_EACH16(LOGIT_K)
      s = s * pc.inv_tau;
      if (v0 + (j + 1u) * CN > ve) s = masked(s, v0 + j * CN, ve, id);
      // the first block always raises (m = NEG), with nothing to rescale yet
      if (subgroupAny(exceeds(s, m))) {
        CM_C al = raise_rows(m, s, id);
        SAS_EACH16(O_SCALE)
        l = l * al;
      }
      CM_CH ph = CM_CH(exp_minus(s, m));
      coopMatStore(ph, Ps, ps0 + slot * PSLOT, SP, gl_CooperativeMatrixLayoutRowMajor);
      sync_subgroup(); // P is visible to the whole subgroup
      for (uint kk = 0; kk < CN / CK; kk++) {
        CM_A pa;
        coopMatLoad(pa, Ps, ps0 + slot * PSLOT + kk * CK, SP, gl_CooperativeMatrixLayoutRowMajor);
        l = coopMatMulAdd(pa, ones, l);
        SAS_EACH16(PV_N)
      }
      slot ^= 1u;
    }
  }

  if (pc.direct != 0) {
    SAS_EACH16(O_NORM)
  }
  SAS_EACH16(O_EMIT)
  if (pc.direct == 0) {
    const float mv = row_value(m, sc, lane), lv = row_value(l, sc, lane);
    const uint row = row0 + sr0 + lane;
    if (lane < CM && row < pc.rows) {
      uint base = pc.s_off + (row * pc.n_splits + pc.split_first + split) * DRD_SAS_STATE_FLOATS(DE);
      st[base] = mv;
      st[base + 1] = lv;
    }
  }
}
