#version 450
// bf16 layer weights -> f16, rounded to nearest even (exact for values of f16's normal range;
// widen_weights.glsl). Host reference: drd_tensor_to_f32, then drd_f32_to_f16.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_16bit_storage : require
#define WIDEN_BF16
#define WIDEN_F16
#include "widen_weights.glsl"
