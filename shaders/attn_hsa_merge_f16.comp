#version 450
// HSA attention merge, f16 out (attn_merge.glsl; needs 16-bit storage).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_16bit_storage : require
#define MERGE_OUT16
#include "attn_merge.glsl"
