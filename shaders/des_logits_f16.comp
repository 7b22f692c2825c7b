#version 450
// DES router logits, f16 router through 16-bit storage (des_logits.glsl).
#define DES_WTYPE 1
#extension GL_GOOGLE_include_directive : require
#include "des_logits.glsl"
