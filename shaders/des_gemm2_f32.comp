#version 450
// DES grouped GEMM 2 (f32 weights): y = h Wd^T for each tile of BM rows of one expert.
// See des_common.glsl.
#define DES_WTYPE 0
#define DES_GEMM_MODE 2
#extension GL_GOOGLE_include_directive : require
#include "des_common.glsl"
