#version 450
// HSA attention with P handed from the softmax to O += P V in registers, through
// VK_NV_cooperative_matrix2's conversion of an accumulator into an A operand (attn_cm.glsl)
#extension GL_GOOGLE_include_directive : require
#define ATTN_CONVERT
#include "attn_cm.glsl"
