#version 450
// DES router logits, f32 router (des_logits.glsl).
#define DES_WTYPE 0
#extension GL_GOOGLE_include_directive : require
#include "des_logits.glsl"
