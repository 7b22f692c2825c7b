// Packed layer weights (Q8_0 blocks or bf16 pairs) widened into the scratch a product reads
// (runtime/engine_session.c): each value is formed exactly in f32, then stored as f32 (the f32
// engine: bit for bit the host's drd_tensor_to_f32) or, with WIDEN_F16, rounded to the nearest
// f16 (the f16 engine's cooperative-matrix products, which take f16 weights; the upload checked
// that every value is finite in f16). One of WIDEN_Q8_0 / WIDEN_BF16. Four elements per
// invocation, from one or two words of input (and the block's scale): a quarter of the
// invocations and loads of one element each.
#include "push_constants.h"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Q { uint q[]; }; // raw bytes, little-endian words
#ifdef WIDEN_F16
layout(std430, binding = 1) writeonly buffer O { float16_t o[]; };
#define STORE(i, x) o[i] = float16_t(x)
#else
layout(std430, binding = 1) writeonly buffer O { float o[]; };
#define STORE(i, x) o[i] = (x)
#endif

#ifdef WIDEN_Q8_0
// 34-byte blocks (an f16 scale d, then 32 int8 q; x = d * q, exact in f32); the chunk's first
// block starts at byte pc.in_byte (even, as every block then starts at an even byte)
layout(push_constant) uniform Push { drd_pc_dequant pc; };
// elements i .. i + 3 (i a multiple of 4, so all in one block)
vec4 value4(uint i) {
  uint block = pc.in_byte + (i >> 5) * 34u, b = block + 2u + (i & 31u);
  float d = unpackHalf2x16(q[block >> 2] >> ((block & 2u) * 8u)).x;
  // the four int8 from b (even): one word, or the upper half of one and the lower of the next
  uint w = (b & 2u) == 0u ? q[b >> 2] : (q[b >> 2] >> 16) | (q[(b >> 2) + 1u] << 16);
  ivec4 v = ivec4(int(w << 24), int(w << 16), int(w << 8), int(w)) >> 24; // sign-extended
  return d * vec4(v);
}
float value(uint i) { return value4(i & ~3u)[i & 3u]; }
#else
// a bf16's 16 bits are the upper half of its f32, so exact; pairs, the low half first
layout(push_constant) uniform Push { drd_pc_eltwise pc; };
float value(uint i) {
  uint w = q[i >> 1];
  return uintBitsToFloat((i & 1u) != 0u ? w & 0xffff0000u : w << 16);
}
vec4 value4(uint i) {
  uint a = q[i >> 1], b = q[(i >> 1) + 1u];
  return uintBitsToFloat(uvec4(a << 16, a & 0xffff0000u, b << 16, b & 0xffff0000u));
}
#endif

void main() {
  uint i = 4u * (gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x);
  if (i >= pc.n) return;
  if (i + 4u <= pc.n) {
    vec4 x = value4(i);
    STORE(i, x.x);
    STORE(i + 1u, x.y);
    STORE(i + 2u, x.z);
    STORE(i + 3u, x.w);
  } else { // bf16's last 1 - 3 elements (Q8_0 counts are whole blocks)
    for (uint k = i; k < pc.n; k++) STORE(k, value(k));
  }
}
