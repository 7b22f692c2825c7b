// Packed layer weights (Q8_0 blocks or bf16 pairs) widened element by element into the scratch a
// product reads (runtime/engine_session.c): each value is formed exactly in f32, then stored as
// f32 (the f32 engine: bit for bit the host's drd_tensor_to_f32) or, with WIDEN_F16, rounded to
// the nearest f16 (the f16 engine's cooperative-matrix products, which take f16 weights; the
// upload checked that every value is finite in f16). One of WIDEN_Q8_0 / WIDEN_BF16.
#include "push_constants.h"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Q { uint q[]; }; // raw bytes, little-endian words
#ifdef WIDEN_F16
layout(std430, binding = 1) writeonly buffer O { float16_t o[]; };
#else
layout(std430, binding = 1) writeonly buffer O { float o[]; };
#endif

#ifdef WIDEN_Q8_0
// 34-byte blocks (an f16 scale d, then 32 int8 q; x = d * q, exact in f32) are not word-aligned,
// so bytes are picked out of words; the chunk's first block starts at byte pc.in_byte
layout(push_constant) uniform Push { drd_pc_dequant pc; };
uint byte_at(uint b) { return (q[b >> 2] >> ((b & 3u) * 8u)) & 0xffu; }
float value(uint i) {
  uint block = pc.in_byte + (i >> 5) * 34u;
  float d = unpackHalf2x16(byte_at(block) | (byte_at(block + 1u) << 8u)).x;
  int v = int(byte_at(block + 2u + (i & 31u)) << 24) >> 24; // the int8, sign-extended
  return d * float(v);
}
#else
// a bf16's 16 bits are the upper half of its f32, so exact; pairs, the low half first
layout(push_constant) uniform Push { drd_pc_eltwise pc; };
float value(uint i) {
  uint w = q[i >> 1];
  return uintBitsToFloat((i & 1u) != 0u ? w & 0xffff0000u : w << 16);
}
#endif

void main() {
  uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= pc.n) return;
#ifdef WIDEN_F16
  o[i] = float16_t(value(i));
#else
  o[i] = value(i);
#endif
}
