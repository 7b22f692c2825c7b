#version 450
// HSA attention with TC threads per query row summing their partial dot products through
// subgroup shuffles (the usual variant). The kernel body is in attn_common.glsl.
#define ATTN_SHUFFLE 1
#include "attn_common.glsl"
