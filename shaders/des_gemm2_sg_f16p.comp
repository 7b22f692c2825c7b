#version 450
// DES grouped GEMM 2 on CPU devices (down into y; f16 weights read as 32-bit words, as
// des_gemm1_sg_f16p.comp). See des_sg.glsl.
#define DES_WTYPE 2
#define DES_GEMM_MODE 2
#define DES_SG 1
#extension GL_GOOGLE_include_directive : require
#include "des_common.glsl"
#include "des_sg.glsl"
