#version 450
// Subgroup-broadcast GEMM (for CPU devices) with f16 weights read as float16_t (16-bit
// storage; converted to f32 on load): see gemm_sg_common.glsl.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_16bit_storage : require

layout(std430, binding = 1) readonly buffer W { float16_t w[]; };  // [N, ldw] f16 from w_off
layout(std430, binding = 1) readonly buffer W4 { f16vec4 w4[]; }; // the same, 4 at a time
#define W_LOAD(e) float(w[e])
#define W_LOAD4(e) vec4(w4[(e) >> 2])

#include "gemm_sg_common.glsl"
