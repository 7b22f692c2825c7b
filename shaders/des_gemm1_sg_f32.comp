#version 450
// DES grouped GEMM 1 on CPU devices (gate/up with SwiGLU into h; f32 weights). See des_sg.glsl.
#define DES_WTYPE 0
#define DES_GEMM_MODE 1
#define DES_SG 1
#extension GL_GOOGLE_include_directive : require
#include "des_common.glsl"
#include "des_sg.glsl"
