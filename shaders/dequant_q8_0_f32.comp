#version 450
// Q8_0 layer weights -> f32 (widen_weights.glsl). Host reference: drd_tensor_to_f32.
#extension GL_GOOGLE_include_directive : require
#define WIDEN_Q8_0
#include "widen_weights.glsl"
