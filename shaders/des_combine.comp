#version 450
// DES combine of f32 expert outputs (the scalar down GEMMs'); see des_combine.glsl.
#extension GL_GOOGLE_include_directive : require
#define DES_Y16 0
#include "des_combine.glsl"
