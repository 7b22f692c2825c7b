#version 450
// DES router logits, f16 router packed two per uint (des_logits.glsl).
#define DES_WTYPE 2
#extension GL_GOOGLE_include_directive : require
#include "des_logits.glsl"
