#version 450
// HSA attention on VK_KHR_cooperative_matrix (attn_cm.glsl)
#extension GL_GOOGLE_include_directive : require
#include "attn_cm.glsl"
