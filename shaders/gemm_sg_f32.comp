#version 450
// Subgroup-broadcast GEMM (for CPU devices) with f32 weights: see gemm_sg_common.glsl.
#extension GL_GOOGLE_include_directive : require

layout(std430, binding = 1) readonly buffer W { float w[]; };   // [N, ldw] f32 from w_off
layout(std430, binding = 1) readonly buffer W4 { vec4 w4[]; }; // the same, 4 at a time
#define W_LOAD(e) w[e]
#define W_LOAD4(e) w4[(e) >> 2]

#include "gemm_sg_common.glsl"
