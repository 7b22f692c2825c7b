// Cooperative-matrix GEMM body (VK_KHR_cooperative_matrix), shared by gemm_cm.comp and the
// DES grouped GEMMs des_gemm{1,2}_cm.comp:
//   acc[m, n] = sum_k A[m, k] * B[n, k]   for a BM x BN tile, f16 operands, f32 accumulation
// (B is stored as [N, K] rows, i.e. the weight layout of C = A W^T). With CM_DUAL a second
// B2 (the DES "up" weights) is multiplied by the same A into a second accumulator, and the
// includer's cm_combine makes each accumulator and its twin one matrix, element by element
// (the DES SwiGLU), before the epilogue: half the trips through the scratch and the shared
// memory traffic of passing both (an H200 at 16K tokens: DES gate / up 15.08 -> 14.80 ms per
// step, docs/performance.md).
//
// The workgroup is WM x WN subgroups (full ones: WG is a multiple of the subgroup size); subgroup (wm, wn) owns a
// (BM / WM) x (BN / WN) block of the tile, as TMW x TNW cooperative matrices of CM x CN
// (the device's f16 * f16 + f32 shape, CK deep). The K loop stages BK-wide slices of A and
// B in shared memory as f16 (A arrives as f32 and is rounded here, once per element), rows
// padded by 8 halves (16 bytes) so that the rows a matrix load reads together start in
// different banks; while a slice is
// multiplied out, the next one is already loaded into registers.
// Epilogue: each subgroup stores two accumulators of neighbouring columns at a time (one where
// it has a single column of them) into its own shared scratches, and
// its invocations hand the elements to the includer: 4 consecutive columns at a time to
// cm_put4 where the includer's cm_whole says the tile lies wholly inside the output at
// aligned places (16-byte stores), else one element at a time to cm_emit (partial tiles,
// unaligned places), so any M, N works and the includer decides what is written where. With
// CM_ROPE (specialization constant ROPE_HALF > 0) pairs of accumulators go to cm_put4x2 /
// cm_emit2 together instead: a matrix of the first half of a head and the matrix ROPE_HALF
// columns on, whose elements RoPE rotates together (the host makes each subgroup's columns
// whole heads, ROPE_HALF a multiple of CN).
// (Storing accumulators straight to the output buffer with coopMatStore was slower on an H200,
// driver 580: a 16384 x 1024 x 1024 GEMM 0.189 ms against 0.163 through the scratch and 16-byte
// stores, and 0.141 with no stores at all; per tile the direct stores cost as much as ~14 slices
// of the K loop, docs/performance.md.)
//
// The includer defines (after including this file, which declares them):
//   uvec4 cm_load_a(uint m, uint k)   tile row m of A, elements k .. k+7 as packed halves
//                                     (0 past K / for padding rows)
//   uvec4 cm_load_b(uint n, uint k)   tile row n of B, elements k .. k+7 (0 past K or N)
//   uvec4 cm_load_b2(uint n, uint k)  the same for B2 (CM_DUAL only)
//   CM_C cm_combine(CM_C acc, CM_C acc2)  (CM_DUAL) the output matrix from an accumulator and
//                                      its B2 twin, element by element (both hold the same
//                                      positions: one type, one layout)
//   void cm_emit(uint m, uint n, float v)               one output element, tile-relative
//   void cm_emit2(uint m, uint n, float v, float v2)    a pair (CM_ROPE)
//   bool cm_whole()                    (CM_DIRECT) whether cm_put4 may take this tile's output:
//                                      the same answer for the whole workgroup (lavapipe runs
//                                      the scratch's subgroup barriers as workgroup barriers,
//                                      which every subgroup must then reach)
//   void cm_pre4(uint m, uint n, out vec4 p, out vec4 p2)  (CM_DIRECT) loads what cm_put4 of
//                                      the same place will need (C's old values, a table):
//                                      called before the accumulator's trip through the
//                                      scratch, so that the loads are in flight meanwhile
//   void cm_put4(uint m, uint n, vec4 v, vec4 p, vec4 p2)  columns n .. n+3 of tile row m
//   bool cm_whole2(), cm_pre4x2(...), cm_put4x2(uint m, uint n, vec4 v, vec4 v2, vec4 p, vec4 p2)
//                                      (CM_DIRECT with CM_ROPE) the same for the pairs cm_emit2
//                                      would get
// and calls cm_gemm_tile(K) from main() once its per-tile state is set.
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;     // WM * WN * the subgroup size
layout(constant_id = 1) const uint BM = 64;      // multiple of WM * CM
layout(constant_id = 2) const uint BN = 64;      // multiple of WN * CN
layout(constant_id = 3) const uint BK = 32;      // multiple of CK and of 8
layout(constant_id = 4) const uint WM = 2;       // subgroups along m
layout(constant_id = 5) const uint WN = 2;       // subgroups along n
layout(constant_id = 6) const uint CM = 16;      // cooperative-matrix shape M x N x K
layout(constant_id = 7) const uint CN = 16;
layout(constant_id = 8) const uint CK = 16;
layout(constant_id = 9) const bool VEC = false; // 16-byte global loads (see the includer)
// (constant 10 is the includer's)
#ifdef CM_ROPE
layout(constant_id = 11) const uint ROPE_HALF = 0; // half the head dim; 0: no RoPE
const uint CM_ROPE_HP = ROPE_HALF > 0u ? ROPE_HALF / CN : 1u; // matrices from a column to its partner
#endif

const uint TMW = BM / (WM * CM), TNW = BN / (WN * CN); // matrices per subgroup along m, n
const uint SA = BK + 8;                                // shared row stride in halves
const uint G8 = BK / 8;                                // 8-half groups per slice row
const uint GA = BM * G8, GB = BN * G8;                 // groups per slice
const uint LA = (GA + WG - 1) / WG, LB = (GB + WG - 1) / WG;

#define CM_A coopmat<float16_t, gl_ScopeSubgroup, CM, CK, gl_MatrixUseA>
#define CM_B coopmat<float16_t, gl_ScopeSubgroup, CK, CN, gl_MatrixUseB>
#define CM_C coopmat<float, gl_ScopeSubgroup, CM, CN, gl_MatrixUseAccumulator>

// Slices as 16-byte vectors of 8 packed halves, so that one global load and one shared store
// move 8 elements (the load/store instructions, not the bytes, were what limited the kernel
// on an H200: loading f16 A 8 bytes at a time was slower than f32 A 16 bytes at a time);
// coopMatLoad offsets and strides then count uvec4s: half k of row m is
// As[(m * SA + k) / 8], half (k % 8).
const uint SA8 = SA / 8;
// The epilogue's scratch: one or two accumulators per subgroup, row-major (CN is a multiple of 4),
// f32 bits in As once the K loop is done with it (its last barrier), so that slices and
// scratch need not both have room (8 - 16 KiB less per workgroup; no faster on an H200, and
// the deeper slices this allows were slower, docs/performance.md): element (r, c) is
// As[CS + (r * CN + c) / 4], component c % 4, where CS = gl_SubgroupID * CQ; a pair's second
// accumulator CS2 further on.
const uint CQ = CM * CN / 4;
const uint CSG = WG / (WM * WN);      // the subgroup size
const uint QL = (CQ + CSG - 1) / CSG; // scratch vectors per invocation
const uint CS2 = WM * WN * CQ;
#if defined(CM_ROPE)
const uint CS_END = ROPE_HALF > 0u || TNW > 1u ? 2u * CS2 : CS2;
#else
const uint CS_END = TNW > 1u ? 2u * CS2 : CS2; // cm_out's pairs
#endif
shared uvec4 As[BM * SA8 > CS_END ? BM * SA8 : CS_END]; // A[m0 + m, k0 + k]; then the scratch
shared uvec4 Bs[BN * SA8]; // B[n0 + n, k0 + k]: column-major K x N
#ifdef CM_DUAL
shared uvec4 Bs2[BN * SA8];
#endif
vec4 cm_scratch(uint q) { return uintBitsToFloat(As[q]); }

// f16 halves of 8 f32 values, packed as a slice group (a vector conversion and bit casts:
// packHalf2x16 cost the f32-A kernel a third of its speed on an H200)
uvec4 cm_pack8(vec4 lo, vec4 hi) {
  f16vec4 l = f16vec4(lo), h = f16vec4(hi);
  return uvec4(packFloat2x16(l.xy), packFloat2x16(l.zw), packFloat2x16(h.xy), packFloat2x16(h.zw));
}

uvec4 cm_load_a(uint m, uint k);
uvec4 cm_load_b(uint n, uint k);
#ifdef CM_DUAL
uvec4 cm_load_b2(uint n, uint k);
CM_C cm_combine(CM_C acc, CM_C acc2);
#endif
void cm_emit(uint m, uint n, float v);
#ifdef CM_ROPE
void cm_emit2(uint m, uint n, float v, float v2);
#endif

uvec4 cm_ra[LA], cm_rb[LB];
#ifdef CM_DUAL
uvec4 cm_rb2[LB];
#endif

// group g = lid + l * WG covers tile row g / G8, k (g % G8) * 8 .. + 7
void cm_load_step(uint k0, uint lid) {
  [[unroll]] for (uint l = 0; l < LA; l++) {
    uint g = lid + l * WG;
    if (g < GA) cm_ra[l] = cm_load_a(g / G8, k0 + (g % G8) * 8);
  }
  [[unroll]] for (uint l = 0; l < LB; l++) {
    uint g = lid + l * WG;
    if (g < GB) {
      cm_rb[l] = cm_load_b(g / G8, k0 + (g % G8) * 8);
#ifdef CM_DUAL
      cm_rb2[l] = cm_load_b2(g / G8, k0 + (g % G8) * 8);
#endif
    }
  }
}

void cm_store_step(uint lid) {
  [[unroll]] for (uint l = 0; l < LA; l++) {
    uint g = lid + l * WG;
    if (g < GA) As[(g / G8) * SA8 + g % G8] = cm_ra[l];
  }
  [[unroll]] for (uint l = 0; l < LB; l++) {
    uint g = lid + l * WG;
    if (g < GB) {
      Bs[(g / G8) * SA8 + g % G8] = cm_rb[l];
#ifdef CM_DUAL
      Bs2[(g / G8) * SA8 + g % G8] = cm_rb2[l];
#endif
    }
  }
}

// Matrices live in separate variables, not arrays: NVIDIA's compiler (driver 580) keeps an
// array of cooperative matrices in memory whenever spirv-opt leaves a non-constant index
// into it (any loop bounded by a specialization constant), which made every MulAdd a
// local-memory round trip: 33 TFLOP/s on an H200 against 600 for the same MulAdds on
// register operands (docs/performance.md). So TMW, TNW <= 4 (drd_cm_tile_ok), the
// per-matrix code is written out by macros, and the matrices a specialization leaves unused
// are dead code the driver drops.
#define CM_I(i) (i < TMW)
#define CM_J(j) (j < TNW)
#define CM_EACH_J(X, i) X(i, 0) X(i, 1) X(i, 2) X(i, 3)
#define CM_EACH(X) CM_EACH_J(X, 0) CM_EACH_J(X, 1) CM_EACH_J(X, 2) CM_EACH_J(X, 3)

// The subgroup's scratch writes visible to all its invocations. The barrier's semantics cover
// shared memory only, so the epilogue's buffer loads and stores need not complete at it.
void cm_sync() {
  controlBarrier(gl_ScopeSubgroup, gl_ScopeSubgroup, gl_StorageSemanticsShared, gl_SemanticsAcquireRelease);
}

// One accumulator, or with `two` also acc2 of the next columns (n0 + CN), through the
// subgroup's scratches to cm_put4 or cm_emit: a pair shares one trip (one store, barrier, loads,
// barrier), so twice the loads and stores are in flight per barrier (an H200, 16384 x 1024 x
// 1024: 0.166 -> 0.161 ms, 0.199 -> 0.180 with ACCUMULATE, whose old C values are loaded ahead;
// a scratch row padded against bank conflicts instead was slower, docs/performance.md).
#ifdef CM_DIRECT
bool cm_whole();
void cm_pre4(uint m, uint n, out vec4 p, out vec4 p2);
void cm_put4(uint m, uint n, vec4 v, vec4 p, vec4 p2);
#endif
void cm_out(uint m0, uint n0, CM_C acc, CM_C acc2, bool two) {
  const uint cs = gl_SubgroupID * CQ, lane = gl_SubgroupInvocationID;
#ifdef CM_DIRECT
  const bool whole = cm_whole();
  vec4 p[QL], p2[QL], r[QL], r2[QL]; // for acc's places, for acc2's
  if (whole)
    [[unroll]] for (uint i = 0; i < QL; i++) {
      const uint q = lane + i * CSG, m = m0 + q * 4u / CN, n = n0 + q * 4u % CN;
      if (q < CQ) cm_pre4(m, n, p[i], p2[i]);
      if (q < CQ && two) cm_pre4(m, n + CN, r[i], r2[i]);
    }
#endif
  coopMatStore(acc, As, cs, CN / 4u, gl_CooperativeMatrixLayoutRowMajor);
  if (two) coopMatStore(acc2, As, CS2 + cs, CN / 4u, gl_CooperativeMatrixLayoutRowMajor);
  cm_sync();
#ifdef CM_DIRECT
  if (whole) {
    [[unroll]] for (uint i = 0; i < QL; i++) {
      const uint q = lane + i * CSG, m = m0 + q * 4u / CN, n = n0 + q * 4u % CN;
      if (q < CQ) cm_put4(m, n, cm_scratch(cs + q), p[i], p2[i]);
      if (q < CQ && two) cm_put4(m, n + CN, cm_scratch(CS2 + cs + q), r[i], r2[i]);
    }
  } else
#endif
    for (uint e = lane; e < CM * CN; e += CSG) {
      cm_emit(m0 + e / CN, n0 + e % CN, cm_scratch(cs + e / 4u)[e % 4u]);
      if (two) cm_emit(m0 + e / CN, n0 + CN + e % CN, cm_scratch(CS2 + cs + e / 4u)[e % 4u]);
    }
  cm_sync(); // the next store overwrites the scratch
}

// two accumulators through the subgroup's two scratches to cm_put4x2 or cm_emit2
#ifdef CM_ROPE
#ifdef CM_DIRECT
bool cm_whole2();
void cm_pre4x2(uint m, uint n, out vec4 p, out vec4 p2);
void cm_put4x2(uint m, uint n, vec4 v, vec4 v2, vec4 p, vec4 p2);
#endif
void cm_out2(uint m0, uint n0, CM_C acc, CM_C acc2) {
  const uint cs = gl_SubgroupID * CQ, lane = gl_SubgroupInvocationID;
#ifdef CM_DIRECT
  const bool whole = cm_whole2();
  vec4 p[QL], p2[QL];
  if (whole)
    [[unroll]] for (uint i = 0; i < QL; i++) {
      const uint q = lane + i * CSG;
      if (q < CQ) cm_pre4x2(m0 + q * 4u / CN, n0 + q * 4u % CN, p[i], p2[i]);
    }
#endif
  coopMatStore(acc, As, cs, CN / 4u, gl_CooperativeMatrixLayoutRowMajor);
  coopMatStore(acc2, As, CS2 + cs, CN / 4u, gl_CooperativeMatrixLayoutRowMajor);
  cm_sync();
#ifdef CM_DIRECT
  if (whole) {
    [[unroll]] for (uint i = 0; i < QL; i++) {
      const uint q = lane + i * CSG;
      if (q < CQ)
        cm_put4x2(m0 + q * 4u / CN, n0 + q * 4u % CN, cm_scratch(cs + q), cm_scratch(CS2 + cs + q), p[i], p2[i]);
    }
  } else
#endif
    for (uint e = lane; e < CM * CN; e += CSG)
      cm_emit2(m0 + e / CN, n0 + e % CN, cm_scratch(cs + e / 4u)[e % 4u], cm_scratch(CS2 + cs + e / 4u)[e % 4u]);
  cm_sync(); // the next store overwrites the scratch
}
#endif

void cm_gemm_tile(uint K) {
  const uint lid = gl_LocalInvocationID.x, sg = gl_SubgroupID;
  const uint wm0 = (sg / WN) * (BM / WM), wn0 = (sg % WN) * (BN / WN);

#define CM_DECL(i, j) CM_C c##i##j = CM_C(0.0);
  CM_EACH(CM_DECL)
#ifdef CM_DUAL
#define CM_DECL2(i, j) CM_C d##i##j = CM_C(0.0);
  CM_EACH(CM_DECL2)
#endif

  const uint steps = (K + BK - 1) / BK;
  cm_load_step(0, lid);
  for (uint s = 0; s < steps; s++) {
    cm_store_step(lid);
    barrier();
    if (s + 1 < steps) cm_load_step((s + 1) * BK, lid);
    [[unroll]] for (uint kk = 0; kk < BK; kk += CK) {
      CM_A a0, a1, a2, a3;
#define CM_LOAD_A(i) if (CM_I(i)) coopMatLoad(a##i, As, ((wm0 + i * CM) * SA + kk) / 8, SA8, gl_CooperativeMatrixLayoutRowMajor);
      CM_LOAD_A(0) CM_LOAD_A(1) CM_LOAD_A(2) CM_LOAD_A(3)
      CM_B b;
#define CM_MAD(i, j) if (CM_I(i)) c##i##j = coopMatMulAdd(a##i, b, c##i##j);
#define CM_MAD2(i, j) if (CM_I(i)) d##i##j = coopMatMulAdd(a##i, b, d##i##j);
#ifdef CM_DUAL
#define CM_COL(j)                                                                                          \
  if (CM_J(j)) {                                                                                           \
    coopMatLoad(b, Bs, ((wn0 + j * CN) * SA + kk) / 8, SA8, gl_CooperativeMatrixLayoutColumnMajor);       \
    CM_MAD(0, j) CM_MAD(1, j) CM_MAD(2, j) CM_MAD(3, j)                                                    \
    coopMatLoad(b, Bs2, ((wn0 + j * CN) * SA + kk) / 8, SA8, gl_CooperativeMatrixLayoutColumnMajor);      \
    CM_MAD2(0, j) CM_MAD2(1, j) CM_MAD2(2, j) CM_MAD2(3, j)                                                \
  }
#else
#define CM_COL(j)                                                                                          \
  if (CM_J(j)) {                                                                                           \
    coopMatLoad(b, Bs, ((wn0 + j * CN) * SA + kk) / 8, SA8, gl_CooperativeMatrixLayoutColumnMajor);       \
    CM_MAD(0, j) CM_MAD(1, j) CM_MAD(2, j) CM_MAD(3, j)                                                    \
  }
#endif
      CM_COL(0) CM_COL(1) CM_COL(2) CM_COL(3)
    }
    barrier(); // the next store overwrites the slices
  }

#ifdef CM_DUAL
#define CM_COMBINE(i, j) if (CM_I(i) && CM_J(j)) c##i##j = cm_combine(c##i##j, d##i##j);
  CM_EACH(CM_COMBINE)
#endif
#ifdef CM_ROPE
  if (ROPE_HALF > 0u) {
    // matrix j of the first half of a head with matrix j + CM_ROPE_HP (conditions on
    // specialization constants: the driver keeps one branch)
#define CM_ROPE_OUT(i, j)                                                                                  \
  if (CM_I(i) && CM_J(j) && j % (2u * CM_ROPE_HP) < CM_ROPE_HP) {                                         \
    CM_C p = c##i##0;                                                                                      \
    if (j + CM_ROPE_HP == 1u) p = c##i##1;                                                                 \
    if (j + CM_ROPE_HP == 2u) p = c##i##2;                                                                 \
    if (j + CM_ROPE_HP == 3u) p = c##i##3;                                                                 \
    cm_out2(wm0 + i * CM, wn0 + j * CN, c##i##j, p);                                                       \
  }
    CM_EACH(CM_ROPE_OUT)
    return;
  }
#endif
  // matrix j with matrix j + 1 where the subgroup has it (j even; conditions on
  // specialization constants, as above)
#define CM_OUT(i, j)                                                                                       \
  if (CM_I(i) && CM_J(j) && j % 2u == 0u) {                                                                \
    CM_C p = c##i##j;                                                                                      \
    if (j == 0u && CM_J(1)) p = c##i##1;                                                                   \
    if (j == 2u && CM_J(3)) p = c##i##3;                                                                   \
    cm_out(wm0 + i * CM, wn0 + j * CN, c##i##j, p, CM_J(j + 1u));                                          \
  }
  CM_EACH(CM_OUT)
}
