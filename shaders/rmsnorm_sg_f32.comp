#version 450
// RMSNorm, f32 output, one subgroup per row (rmsnorm_sg.glsl).
#extension GL_GOOGLE_include_directive : require
#include "rmsnorm_sg.glsl"
