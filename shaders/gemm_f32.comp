#version 450
// Tiled GEMM with f32 weights: C = A W^T + bias (see gemm_common.glsl).
#extension GL_GOOGLE_include_directive : require

layout(std430, binding = 1) readonly buffer W { float w[]; }; // [N, ldw] f32 from w_off
#define W_LOAD(e) w[e]

#include "gemm_common.glsl"
