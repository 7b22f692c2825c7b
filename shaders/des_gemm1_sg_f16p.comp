#version 450
// DES grouped GEMM 1 on CPU devices (gate/up with SwiGLU into h; f16 weights read as 32-bit
// words: lavapipe loads each 16-bit element on its own, 14 - 35 % slower, docs/performance.md,
// thirty-third session). See des_sg.glsl.
#define DES_WTYPE 2
#define DES_GEMM_MODE 1
#define DES_SG 1
#extension GL_GOOGLE_include_directive : require
#include "des_common.glsl"
#include "des_sg.glsl"
