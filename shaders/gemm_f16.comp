#version 450
// Tiled GEMM with f16 weights read as float16_t (needs storageBuffer16BitAccess only: the values
// are converted to f32 on load, no f16 arithmetic). Same results as gemm_f16pack.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_16bit_storage : require

layout(std430, binding = 1) readonly buffer W { float16_t w[]; }; // [N, ldw] f16 from w_off
#define W_LOAD(e) float(w[e])

#include "gemm_common.glsl"
