#version 450
// Tiled GEMM with f16 weights for devices without 16-bit storage: W is read as 32-bit words,
// each holding two halves (element e is half e & 1 of word e >> 1, little-endian), and
// unpacked with unpackHalf2x16, which is core GLSL. f16 -> f32 is exact, so the results equal
// gemm_f16's.
#extension GL_GOOGLE_include_directive : require

layout(std430, binding = 1) readonly buffer W { uint w[]; }; // [N, ldw] f16 pairs from w_off (in halves)
#define W_LOAD(e) unpackHalf2x16(w[(e) >> 1])[(e) & 1u]

#include "gemm_common.glsl"
