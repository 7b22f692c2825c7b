#version 450
// DES grouped GEMM 1 (f32 weights): for each tile of BM (token, slot) rows of one expert,
// h = SiLU(b Wg^T) * (b Wu^T) with the b rows gathered through pair_tok. See des_common.glsl.
#define DES_WTYPE 0
#define DES_GEMM_MODE 1
#extension GL_GOOGLE_include_directive : require
#include "des_common.glsl"
