// The DES grouped GEMMs' bindings, push constants, tile placement and operand loads, shared by
// the tiled kernels (des_common.glsl) and the CPU devices' subgroup kernels (des_sg.glsl). The
// includer declares WG, BM, BN, VEC4 (4-element global loads) and, in mode 1, shared
// tok_s[BM] (see des_tile.glsl).

// A: mode 1 b [T, d] f32 from a_off (rows gathered through pair_tok); mode 2 h [rows, dff] f32
layout(std430, binding = 0) readonly buffer A_ { float a_mat[]; };
layout(std430, binding = 0) readonly buffer A4_ { vec4 a_mat4[]; };
layout(std430, binding = 1) readonly buffer Tok_ { uint pair_tok[]; };      // [rows] token or NONE
layout(std430, binding = 2) readonly buffer TileE_ { uint tile_expert[]; }; // [tiles] expert
layout(std430, binding = 3) readonly buffer Off_ { uint seg_off[]; };       // [E + 1] padded offsets
DES_WDECL(4, W1_, w1)     // gate [E, dff, d] (mode 1) or down [E, d, dff] (mode 2), or a chunk
DES_WDECL4(4, W1v_, w1v)
DES_WDECL(5, W2_, w2)     // up [E, dff, d] (mode 1); mode 2 binds down again and ignores it
DES_WDECL4(5, W2v_, w2v)
layout(std430, binding = 6) writeonly buffer O_ { float o_mat[]; };         // [rows, N] f32
layout(push_constant) uniform Push { drd_pc_des_gemm pc; };

uint row0, n0, wb1, wb2;
#include "des_tile.glsl"

// elements k .. k+3 of A's tile row m; 0 past K or for a padding row
vec4 load_a(uint m, uint k) {
  bool row_ok;
  uint base = des_a_row(m, row_ok);
  if (VEC4) {
    vec4 v = a_mat4[(base + min(k, pc.K - 4)) >> 2];
    return row_ok && k < pc.K ? v : vec4(0.0);
  }
  vec4 v;
  [[unroll]] for (uint i = 0; i < 4; i++) {
    bool ok = k + i < pc.K;
    float x = a_mat[ok ? base + k + i : base];
    v[i] = ok && row_ok ? x : 0.0;
  }
  return v;
}

// elements k .. k+3 of weight row n0 + n (of the bound range), in both weight bindings
void load_w(uint n, uint k, out vec4 v1, out vec4 v2) {
  uint col = n0 + n;
  bool col_ok = col < pc.n_end;
  uint rel = (col_ok ? col : pc.n_end - 1u) - pc.n_base;
  uint b1 = wb1 + rel * pc.K;
#if DES_GEMM_MODE == 1
  uint b2 = wb2 + rel * pc.K;
#endif
  if (VEC4) {
    uint kc = min(k, pc.K - 4);
    bool ok = col_ok && k < pc.K;
    v1 = ok ? DES_WLOAD4(w1v, b1 + kc) : vec4(0.0);
#if DES_GEMM_MODE == 1
    v2 = ok ? DES_WLOAD4(w2v, b2 + kc) : vec4(0.0);
#else
    v2 = vec4(0.0);
#endif
    return;
  }
  [[unroll]] for (uint i = 0; i < 4; i++) {
    bool ok = k + i < pc.K;
    float x1 = DES_WLOAD(w1, ok ? b1 + k + i : b1);
    v1[i] = ok && col_ok ? x1 : 0.0;
#if DES_GEMM_MODE == 1
    float x2 = DES_WLOAD(w2, ok ? b2 + k + i : b2);
    v2[i] = ok && col_ok ? x2 : 0.0;
#else
    v2[i] = 0.0;
#endif
  }
}

