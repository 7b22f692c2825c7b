#version 450
// RMSNorm, f32 output (rmsnorm.glsl).
#extension GL_GOOGLE_include_directive : require
#include "rmsnorm.glsl"
