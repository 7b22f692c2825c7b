#version 450
// RMSNorm, f32 output and its f16 copy, one subgroup per row (rmsnorm_sg.glsl; needs 16-bit storage).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_16bit_storage : require
#define RMSNORM_F16
#include "rmsnorm_sg.glsl"
