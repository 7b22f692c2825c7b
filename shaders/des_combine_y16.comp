#version 450
// DES combine of f16 expert outputs (the cooperative-matrix down GEMM's); see des_combine.glsl.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_16bit_storage : require
#define DES_Y16 1
#include "des_combine.glsl"
