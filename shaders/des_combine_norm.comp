#version 450
// The DES combine with the residual add (des_combine.glsl's arithmetic) and the next RMSNorm's
// f16 output (rmsnorm_sg_f16only.comp's), one subgroup per row: the norm reads the rows it
// has just summed from registers instead of from memory (rmsnorm_sg.glsl; needs 16-bit storage).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_16bit_storage : require
#define RMSNORM_F16
#define RMSNORM_NO_F32
#define RMSNORM_DES_COMBINE
#include "rmsnorm_sg.glsl"
