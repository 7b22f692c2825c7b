#version 450
// DES router logits on CPU devices, f16 router read as 32-bit words (des_logits_sg.glsl; why
// words: des_gemm1_sg_f16p.comp).
#define DES_WTYPE 2
#extension GL_GOOGLE_include_directive : require
#include "des_logits_sg.glsl"
