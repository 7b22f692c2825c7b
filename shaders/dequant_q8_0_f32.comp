#version 450
// out[i] = f32 value of element i of GGUF Q8_0 blocks (34 bytes: an f16 scale d, then 32 int8 q;
// x = d * q, exact in f32), for the engine's Q8_0 layer weights, which stay 8-bit on the device
// and are widened into a scratch before each product (runtime/engine_session.c). Blocks are not
// word-aligned, so bytes are picked out of 32-bit words; the chunk's first block starts at byte
// pc.in_byte of the bound range. Host reference: drd_tensor_to_f32 (host/model_file.c).
#extension GL_GOOGLE_include_directive : require
#include "push_constants.h"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Q { uint q[]; };   // raw Q8_0 bytes
layout(std430, binding = 1) writeonly buffer O { float o[]; }; // [n] f32
layout(push_constant) uniform Push { drd_pc_dequant pc; };

uint byte_at(uint b) { return (q[b >> 2] >> ((b & 3u) * 8u)) & 0xffu; }

void main() {
  uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= pc.n) return;
  uint block = pc.in_byte + (i >> 5) * 34u;
  float d = unpackHalf2x16(byte_at(block) | (byte_at(block + 1u) << 8u)).x;
  int v = int(byte_at(block + 2u + (i & 31u)) << 24) >> 24; // the int8, sign-extended
  o[i] = d * float(v);
}
