#version 450
// RMSNorm, only the f16 output, one subgroup per row (rmsnorm_sg.glsl; needs 16-bit storage).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_16bit_storage : require
#define RMSNORM_F16
#define RMSNORM_NO_F32
#include "rmsnorm_sg.glsl"
