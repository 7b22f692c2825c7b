#version 450
// bf16 layer weights -> f32, exact (widen_weights.glsl). Host reference: drd_tensor_to_f32.
#extension GL_GOOGLE_include_directive : require
#define WIDEN_BF16
#include "widen_weights.glsl"
