// HSA attention on cooperative matrices (VK_KHR_cooperative_matrix, f16 operands, f32
// accumulation): FlashAttention-2 with the same work items, bindings, push constants and
// outputs as attn_common.glsl (read that first), so runtime/ops_attention.c only picks the
// pipeline. Chosen where the device has cooperative matrices and the shape suits them.
// Included by attn_hsa_cm.comp (VK_KHR_cooperative_matrix only) and attn_hsa_cm2.comp
// (ATTN_CONVERT: VK_NV_cooperative_matrix2's conversion of an accumulator into an A operand
// takes P from the softmax to O += P V in registers, where the KHR kernel passes it through
// shared memory; step 3 below; and its row reductions and per-element operations, below).
//
// Workgroup = (work item, row tile, head): NS subgroups, each owning RS = TMS * CM of the
// tile's BR = NS * RS query rows (rows past the block or N are zeros, never stored). Q is
// scaled by scale_log2, rounded to f16 once (here, or by the q projection: IN16) and kept in
// registers as A fragments. Each listed key block is cut into tiles of BC keys (a tile never
// spans two blocks, so a tile's keys are found from one CSR entry, read once per block, and
// whether it holds keys past the block or past N is one comparison; those keys are masked).
// Per tile:
//   1. the workgroup stages K and V as f16 in shared memory (rounded here, or f16 already:
//      IN16), the only workgroup barriers;
//   2. each subgroup computes S = Q K^T for its rows (K read column-major as the B operand)
//      into accumulators that stay in registers;
//   3. the online softmax runs on those accumulators, element by element: P = exp2(S - m),
//      rounded to f16 and passed through the subgroup's own shared rows to become A operands
//      (the KHR extension has no conversion between uses; with ATTN_CONVERT each f16 P
//      accumulator becomes the A operand of one P V step directly, which needs CK == CN);
//   4. O += P V, and l += P 1 on the same f16 P (every column of l holds its row's sum), so
//      out = o / l normalises exactly the weights the product used.
// Row-wise state without knowing which invocation holds which element: the running max m is
// an accumulator too, every element holding its row's m, so P = exp2(S - m) and the rescales
// O *= alpha, l *= alpha (alpha = exp2(m_old - m_new), per row) are component-wise operations
// between matrices of one type, which the extension defines element by element. Only raising
// m needs rows: ID holds each element's index r * CN + c (loaded once from shared memory), and
// a row's new max is a subgroupMax over the elements whose ID says that row. With ATTN_CONVERT
// the extension's row reduction gives every element its row's max, and its per-element
// operation hands the mask each element's column, so that kernel holds no ID (on an H200, 109
// registers instead of 123; a fifth workgroup of 128 invocations per SM would need <= 102).
// m is raised lazily: only when a score exceeds its row's m by more than SLACK (then every row
// of the subgroup takes its running max). P stays <= 2^SLACK (f16 holds it) and m <= the row's
// true max, so m and l are a valid (max, sum) pair for the merge kernel, whose log-sum-exp
// merge only needs o, l and m to share one reference. With scores spread like attention's, m
// settles within the first tiles (SLACK = 0 gives plain FA-2 rescaling, for tests). Raising
// is decided per subgroup and needs no barrier.
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_cooperative_matrix : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_vote : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_control_flow_attributes : require
#ifdef ATTN_CONVERT
#extension GL_NV_cooperative_matrix2 : require
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;   // NS * SG
layout(constant_id = 1) const uint DH = 64;    // head dim (even, <= 128)
layout(constant_id = 2) const uint DHP = 64;   // DH padded with zeros to a multiple of CK and CN
layout(constant_id = 3) const uint BC = 64;    // keys per tile: a multiple of CM, CN and CK
layout(constant_id = 4) const uint NS = 4;     // subgroups
layout(constant_id = 5) const uint TMS = 1;    // row tiles (of CM rows) per subgroup
layout(constant_id = 6) const uint SG = 32;    // subgroup size (the workgroup is NS full subgroups)
layout(constant_id = 7) const uint CM = 16;    // cooperative-matrix shape M x N x K (f16 * f16 + f32)
layout(constant_id = 8) const uint CN = 16;    // CN and CK multiples of 8: fragment offsets stay 16-byte aligned
layout(constant_id = 9) const uint CK = 16;
layout(constant_id = 10) const bool ALIGNED4 = false; // DH % 4 == 0: rows may be read as vec4
layout(constant_id = 11) const uint SLACK = 8;  // log2 units a score may exceed m before m is raised (<= 15)
// out as f16 (the copy the cooperative-matrix o projection reads, written here instead of by a
// separate conversion pass; rows split over slots get theirs from the merge)
layout(constant_id = 12) const bool OUT16 = false;
// Q, K and V as f16, Q already times scale_log2 (written so by the cooperative-matrix q, k and
// v projections, with the same f32 product and rounding as here): half the bytes of the
// kernel's global traffic, and no conversion; else f32, scaled and rounded here
layout(constant_id = 13) const bool IN16 = false;

const uint RS = TMS * CM, BR = NS * RS;  // query rows per subgroup / workgroup
const uint D4 = DHP / 4;                 // head dim in vec4
const uint SK = D4 + 2;                  // K/V row stride in f16vec4: DHP + 8 halves
const uint SP = BC + 8;                  // P row stride in halves
const uint KQ = DHP / CK, JS = BC / CN;  // S = Q K^T: k-steps, matrices per row tile
const uint KP = BC / CK, TNO = DHP / CN; // O += P V: k-steps, matrices per row tile
const uint LKV = (BC * D4 + WG - 1) / WG; // K/V tile vec4s per invocation
const float NEG = -1.0e30;               // as in attn_common.glsl: exp2(NEG - m) == 0, never NaN

#define CM_A coopmat<float16_t, gl_ScopeSubgroup, CM, CK, gl_MatrixUseA>
#define CM_B coopmat<float16_t, gl_ScopeSubgroup, CK, CN, gl_MatrixUseB>
#define CM_C coopmat<float, gl_ScopeSubgroup, CM, CN, gl_MatrixUseAccumulator>
#define CM_CH coopmat<float16_t, gl_ScopeSubgroup, CM, CN, gl_MatrixUseAccumulator>
// ATTN_CONVERT: P as the A operand (CM x CN: the host makes CK == CN) and V, ones as B (CN x CN)
#define CM_AP coopmat<float16_t, gl_ScopeSubgroup, CM, CN, gl_MatrixUseA>
#define CM_BV coopmat<float16_t, gl_ScopeSubgroup, CN, CN, gl_MatrixUseB>

// Matrices live in separate variables, not arrays (as in cm_gemm.glsl): NVIDIA's compiler
// (driver 580) keeps an array of cooperative matrices in memory whenever a loop bounded by a
// specialization constant indexes it, a local-memory round trip per multiply-add. So the
// per-matrix code is written out by macros for up to 2 row tiles (TMS) and 8 matrices along
// the head dim (KQ for Q, TNO for O) and along the keys (JS for S), each guarded by its
// specialization constant so that the driver drops the ones a pipeline does not use
// (ops_attention.c keeps within that).
#define EACH_K(X, t) X(t, 0) X(t, 1) X(t, 2) X(t, 3) X(t, 4) X(t, 5) X(t, 6) X(t, 7)
#define EACH_TK(X) EACH_K(X, 0) EACH_K(X, 1)
#define EACH_JK(X) EACH_K(X, 0) EACH_K(X, 1) EACH_K(X, 2) EACH_K(X, 3) EACH_K(X, 4) EACH_K(X, 5) EACH_K(X, 6) EACH_K(X, 7)

#include "attn_bindings.glsl"
layout(std430, binding = 0) readonly buffer Qh { float16_t q16[]; };  // the same, f16, scaled (IN16)
layout(std430, binding = 0) readonly buffer Qh4 { f16vec4 q16x4[]; };
layout(std430, binding = 1) readonly buffer Kh { float16_t k16[]; };  // the same, f16 (IN16)
layout(std430, binding = 1) readonly buffer Kh4 { f16vec4 k16x4[]; };
layout(std430, binding = 2) readonly buffer Vh { float16_t v16[]; };
layout(std430, binding = 2) readonly buffer Vh4 { f16vec4 v16x4[]; };
layout(std430, binding = 3) writeonly buffer O16 { float16_t o16[]; }; // the output, f16 (OUT16)

// Shared memory. coopMatLoad and coopMatStore need 16-byte-aligned addresses (Vulkan: the
// lesser of 16 bytes and a row's natural alignment; rows here are 16 halves or more). The row
// strides and fragment offsets below keep to that (SK even, SP % 8 == 0, column steps of CN
// and CK), but where each array starts is the driver's choice: SPIR-V gives workgroup
// variables no offsets, and a driver may pack them in any order. So every array's size is a
// multiple of 16 bytes (BC % 8 == 0), which keeps every start 16-byte aligned whatever the
// order. On an H200 (driver 580) an earlier version of this kernel with a 4-byte array gave
// garbage for workgroups of 1 or 2 subgroups: the driver had put the small array ahead of the
// matrix arrays. lavapipe loads from any address, so only a GPU shows this.
shared f16vec4 ks[BC * SK];    // [BC, SK] K tile (first: Q staging)
shared f16vec4 vs[BC * SK];    // [BC, SK] V tile
#ifndef ATTN_CONVERT
shared float16_t ps[BR * SP];  // [BR, SP] P, each subgroup its own rows
#endif
shared float cs[NS * CM * CN]; // per subgroup: one accumulator's scratch

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

// The same from f16 K and V (IN16).
f16vec4 load_row16(uint base, uint c4, bool kv_v) {
  if (ALIGNED4) {
    if (c4 * 4u >= DH) return f16vec4(0.0);
    return kv_v ? v16x4[base / 4u + c4] : k16x4[base / 4u + c4];
  }
  f16vec4 r = f16vec4(0.0);
  for (uint e = 0; e < 4u; e++)
    if (c4 * 4u + e < DH) r[e] = kv_v ? v16[base + c4 * 4u + e] : k16[base + c4 * 4u + e];
  return r;
}

// Q's column group c4 of head h in token row `row`, scaled and rounded to f16 (zeros past DH)
f16vec4 load_q(uint row, uint h, uint c4) {
  uint base = pc.q_off + (row - pc.q_row0) * pc.H * DH + h * DH;
  if (IN16) {
    if (ALIGNED4) return c4 * 4u < DH ? q16x4[base / 4u + c4] : f16vec4(0.0);
    f16vec4 r = f16vec4(0.0);
    for (uint e = 0; e < 4u; e++)
      if (c4 * 4u + e < DH) r[e] = q16[base + c4 * 4u + e];
    return r;
  }
  vec4 r = vec4(0.0);
  if (ALIGNED4) {
    if (c4 * 4u < DH) r = q4[base / 4u + c4];
  } else {
    for (uint e = 0; e < 4u; e++)
      if (c4 * 4u + e < DH) r[e] = q[base + c4 * 4u + e];
  }
  return f16vec4(r * pc.scale_log2);
}

void sync_subgroup() { // the subgroup's shared writes are visible to all its invocations
  subgroupMemoryBarrierShared();
  subgroupBarrier();
}

// Component-wise helpers: every element of an accumulator is paired with the element of the
// same index in another accumulator (the same matrix position), whoever holds it.
void emax(inout CM_C mx, CM_C s) {
  for (int i = 0; i < mx.length(); i++) mx[i] = max(mx[i], s[i]);
}

CM_C exp2_minus(CM_C s, CM_C m) { // exp2(s - m)
  for (int i = 0; i < s.length(); i++) s[i] = exp2(s[i] - m[i]);
  return s;
}

#ifdef ATTN_CONVERT
// Element functions for VK_NV_cooperative_matrix2's per-element operations and row reductions,
// which give each element its row and column: no index matrix (ID below) is needed.
float add_mask(const in uint r, const in uint c, const in float e, const in uint key0, const in uint nk) {
  return e + (key0 + c < nk ? 0.0 : NEG);
}
float max2(const in float a, const in float b) { return max(a, b); }
#define ID_PARAM
#define ID_ARG
#else
#define ID_PARAM , CM_C id
#define ID_ARG , id
#endif

// s with NEG where its column's key is not real: columns key0 + c (id: each element's r * CN +
// c) at or past nk, the tile's block's real keys
CM_C masked(CM_C s, uint key0, uint nk ID_PARAM) {
#ifdef ATTN_CONVERT
  CM_C r;
  coopMatPerElementNV(r, s, add_mask, key0, nk);
  return r;
#else
  for (int i = 0; i < s.length(); i++) s[i] += key0 + uint(id[i]) % CN < nk ? 0.0 : NEG;
  return s;
#endif
}

bool exceeds(CM_C mx, CM_C m) { // some element of mx above its row's m by more than SLACK
  bool up = false;
  for (int i = 0; i < mx.length(); i++) up = up || mx[i] > m[i] + float(SLACK);
  return up;
}

// Raises m (every element its row's reference) to the row maxima of mx; returns the rescale
// factors alpha = exp2(m_old - m_new) in the same layout. Subgroup-uniform control flow.
CM_C raise_rows(inout CM_C m, CM_C mx ID_PARAM) {
  CM_C mn = m, al = m;
#ifdef ATTN_CONVERT
  CM_C rmx; // every element its row's max of mx
  coopMatReduceNV(rmx, mx, gl_CooperativeMatrixReduceRowNV, max2);
  for (int i = 0; i < mn.length(); i++) mn[i] = max(mn[i], rmx[i]);
#else
  for (uint r = 0; r < CM; r++) {
    float part = NEG;
    for (int i = 0; i < mx.length(); i++)
      if (uint(id[i]) / CN == r) part = max(part, mx[i]);
    part = subgroupMax(part);
    for (int i = 0; i < mx.length(); i++)
      if (uint(id[i]) / CN == r) mn[i] = max(mn[i], part);
  }
#endif
  for (int i = 0; i < al.length(); i++) al[i] = exp2(m[i] - mn[i]);
  m = mn;
  return al;
}

// Row `lane` (< CM) of x, whose rows hold one value each (m, or l after P 1), through the
// subgroup's scratch at sc.
float row_value(CM_C x, uint sc, uint lane) {
  coopMatStore(x, cs, sc, CN, gl_CooperativeMatrixLayoutRowMajor);
  sync_subgroup();
  const float r = lane < CM ? cs[sc + lane * CN] : 0.0;
  sync_subgroup(); // read before the next store
  return r;
}

// Writes accumulator o (tile rows r0.., columns c0..) through the scratch at sc, as
// attn_common.glsl does: consecutive invocations write consecutive columns.
void emit(CM_C o, uint r0, uint c0, uint sc, uint lane, uint rt0, uint a, uint h, uint dst) {
  coopMatStore(o, cs, sc, CN, gl_CooperativeMatrixLayoutRowMajor);
  sync_subgroup();
  for (uint e = lane; e < CM * CN; e += SG) {
    uint r = r0 + e / CN, c = c0 + e % CN, rb = rt0 + r, i = a * pc.B + rb;
    if (rb >= pc.B || i >= pc.N || c >= DH) continue;
    const uint oi = pc.o_off + (i - pc.q_row0) * pc.H * DH + h * DH + c;
    if (dst == 0xffffffffu && OUT16)
      o16[oi] = float16_t(cs[sc + e]);
    else if (dst == 0xffffffffu)
      o_out[oi] = cs[sc + e];
    else
      slot_o[((dst * pc.B + rb) * pc.H + h) * DH + c] = cs[sc + e];
  }
  sync_subgroup(); // read before the next store
}

// This invocation's elements e = lid + i * WG of the K/V tile of keys kb + t0 .. kb + t0 + BC - 1
// (kb: the block's first key, nk: its real keys, t0 < nk), rounded to f16; zeros for keys at
// or past nk (their scores are masked). Every load is issued whatever the element, none behind
// a branch, so that the driver can keep all of them in flight at once (des_logits.glsl
// measured 2x from this): a key that is not real reads the block's last real key instead.
void load_kv(uint kb, uint t0, uint nk, uint h, uint lid, out f16vec4 nk16[LKV], out f16vec4 nv16[LKV]) {
  [[unroll]] for (uint i = 0; i < LKV; i++) {
    const uint e = lid + i * WG, j = e / D4, c4 = e % D4;
    const bool real = t0 + j < nk;
    const uint base = pc.kv_off + (kb + min(t0 + j, nk - 1u) - pc.kv_row0) * pc.H * DH + h * DH;
    if (IN16) {
      const f16vec4 kk = load_row16(base, c4, false), vv = load_row16(base, c4, true);
      nk16[i] = real ? kk : f16vec4(0.0);
      nv16[i] = real ? vv : f16vec4(0.0);
    } else { // (rounding after the select: rounding first cost an H200 2.5 % at 1K and 4K tokens)
      const vec4 kk = load_row(base, c4, false), vv = load_row(base, c4, true);
      nk16[i] = f16vec4(real ? kk : vec4(0.0));
      nv16[i] = f16vec4(real ? vv : vec4(0.0));
    }
  }
}

void main() {
  const uint lid = gl_LocalInvocationID.x, sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
  const uint h = gl_WorkGroupID.z;
  const uvec4 it = items[pc.item_off + gl_WorkGroupID.x];
  const uint a = it.x, c0 = it.y, c1 = it.z, dst = it.w;
  const uint rt0 = gl_WorkGroupID.y * BR; // the tile's first row inside the query block
  const uint sr0 = sg * RS;               // the subgroup's first row inside the tile
  const uint sc = sg * CM * CN;           // its scratch in cs

#ifndef ATTN_CONVERT
  // Each element's position r * CN + c (exact in f32), in the accumulator layout.
  for (uint e = lane; e < CM * CN; e += SG) cs[sc + e] = float(e);
  sync_subgroup();
  CM_C id;
  coopMatLoad(id, cs, sc, CN, gl_CooperativeMatrixLayoutRowMajor);
  sync_subgroup(); // loaded before the scratch is reused
#endif

  // Q (scaled, f16) into registers (qTK: row tile T, head-dim step K), staged through ks BC
  // rows at a time (a fragment never straddles two rounds: BC is a multiple of CM).
#define Q_DECL(t, k) CM_A q##t##k;
  EACH_TK(Q_DECL)
  for (uint r0 = 0; r0 < BR; r0 += BC) {
    barrier(); // the previous round's fragments are loaded
    for (uint e = lid; e < BC * D4; e += WG) {
      uint r = e / D4, c4 = e % D4, rb = rt0 + r0 + r, i = a * pc.B + rb;
      ks[r * SK + c4] = r0 + r < BR && rb < pc.B && i < pc.N ? load_q(i, h, c4) : f16vec4(0.0);
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
  // Per row tile: m (each element its row's reference max) and l (each element its row's sum)
  CM_C m0 = CM_C(NEG), m1 = CM_C(NEG), l0 = CM_C(0.0), l1 = CM_C(0.0);
#define S_DECL(t, j) CM_C s##t##j;
  EACH_TK(S_DECL)
#ifdef ATTN_CONVERT
  const CM_BV ones = CM_BV(float16_t(1.0));
#define P_DECL(t, j) CM_AP p##t##j;
  EACH_TK(P_DECL)
#else
  const CM_B ones = CM_B(float16_t(1.0));
#endif

  // The block's first key is read one block ahead, so that its load is not waited for
  // before the block's first tile can load.
  uint kb_next = col[c0 - pc.col_base] * pc.B;
  for (uint c = c0; c < c1; c++) {
    const uint kb = kb_next, nk = min(pc.B, pc.N - kb); // kb < N: the block has a real key
    kb_next = col[min(c + 1u, c1 - 1u) - pc.col_base] * pc.B;
    for (uint t0 = 0; t0 < nk; t0 += BC) {
      // 1. The K and V tiles into shared memory (zeros past the keys and past DH). The loads come
      // before the barrier here, but driver 580 issues them after it; a barrier with buffer
      // semantics, which keeps them ahead, cost an H200 2 % (fifteenth session). Loading the next
      // tile into registers during this one's products, as this kernel once did, cost 4 % per
      // layer at 16K tokens (1.68 against 1.61 ms), and two K/V buffers with one barrier per tile
      // 18 % (135 registers: a workgroup per SM fewer; 136 with f16 K/V, +19 %); docs/performance.md.
      f16vec4 nk16[LKV], nv16[LKV];
      load_kv(kb, t0, nk, h, lid, nk16, nv16);
      barrier(); // the previous tile (or the Q staging) has been consumed
      [[unroll]] for (uint i = 0; i < LKV; i++) {
        uint e = lid + i * WG;
        if (e < BC * D4) {
          uint j = e / D4, c4 = e % D4;
          ks[j * SK + c4] = nk16[i];
          vs[j * SK + c4] = nv16[i];
        }
      }
      barrier();

      // 2. S = Q K^T for the subgroup's rows; K B fragments are shared by its row tiles.
#define S_ZERO(t, j) if (t < TMS && j < JS) s##t##j = CM_C(0.0);
      EACH_TK(S_ZERO)
#define S_STEP(j, k)                                                                                     \
  if (j < JS && k < KQ) {                                                                                 \
    CM_B kb; /* element (c, key) at ks[key][c]: column-major */                                           \
    coopMatLoad(kb, ks, j * CN * SK + k * (CK / 4u), SK, gl_CooperativeMatrixLayoutColumnMajor);          \
    s0##j = coopMatMulAdd(q0##k, kb, s0##j);                                                              \
    if (TMS > 1) s1##j = coopMatMulAdd(q1##k, kb, s1##j);                                                 \
  }
      EACH_JK(S_STEP)
      if (t0 + BC > nk) { // some key of the tile is not real: its scores get NEG
#define S_MASK(t, j) if (t < TMS && j < JS) s##t##j = masked(s##t##j, t0 + j * CN, nk ID_ARG);
        EACH_TK(S_MASK)
      }

      // 3. Online softmax on the accumulators; P (f16) into the subgroup's rows of ps.
#define S_MAX(t, j) if (j > 0 && j < JS) emax(mx, s##t##j);
#define O_SCALE(t, j) if (j < TNO) o##t##j = o##t##j * al;
#ifdef ATTN_CONVERT
#define P_STORE(t, j) if (j < JS) p##t##j = CM_AP(CM_CH(exp2_minus(s##t##j, m##t)));
#else
#define P_STORE(t, j)                                                                                    \
  if (j < JS) {                                                                                           \
    CM_CH ph = CM_CH(exp2_minus(s##t##j, m##t));                                                          \
    coopMatStore(ph, ps, (sr0 + t * CM) * SP + j * CN, SP, gl_CooperativeMatrixLayoutRowMajor);           \
  }
#endif
#define SOFTMAX(t)                                                                                       \
  if (t < TMS) {                                                                                          \
    CM_C mx = s##t##0;                                                                                    \
    EACH_K(S_MAX, t)                                                                                      \
    /* the first tile always raises (m = NEG; it holds a real key), with nothing to rescale yet */        \
    if (subgroupAny(exceeds(mx, m##t))) {                                                                 \
      CM_C al = raise_rows(m##t, mx ID_ARG);                                                              \
      EACH_K(O_SCALE, t)                                                                                  \
      l##t = l##t * al;                                                                                   \
    }                                                                                                     \
    EACH_K(P_STORE, t)                                                                                    \
  }
      SOFTMAX(0)
      SOFTMAX(1)

      // 4. O += P V (V read row-major as the B operand), l += P 1; V fragments are shared by the
      // row tiles.
#ifdef ATTN_CONVERT
      // step kk's A operands are the P accumulators of key matrix kk (CK == CN)
#define PVC_STEP(kk, j)                                                                                  \
  if (j < TNO) {                                                                                          \
    CM_BV vb;                                                                                             \
    coopMatLoad(vb, vs, kk * CN * SK + j * (CN / 4u), SK, gl_CooperativeMatrixLayoutRowMajor);            \
    o0##j = coopMatMulAdd(p0##kk, vb, o0##j);                                                             \
    if (TMS > 1) o1##j = coopMatMulAdd(p1##kk, vb, o1##j);                                                \
  }
#define PVC_K(kk)                                                                                        \
  if (kk < KP) {                                                                                          \
    l0 = coopMatMulAdd(p0##kk, ones, l0);                                                                 \
    if (TMS > 1) l1 = coopMatMulAdd(p1##kk, ones, l1);                                                    \
    EACH_K(PVC_STEP, kk)                                                                                  \
  }
      PVC_K(0) PVC_K(1) PVC_K(2) PVC_K(3) PVC_K(4) PVC_K(5) PVC_K(6) PVC_K(7)
#else
      sync_subgroup(); // P is visible to the whole subgroup
      for (uint kk = 0; kk < KP; kk++) {
        CM_A pa0, pa1;
        coopMatLoad(pa0, ps, sr0 * SP + kk * CK, SP, gl_CooperativeMatrixLayoutRowMajor);
        l0 = coopMatMulAdd(pa0, ones, l0);
        if (TMS > 1) {
          coopMatLoad(pa1, ps, (sr0 + CM) * SP + kk * CK, SP, gl_CooperativeMatrixLayoutRowMajor);
          l1 = coopMatMulAdd(pa1, ones, l1);
        }
#define PV_STEP(t, j)                                                                                    \
  if (j < TNO) {                                                                                          \
    CM_B vb; /* element (key, c) at vs[key][c] */                                                         \
    coopMatLoad(vb, vs, kk * CK * SK + j * (CN / 4u), SK, gl_CooperativeMatrixLayoutRowMajor);            \
    o0##j = coopMatMulAdd(pa0, vb, o0##j);                                                                \
    if (TMS > 1) o1##j = coopMatMulAdd(pa1, vb, o1##j);                                                   \
  }
        EACH_K(PV_STEP, 0)
      }
#endif
    }
  }

  // Destination as in attn_common.glsl: ~0u = out = o / l, else slot dst gets o and (m, l).
  if (dst == 0xffffffffu) {
#define O_NORM(t, j) if (t < TMS && j < TNO) o##t##j = o##t##j / l##t;
    EACH_TK(O_NORM)
  }
#define O_EMIT(t, j) if (t < TMS && j < TNO) emit(o##t##j, sr0 + t * CM, j * CN, sc, lane, rt0, a, h, dst);
  EACH_TK(O_EMIT)
  if (dst != 0xffffffffu) {
#define ML_EMIT(t)                                                                                       \
  if (t < TMS) {                                                                                          \
    const float mv = row_value(m##t, sc, lane), lv = row_value(l##t, sc, lane);                          \
    const uint rb = rt0 + sr0 + t * CM + lane, i = a * pc.B + rb;                                         \
    if (lane < CM && rb < pc.B && i < pc.N) slot_ml[(dst * pc.B + rb) * pc.H + h] = vec2(mv, lv);         \
  }
    ML_EMIT(0)
    ML_EMIT(1)
  }
}
