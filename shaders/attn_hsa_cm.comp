#version 450
// HSA attention on cooperative matrices (VK_KHR_cooperative_matrix, f16 operands, f32
// accumulation): FlashAttention-2 with the same work items, bindings, push constants and
// outputs as attn_common.glsl (read that first), so runtime/ops_attention.c only picks the
// pipeline. Chosen where the device has cooperative matrices and the shape suits them.
//
// Workgroup = (work item, row tile, head): NS subgroups, each owning RS = TMS * CM of the
// tile's BR = NS * RS query rows (rows past the block or N are zeros, never stored). Q is
// scaled by scale_log2, rounded to f16 once and kept in registers as A fragments. Per tile of
// BC keys (the listed blocks back to back, as in the scalar kernel; invalid keys masked):
//   1. the workgroup rounds K and V to f16 into shared memory;
//   2. each subgroup computes S = Q K^T for its rows (K read column-major as the B operand)
//      and stores S to its own f32 scratch rows;
//   3. T invocations per row run the online softmax on the scratch (row max through
//      shuffles) and write P = exp2(S - m) as f16; l sums the rounded P (read back from ps),
//      so that out = o / l normalises exactly the weights the product used;
//   4. O += P V on the subgroup's accumulators, which stay in registers across tiles.
// Accumulator elements have no known owner under coopmat 1, so O cannot be rescaled per row
// in registers. Instead a row's reference max m is raised lazily: only when some row of the
// workgroup sees a score above its m + SLACK do all rows raise m to their running max and
// every subgroup rescales its O by alpha = exp2(m_old - m_new) through its shared scratch. P
// stays <= 2^SLACK (f16 holds it) and m <= the row's true max, so m and l are a valid
// (max, sum) pair for the merge kernel, whose log-sum-exp merge only needs o, l and m to
// share one reference. With scores spread like attention's, m settles within the first tiles
// and the round trip is rare (SLACK = 0 gives plain FA-2 rescaling, for tests).
// Subgroup-private steps (2-4 and the output) only need subgroup barriers; the workgroup
// meets three times per key tile: around the K/V loads and to agree on rescaling.
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_vote : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_control_flow_attributes : require
#include "pc_attention.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;   // NS * SG
layout(constant_id = 1) const uint DH = 64;    // head dim (even, <= 128)
layout(constant_id = 2) const uint DHP = 64;   // DH padded with zeros to a multiple of CK and CN
layout(constant_id = 3) const uint BC = 64;    // keys per tile: a multiple of CM, CN, CK and T
layout(constant_id = 4) const uint NS = 4;     // subgroups
layout(constant_id = 5) const uint TMS = 1;    // row tiles (of CM rows) per subgroup
layout(constant_id = 6) const uint SG = 32;    // subgroup size (the workgroup is NS full subgroups)
layout(constant_id = 7) const uint T = 2;      // invocations per row in the softmax (power of two)
layout(constant_id = 8) const uint CM = 16;    // cooperative-matrix shape M x N x K (f16 * f16 + f32)
layout(constant_id = 9) const uint CN = 16;    // CN and CK multiples of 8: fragment offsets stay 16-byte aligned
layout(constant_id = 10) const uint CK = 16;
layout(constant_id = 11) const bool ALIGNED4 = false; // DH % 4 == 0: rows may be read as vec4
layout(constant_id = 12) const uint SLACK = 8;  // log2 units a score may exceed m before m is raised (<= 15)

const uint RS = TMS * CM, BR = NS * RS;  // query rows per subgroup / workgroup
const uint D4 = DHP / 4;                 // head dim in vec4
const uint SK = D4 + 2;                  // K/V row stride in f16vec4: DHP + 8 halves
const uint SS = BC + 4;                  // S scratch row stride in floats
const uint SP = BC + 8;                  // P row stride in halves
const uint KQ = DHP / CK, JS = BC / CN;  // S = Q K^T: k-steps, matrices per row tile
const uint KP = BC / CK, TNO = DHP / CN; // O += P V: k-steps, matrices per row tile
const uint RPL = (RS * T + SG - 1) / SG; // softmax rows per invocation
const uint CPL = BC / T;                 // softmax columns per invocation
const uint LKV = (BC * D4 + WG - 1) / WG; // K/V tile vec4s per invocation
const uint LKW = (LKV + 31u) / 32u;       // words of their key flags
const float NEG = -1.0e30;               // as in attn_common.glsl: exp2(NEG - m) == 0, never NaN

#define CM_A coopmat<float16_t, gl_ScopeSubgroup, CM, CK, gl_MatrixUseA>
#define CM_B coopmat<float16_t, gl_ScopeSubgroup, CK, CN, gl_MatrixUseB>
#define CM_C coopmat<float, gl_ScopeSubgroup, CM, CN, gl_MatrixUseAccumulator>

// Matrices live in separate variables, not arrays (as in cm_gemm.glsl): NVIDIA's compiler
// (driver 580) keeps an array of cooperative matrices in memory whenever a loop bounded by a
// specialization constant indexes it, a local-memory round trip per multiply-add. So the
// per-matrix code is written out by macros for up to 2 row tiles (TMS) and 8 matrices along
// the head dim (KQ for Q, TNO for O; ops_attention.c keeps within that), each guarded by
// its specialization constant so that the driver drops the ones a pipeline does not use.
#define EACH_K(X, t) X(t, 0) X(t, 1) X(t, 2) X(t, 3) X(t, 4) X(t, 5) X(t, 6) X(t, 7)
#define EACH_TK(X) EACH_K(X, 0) EACH_K(X, 1)

layout(std430, binding = 0) readonly buffer Q { float q[]; };     // [rows, H*DH] f32 (q window)
layout(std430, binding = 0) readonly buffer Q4 { vec4 q4[]; };
layout(std430, binding = 1) readonly buffer K { float k[]; };     // [rows, H*DH] f32 (k/v window)
layout(std430, binding = 1) readonly buffer K4 { vec4 k4[]; };
layout(std430, binding = 2) readonly buffer V { float v[]; };     // [rows, H*DH] f32 (k/v window)
layout(std430, binding = 2) readonly buffer V4B { vec4 v4[]; };
layout(std430, binding = 3) writeonly buffer O { float o_out[]; }; // [rows, H*DH] f32 (q window)
layout(std430, binding = 4) readonly buffer Items { uvec4 items[]; }; // (a, c0, c1, slot or ~0)
layout(std430, binding = 5) readonly buffer Col { uint col[]; };       // CSR key blocks (from col_base)
layout(std430, binding = 6) writeonly buffer SO { float slot_o[]; };   // [slots, B, H, DH] f32
layout(std430, binding = 7) writeonly buffer SML { vec2 slot_ml[]; };  // [slots, B, H] (m, l) f32
layout(push_constant) uniform Push { drd_pc_attn pc; };

// Shared memory. coopMatLoad and coopMatStore need 16-byte-aligned addresses (Vulkan: the
// lesser of 16 bytes and a row's natural alignment; rows here are 16 halves or more). The row
// strides and fragment offsets below keep to that (SK even, SS % 4 == 0, SP % 8 == 0, column
// steps of CN and CK), but where each array starts is the driver's choice: SPIR-V gives
// workgroup variables no offsets, and a driver may pack them in any order. So every array's
// size is a multiple of 16 bytes (BC % 8 == 0; the per-row and per-subgroup arrays padded),
// which keeps every start 16-byte aligned whatever the order. On an H200 (driver 580) with
// raise_s[NS] unpadded, every workgroup of 1 or 2 subgroups (4 or 8 bytes of flags) gave
// garbage (errors up to 1e3, NaN) while 4 subgroups (16 bytes) passed: the driver had put a
// small array ahead of the matrix arrays. lavapipe loads from any address, so only a GPU
// shows this.
const uint BRP = (BR + 3u) / 4u * 4u, NSP = (NS + 3u) / 4u * 4u; // padded to 16 bytes
shared f16vec4 ks[BC * SK];  // [BC, SK] K tile (first: Q staging)
shared f16vec4 vs[BC * SK];  // [BC, SK] V tile
shared float ss[BR * SS];    // [BR, SS] S; a subgroup's rows double as its accumulator scratch
shared float16_t ps[BR * SP]; // [BR, SP] P
shared uint kvalid[BC];      // 1 when the tile position holds a real key (< N)
shared float alpha_s[BRP];   // rescale factor of each row (when its subgroup rescales)
shared vec2 ml_s[BRP];       // final (m, l) of each row
shared uint raise_s[NSP];    // per subgroup: some row's max rose by more than SLACK in this tile

// Column group c4 (4 columns) of head h in token row `row`, zeros past DH (as attn_common.glsl).
vec4 load_row(uint base, uint c4, bool kv_v) {
  if (ALIGNED4) {
    if (c4 * 4u >= DH) return vec4(0.0);
    return kv_v ? v4[base / 4u + c4] : k4[base / 4u + c4];
  }
  vec4 r = vec4(0.0);
  for (uint e = 0; e < 4u; e++)
    if (c4 * 4u + e < DH) r[e] = kv_v ? v[base + c4 * 4u + e] : k[base + c4 * 4u + e];
  return r;
}

vec4 load_q(uint row, uint h, uint c4) {
  uint base = pc.q_off + (row - pc.q_row0) * pc.H * DH + h * DH;
  if (ALIGNED4) return c4 * 4u < DH ? q4[base / 4u + c4] : vec4(0.0);
  vec4 r = vec4(0.0);
  for (uint e = 0; e < 4u; e++)
    if (c4 * 4u + e < DH) r[e] = q[base + c4 * 4u + e];
  return r;
}

void sync_subgroup() { // the subgroup's shared writes are visible to all its invocations
  subgroupMemoryBarrierShared();
  subgroupBarrier();
}

// o with row r of the matrix (tile row r0 + r) multiplied by alpha_s[r0 + r], through the
// subgroup's scratch at sc.
CM_C rescaled(CM_C o, uint r0, uint sc, uint lane) {
  coopMatStore(o, ss, sc, CN, gl_CooperativeMatrixLayoutRowMajor);
  sync_subgroup();
  for (uint e = lane; e < CM * CN; e += SG) ss[sc + e] *= alpha_s[r0 + e / CN];
  sync_subgroup();
  coopMatLoad(o, ss, sc, CN, gl_CooperativeMatrixLayoutRowMajor);
  sync_subgroup(); // loaded before the next store overwrites the scratch
  return o;
}

// Writes accumulator o (tile rows r0.., columns c0..) through the scratch, as
// attn_common.glsl does: consecutive invocations write consecutive columns.
void emit(CM_C o, uint r0, uint c0, uint sc, uint lane, uint rt0, uint a, uint h, uint dst) {
  coopMatStore(o, ss, sc, CN, gl_CooperativeMatrixLayoutRowMajor);
  sync_subgroup();
  for (uint e = lane; e < CM * CN; e += SG) {
    uint r = r0 + e / CN, c = c0 + e % CN, rb = rt0 + r, i = a * pc.B + rb;
    if (rb >= pc.B || i >= pc.N || c >= DH) continue;
    if (dst == 0xffffffffu)
      o_out[pc.q_off + (i - pc.q_row0) * pc.H * DH + h * DH + c] = ss[sc + e] * (1.0 / ml_s[r].y);
    else
      slot_o[((dst * pc.B + rb) * pc.H + h) * DH + c] = ss[sc + e];
  }
  sync_subgroup(); // read before the next store
}

// This invocation's elements e = lid + i * WG of the K/V tile at key position p0 (the listed
// blocks c0.. back to back), rounded to f16, and in bit i of ok whether e's key is real (< N:
// the last block may be partial; positions past npos give zeros, their logits masked).
void load_kv(uint p0, uint c0, uint npos, uint h, uint lid, out f16vec4 nk[LKV], out f16vec4 nv[LKV],
             out uint ok[LKW]) {
  [[unroll]] for (uint w = 0; w < LKW; w++) ok[w] = 0u;
  [[unroll]] for (uint i = 0; i < LKV; i++) {
    uint e = lid + i * WG, j = e / D4, c4 = e % D4, p = p0 + j;
    vec4 kk = vec4(0.0), vv = vec4(0.0);
    if (e < BC * D4 && p < npos) {
      uint key = col[c0 + p / pc.B - pc.col_base] * pc.B + p % pc.B;
      if (key < pc.N) {
        uint base = pc.kv_off + (key - pc.kv_row0) * pc.H * DH + h * DH;
        kk = load_row(base, c4, false);
        vv = load_row(base, c4, true);
        ok[i / 32u] |= 1u << (i % 32u);
      }
    }
    nk[i] = f16vec4(kk);
    nv[i] = f16vec4(vv);
  }
}

void main() {
  const uint lid = gl_LocalInvocationID.x, sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
  const uint h = gl_WorkGroupID.z;
  const uvec4 it = items[pc.item_off + gl_WorkGroupID.x];
  const uint a = it.x, c0 = it.y, c1 = it.z, dst = it.w;
  const uint rt0 = gl_WorkGroupID.y * BR; // the tile's first row inside the query block
  const uint sr0 = sg * RS;               // the subgroup's first row inside the tile
  const uint sc = sr0 * SS;               // its scratch: its own rows of ss

  // Q (scaled, f16) into registers (qTK: row tile T, head-dim step K), staged through ks BC
  // rows at a time (a fragment never straddles two rounds: BC is a multiple of CM).
#define Q_DECL(t, k) CM_A q##t##k;
  EACH_TK(Q_DECL)
  for (uint r0 = 0; r0 < BR; r0 += BC) {
    barrier(); // the previous round's fragments are loaded
    for (uint e = lid; e < BC * D4; e += WG) {
      uint r = e / D4, c4 = e % D4, rb = rt0 + r0 + r, i = a * pc.B + rb;
      vec4 x = r0 + r < BR && rb < pc.B && i < pc.N ? load_q(i, h, c4) * pc.scale_log2 : vec4(0.0);
      ks[r * SK + c4] = f16vec4(x);
    }
    barrier();
    // subgroup-uniform conditions
#define Q_LOAD(t, k)                                                                                     \
  if (t < TMS && k < KQ && sr0 + t * CM >= r0 && sr0 + t * CM < r0 + BC)                                 \
    coopMatLoad(q##t##k, ks, (sr0 + t * CM - r0) * SK + k * (CK / 4u), SK, gl_CooperativeMatrixLayoutRowMajor);
    EACH_TK(Q_LOAD)
  }

#define O_DECL(t, j) CM_C o##t##j = CM_C(0.0);
  EACH_TK(O_DECL)
  // Softmax state: invocation (row group rl0, column phase t) owns rows rl0 + x * (SG / T) of
  // its subgroup, columns t + T * y; its l sums its own columns (the T partial sums of a row
  // meet at the end).
  const uint t = lane % T, rl0 = lane / T;
  float m_[RPL], l_[RPL];
  [[unroll]] for (uint x = 0; x < RPL; x++) m_[x] = NEG, l_[x] = 0.0;

  const uint npos = (c1 - c0) * pc.B; // key positions: the listed blocks back to back
  // The next tile's K and V (f16) and key flags wait in registers while the current tile is
  // multiplied out, so the global loads overlap the arithmetic instead of preceding it.
  f16vec4 nk_[LKV], nv_[LKV];
  uint nok[LKW]; // bit i: element lid + i * WG holds a real key
  load_kv(0u, c0, npos, h, lid, nk_, nv_, nok);
  for (uint p0 = 0; p0 < npos; p0 += BC) {
    // 1. The K and V tiles into shared memory (zeros past the keys and past DH).
    barrier(); // the previous tile (or the Q staging) has been consumed
    [[unroll]] for (uint i = 0; i < LKV; i++) {
      uint e = lid + i * WG;
      if (e < BC * D4) {
        uint j = e / D4, c4 = e % D4;
        ks[j * SK + c4] = nk_[i];
        vs[j * SK + c4] = nv_[i];
        if (c4 == 0u) kvalid[j] = (nok[i / 32u] >> (i % 32u)) & 1u;
      }
    }
    barrier();
    if (p0 + BC < npos) load_kv(p0 + BC, c0, npos, h, lid, nk_, nv_, nok);

    // 2. S = Q K^T for the subgroup's rows; K B fragments are shared by its row tiles.
    for (uint j = 0; j < JS; j++) {
      CM_C s0 = CM_C(0.0), s1 = CM_C(0.0);
#define S_STEP(t, k)                                                                                     \
  if (k < KQ) {                                                                                           \
    CM_B kb; /* element (c, key) at ks[key][c]: column-major */                                           \
    coopMatLoad(kb, ks, j * CN * SK + k * (CK / 4u), SK, gl_CooperativeMatrixLayoutColumnMajor);          \
    s0 = coopMatMulAdd(q0##k, kb, s0);                                                                    \
    if (TMS > 1) s1 = coopMatMulAdd(q1##k, kb, s1);                                                       \
  }
      EACH_K(S_STEP, 0)
      coopMatStore(s0, ss, sc + j * CN, SS, gl_CooperativeMatrixLayoutRowMajor);
      if (TMS > 1) coopMatStore(s1, ss, sc + CM * SS + j * CN, SS, gl_CooperativeMatrixLayoutRowMajor);
    }
    sync_subgroup();

    // 3. Online softmax. The shuffles stay in uniform control flow: every invocation runs
    // every x (rows past RS contribute NEG), and the T invocations of a row are consecutive
    // and end with the same (exact) maximum.
    float mt_[RPL];
    bool raise = false;
    [[unroll]] for (uint x = 0; x < RPL; x++) {
      uint r = rl0 + x * (SG / T);
      float mx = NEG;
      if (r < RS)
        for (uint y = 0; y < CPL; y++) {
          uint c = t + T * y;
          if (kvalid[c] != 0u) mx = max(mx, ss[sc + r * SS + c]);
        }
      [[unroll]] for (uint w = 1u; w < T; w <<= 1) mx = max(mx, subgroupShuffleXor(mx, w));
      mt_[x] = mx;
      raise = raise || (r < RS && mx > m_[x] + float(SLACK));
    }
    // A workgroup-wide decision: every subgroup rescales all its accumulators, or none does.
    // (Per subgroup would do, but the rescale's subgroup barriers must then be reached by all
    // subgroups alike: llvmpipe, for one, runs every control barrier as a workgroup barrier.)
    // The first tile always raises (m = NEG; it holds a real key) with nothing to rescale yet.
    const bool raise_sg = subgroupAny(raise);
    if (lane == 0u) raise_s[sg] = raise_sg ? 1u : 0u;
    barrier(); // the flags are read before the next tile's two barriers let them be rewritten
    bool rescale = false;
    [[unroll]] for (uint g = 0; g < NS; g++) rescale = rescale || raise_s[g] != 0u;
    [[unroll]] for (uint x = 0; x < RPL; x++) {
      uint r = rl0 + x * (SG / T);
      if (r >= RS) continue;
      if (rescale) {
        float mn = max(m_[x], mt_[x]);
        float al = exp2(m_[x] - mn);
        l_[x] *= al;
        m_[x] = mn;
        if (t == 0u) alpha_s[sr0 + r] = al;
      }
      for (uint y = 0; y < CPL; y++) {
        uint c = t + T * y;
        ps[(sr0 + r) * SP + c] = float16_t(kvalid[c] != 0u ? exp2(ss[sc + r * SS + c] - m_[x]) : 0.0);
      }
    }
    sync_subgroup(); // P and alpha are visible; S has been read (the scratch is free)
    // l sums the f16 P the product reads, loaded back from ps: NVIDIA's compiler (driver 580)
    // may drop the round trip float(float16_t(p)) and sum the unrounded p (sas_absorb_cm.comp).
    [[unroll]] for (uint x = 0; x < RPL; x++) {
      uint r = rl0 + x * (SG / T);
      if (r < RS)
        for (uint y = 0; y < CPL; y++) l_[x] += float(ps[(sr0 + r) * SP + t + T * y]);
    }

    if (rescale && p0 != 0u) {
#define O_RESCALE(t, j) if (t < TMS && j < TNO) o##t##j = rescaled(o##t##j, sr0 + t * CM, sc, lane);
      EACH_TK(O_RESCALE)
    }

    // 4. O += P V (V read row-major as the B operand); V fragments are shared by the row tiles.
    for (uint kk = 0; kk < KP; kk++) {
      CM_A p0, p1;
      coopMatLoad(p0, ps, sr0 * SP + kk * CK, SP, gl_CooperativeMatrixLayoutRowMajor);
      if (TMS > 1) coopMatLoad(p1, ps, (sr0 + CM) * SP + kk * CK, SP, gl_CooperativeMatrixLayoutRowMajor);
#define PV_STEP(t, j)                                                                                    \
  if (j < TNO) {                                                                                          \
    CM_B vb; /* element (key, c) at vs[key][c] */                                                         \
    coopMatLoad(vb, vs, kk * CK * SK + j * (CN / 4u), SK, gl_CooperativeMatrixLayoutRowMajor);            \
    o0##j = coopMatMulAdd(p0, vb, o0##j);                                                                 \
    if (TMS > 1) o1##j = coopMatMulAdd(p1, vb, o1##j);                                                    \
  }
      EACH_K(PV_STEP, 0)
    }
  }

  // Each row's (m, l): the T partial sums added in the same order by all T invocations.
  [[unroll]] for (uint x = 0; x < RPL; x++) {
    uint r = rl0 + x * (SG / T);
    float l = l_[x];
    [[unroll]] for (uint w = 1u; w < T; w <<= 1) l += subgroupShuffleXor(l, w);
    if (r < RS && t == 0u) ml_s[sr0 + r] = vec2(m_[x], l);
  }
  sync_subgroup();

  // Destination as in attn_common.glsl: ~0u = out = o / l, else slot dst gets o and (m, l).
#define O_EMIT(t, j) if (t < TMS && j < TNO) emit(o##t##j, sr0 + t * CM, j * CN, sc, lane, rt0, a, h, dst);
  EACH_TK(O_EMIT)
  if (dst != 0xffffffffu)
    for (uint r = lane; r < RS; r += SG) {
      uint rb = rt0 + sr0 + r, i = a * pc.B + rb;
      if (rb < pc.B && i < pc.N) slot_ml[(dst * pc.B + rb) * pc.H + h] = ml_s[sr0 + r];
    }
}
