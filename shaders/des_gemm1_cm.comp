#version 450
// DES grouped GEMM 1 on cooperative matrices (f16 weights): h = SiLU(b Wg^T) * (b Wu^T) for each tile of BM
// (token, slot) rows of one expert, b rows gathered through pair_tok. See des_cm.glsl.
#define DES_GEMM_MODE 1
#extension GL_GOOGLE_include_directive : require
#include "des_cm.glsl"
