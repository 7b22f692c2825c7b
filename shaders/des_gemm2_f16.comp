#version 450
// DES grouped GEMM 2 (f16 weights read through 16-bit storage): y = h Wd^T for each tile of BM rows of one expert.
// See des_common.glsl.
#define DES_WTYPE 1
#define DES_GEMM_MODE 2
#extension GL_GOOGLE_include_directive : require
#include "des_common.glsl"
