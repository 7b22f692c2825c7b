#version 450
// DES router logits on CPU devices, f32 router (des_logits_sg.glsl).
#define DES_WTYPE 0
#extension GL_GOOGLE_include_directive : require
#include "des_logits_sg.glsl"
