#version 450
// RMSNorm's f16 output and the DES router's logits from the normalized rows, one subgroup per
// row, the router's weights f32 (rmsnorm_sg.glsl; needs 16-bit storage).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_16bit_storage : require
#define RMSNORM_F16
#define RMSNORM_NO_F32
#define RMSNORM_ROUTER
#define ROUTER_F16 0
#include "rmsnorm_sg.glsl"
