#version 450
// DES grouped GEMM 2 on cooperative matrices (f16 weights): y = h Wd^T for each tile of BM rows of one
// expert. See des_cm.glsl.
#define DES_GEMM_MODE 2
#extension GL_GOOGLE_include_directive : require
#include "des_cm.glsl"
