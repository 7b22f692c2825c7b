#version 450
// HSA attention merge, f32 out (attn_merge.glsl).
#extension GL_GOOGLE_include_directive : require
#include "attn_merge.glsl"
