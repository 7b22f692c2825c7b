#version 450
// HSA attention for devices without subgroup shuffles: one thread owns a whole query row
// (TC = 1), so no cross-thread reduction is needed. The kernel body is in attn_common.glsl.
#include "attn_common.glsl"
