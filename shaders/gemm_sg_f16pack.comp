#version 450
// The CPU devices' GEMM with f16 weights read as 32-bit words and unpacked with unpackHalf2x16:
// see gemm_sg_common.glsl and gemm_f16pack.comp. Their only f16 variant, 16-bit storage or not:
// lavapipe loads each 16-bit element on its own, so float16_t loads took 9 - 12 % longer here
// (Mesa 22.3) and 40 % longer on Mesa 26.1 (docs/performance.md, thirty-third session).
#extension GL_GOOGLE_include_directive : require

layout(std430, binding = 1) readonly buffer W { uint w[]; };    // [N, ldw] f16 pairs from w_off (in halves)
layout(std430, binding = 1) readonly buffer W4 { uvec2 w4[]; }; // the same, 4 halves at a time
#define W_LOAD(e) unpackHalf2x16(w[(e) >> 1])[(e) & 1u]
#define W_LOAD4(e) vec4(unpackHalf2x16(w4[(e) >> 2].x), unpackHalf2x16(w4[(e) >> 2].y))

#include "gemm_sg_common.glsl"
