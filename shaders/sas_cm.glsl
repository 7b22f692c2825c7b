// Vocabulary streaming on cooperative matrices (VK_KHR_cooperative_matrix, f16 operands, f32
// accumulation), shared by sas_absorb_cm.comp and round_argmax_cm.comp: the same attention of
// query rows (D or x) over the token embeddings E as sas_tile.glsl, with the same bindings,
// push constants, vocabulary splits and scratch layout, so runtime/ops_sas.c only picks the
// pipeline and the merge kernels are shared.
//
// Workgroup = NS subgroups of SG invocations; subgroup s owns the CM query rows s*CM ..
// s*CM+CM-1 of the workgroup's BR = NS * CM rows. The embedding width DE is padded with zeros
// to DEP (a multiple of CK, CN and 8). The query rows are rounded to f16 once and kept in
// registers as QK = DEP / CK A fragments q0..q15; each vocabulary tile of VT entries is
// rounded to f16 into shared memory (Es), from which every subgroup reads E as the B operand
// of its logits S = Q E_tile^T (column-major) and, in absorption, of P E_tile (row-major).
//
// Cooperative matrices are separate variables written out by macros, never arrays: NVIDIA's
// compiler (driver 580) kept an array of them in local memory whenever an index was not a
// constant after spirv-opt, making every MulAdd a memory round trip (see cm_gemm.glsl). So
// QK <= 16 (and the includer's other matrix counts) are limits the host checks, and the
// matrices a specialization leaves unused are dead code the driver drops.
//
// Barriers: subgroup barriers only in uniform control flow of the whole workgroup (llvmpipe
// executes every control barrier as a workgroup barrier).
//
// The includer declares binding 1 as `d` (f32 query rows) and its own other shared arrays.
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_control_flow_attributes : require
#include "pc_sampler.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;  // NS * SG
layout(constant_id = 1) const uint DE = 128;  // embedding width
layout(constant_id = 2) const uint DEP = 128; // DE padded: a multiple of CK, CN and 8, DEP / CK <= 16
layout(constant_id = 3) const uint VT = 64;   // entries per tile: a multiple of CM and CN (round: and of 4 * SG / CM)
layout(constant_id = 4) const uint NS = 4;    // subgroups
layout(constant_id = 5) const uint SG = 32;   // subgroup size (round: a multiple of CM, SG / CM a power of two)
layout(constant_id = 6) const uint CM = 16;   // cooperative-matrix shape M x N x K (f16 * f16 + f32);
layout(constant_id = 7) const uint CN = 16;   // CN and CK multiples of 8, so fragments start 16-byte aligned
layout(constant_id = 8) const uint CK = 16;
layout(constant_id = 9) const uint ETYPE = DRD_SAMPLER_E_F32;

const uint BR = NS * CM;        // rows per workgroup
const uint QK = DEP / CK;       // A fragments of a query row tile
const uint SE = DEP + 8;        // Es row stride in halves: rows start in different banks
const uint SE4 = SE / 4;
const uint DEP4 = DEP / 4;

#define CM_A coopmat<float16_t, gl_ScopeSubgroup, CM, CK, gl_MatrixUseA>
#define CM_B coopmat<float16_t, gl_ScopeSubgroup, CK, CN, gl_MatrixUseB>
#define CM_C coopmat<float, gl_ScopeSubgroup, CM, CN, gl_MatrixUseAccumulator>

layout(std430, binding = 0) readonly buffer Emb { uint e_words[]; }; // [V, DE] f32, or f16 pairs
layout(push_constant) uniform Push { drd_pc_sas pc; };

shared f16vec4 Es[VT * SE4]; // the vocabulary tile [VT, DEP] (first: the query rows, VT at a time)

#define SAS_EACH16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

void sync_subgroup() { // the subgroup's shared writes are visible to all its invocations
  subgroupMemoryBarrierShared();
  subgroupBarrier();
}

float e_load(uint i) { // element i of E's binding
  if (ETYPE == DRD_SAMPLER_E_F32) return uintBitsToFloat(e_words[i]);
  return unpackHalf2x16(e_words[i >> 1])[i & 1u];
}

// Elements c .. c+3 of the row starting at element `base` of E's binding, 0 past DE.
vec4 e_load4(uint base, uint c) {
  uint i = base + c;
  if (c + 4u <= DE) {
    if (ETYPE == DRD_SAMPLER_E_F32)
      return vec4(uintBitsToFloat(e_words[i]), uintBitsToFloat(e_words[i + 1u]), uintBitsToFloat(e_words[i + 2u]),
                  uintBitsToFloat(e_words[i + 3u]));
    if ((i & 1u) == 0u) return vec4(unpackHalf2x16(e_words[i >> 1]), unpackHalf2x16(e_words[(i >> 1) + 1u]));
  }
  vec4 v = vec4(0.0);
  [[unroll]] for (uint u = 0; u < 4u; u++)
    if (c + u < DE) v[u] = e_load(i + u);
  return v;
}

// Query rows r0 .. r0+VT-1 of the workgroup (row0 + r past pc.rows: zeros) into Es, as f16.
void sas_stage_rows(uint row0, uint r0) {
  for (uint i = gl_LocalInvocationID.x; i < VT * DEP4; i += WG) {
    uint r = i / DEP4, c = (i - r * DEP4) * 4u, row = row0 + r0 + r;
    vec4 v = vec4(0.0);
    if (r0 + r < BR && row < pc.rows) {
      uint base = pc.d_off + row * DE;
      [[unroll]] for (uint u = 0; u < 4u; u++)
        if (c + u < DE) v[u] = d[base + c + u];
    }
    Es[r * SE4 + c / 4u] = f16vec4(v);
  }
}

// A vocabulary tile is staged in two halves, so that its global loads can be in flight
// while the workgroup computes on the previous tile or meets at a barrier: sas_fetch_tile
// loads this invocation's LT chunks (4 columns of one entry each) as raw words into
// registers, sas_put_tile converts them to f16 into Es. Raw words, because converting would
// make the invocation wait for its loads right there: f32 E keeps 4 words per chunk, f16 E
// 2 words of packed halves (.xy; the compiler drops the rest). Small workgroups with wide
// tiles would need too many registers (LT > 8): there sas_fetch_tile does nothing and
// sas_put_tile loads, converts and stores in one loop.
const uint LT = (VT * DEP4 + WG - 1) / WG;
const bool REG_STAGE = LT <= 8u;
const uint LTR = REG_STAGE ? LT : 1u;

// Vocabulary entries [v0, v0 + VT) of this dispatch's E binding; entries at or past ve and
// columns past DE are zeros (the entries' logits are masked).
void sas_fetch_tile(uint v0, uint ve, out uvec4 w[LTR]) {
  [[unroll]] for (uint i = 0; i < LTR; i++) {
    uint e = gl_LocalInvocationID.x + i * WG, v = e / DEP4, c = (e - v * DEP4) * 4u;
    w[i] = uvec4(0u);
    if (!REG_STAGE || e >= VT * DEP4 || v0 + v >= ve || c >= DE) continue;
    uint base = pc.e_off + (v0 + v) * DE, idx = base + c;
    if (ETYPE == DRD_SAMPLER_E_F32 && c + 4u <= DE) {
      w[i] = uvec4(e_words[idx], e_words[idx + 1u], e_words[idx + 2u], e_words[idx + 3u]);
    } else if (ETYPE != DRD_SAMPLER_E_F32 && c + 4u <= DE && (idx & 1u) == 0u) {
      w[i].xy = uvec2(e_words[idx >> 1], e_words[(idx >> 1) + 1u]);
    } else { // a row's last, partial chunk, or odd f16 offsets
      vec4 x = e_load4(base, c);
      w[i] = ETYPE == DRD_SAMPLER_E_F32 ? floatBitsToUint(x) : uvec4(packHalf2x16(x.xy), packHalf2x16(x.zw), 0u, 0u);
    }
  }
}

// The tile fetched into w (or, without REG_STAGE, the tile at v0) into Es.
void sas_put_tile(uvec4 w[LTR], uint v0, uint ve) {
  if (!REG_STAGE) {
    for (uint i = gl_LocalInvocationID.x; i < VT * DEP4; i += WG) {
      uint v = i / DEP4, c = (i - v * DEP4) * 4u;
      vec4 e = vec4(0.0);
      if (v0 + v < ve) e = e_load4(pc.e_off + (v0 + v) * DE, c);
      Es[v * SE4 + c / 4u] = f16vec4(e);
    }
    return;
  }
  [[unroll]] for (uint i = 0; i < LTR; i++) {
    uint e = gl_LocalInvocationID.x + i * WG, v = e / DEP4;
    if (e >= VT * DEP4) break;
    Es[v * SE4 + (e - v * DEP4)] = ETYPE == DRD_SAMPLER_E_F32
                                       ? f16vec4(uintBitsToFloat(w[i]))
                                       : f16vec4(unpackFloat2x16(w[i].x), unpackFloat2x16(w[i].y));
  }
}

// Declares the query fragments and loads them: the includer's main() runs SAS_LOAD_QUERY
// before its tile loop (sr0 = the subgroup's first row, row0 = the workgroup's). A subgroup's
// CM rows lie in one staging round (VT is a multiple of CM).
#define SAS_Q_DECL(k) CM_A q##k;
#define SAS_Q_LOAD(k) if (k < QK) coopMatLoad(q##k, Es, (sr0 - r0) * SE4 + k * (CK / 4u), SE4, gl_CooperativeMatrixLayoutRowMajor);
#define SAS_LOAD_QUERY                                                                                  \
  SAS_EACH16(SAS_Q_DECL)                                                                                \
  for (uint r0 = 0; r0 < BR; r0 += VT) {                                                                \
    barrier(); /* the previous round's fragments are loaded */                                         \
    sas_stage_rows(row0, r0);                                                                           \
    barrier();                                                                                          \
    if (sr0 >= r0 && sr0 < r0 + VT) {                                                                   \
      SAS_EACH16(SAS_Q_LOAD)                                                                            \
    }                                                                                                   \
  }
