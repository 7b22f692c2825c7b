// DES router logits, shared by des_logits_{f32,f16,f16p}.comp (the includer defines DES_WTYPE,
// the router's storage): logits[t, e] = b[t, :] . router[e, :], f32 accumulation.
//
// Each group of LN = 32 invocations takes TOK tokens. Invocation l of a group walks the
// columns in chunks of 4 (chunks l, l + LN, l + 2 LN, ...) and sums, in column order, the
// products of each of its tokens with EC experts at once, so every router element it loads
// serves TOK tokens. The LN partial sums of each (token, expert) then go through shared
// memory, where one invocation adds them in lane order. The order depends only on d, not on
// the token's place in the batch or on whether the rows are read as vec4 (where d and the
// offsets allow it) or element by element, so a token's bits are the same in any batch.
//
// Why this shape: the previous kernel (one workgroup of 64 per token, a strided sum with its
// 8 router loads each behind a branch, a 6-barrier tree per token) took 17.5 / 74.7 / 245 µs
// per layer at 1K / 16K / 64K tokens on an H200; this one 8.9 / 36.3 / 103 µs. Most of that
// came from issuing every load of a chunk before the products (the first version, with the
// loads still behind branches, took 28 / 63 / 147 µs); 64 - 256 invocations and 1 - 4 tokens
// per group were within 10 % of each other (docs/performance.md, fourteenth session).
#extension GL_EXT_control_flow_attributes : require
#include "des_common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128; // a multiple of LN (runtime/ops_des.c)
const uint LN = 32;                          // invocations per token group (these three: ops_des.c's LOGITS_*)
const uint TOK = 2;                          // tokens per group
const uint EC = 8;                           // experts summed together
const uint NG = WG / LN;                     // groups per workgroup
const uint ROWS = NG * TOK * EC;             // (group, token, expert) partial-sum rows
const uint RS = LN + 1;                      // row stride: the final sums read along a row

#include "des_logits_bindings.glsl"

shared float part[ROWS * RS];

void main() {
  const uint lid = gl_LocalInvocationID.x, g = lid / LN, l = lid % LN;
  const uint wgi = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
  const uint tok0 = (wgi * NG + g) * TOK; // this group's first token (it may be past T)
  // whole vec4s of b and of the router rows (uniform)
  const bool vec = pc.d % 4u == 0u && pc.b_off % 4u == 0u && pc.r_off % 4u == 0u;
  const uint nchunks = (pc.d + 3u) / 4u;
  for (uint e0 = 0; e0 < pc.E; e0 += EC) {
    float acc[TOK * EC];
    [[unroll]] for (uint i = 0; i < TOK * EC; i++) acc[i] = 0.0;
    for (uint c4 = l; c4 < nchunks; c4 += LN) {
      // Every load of the chunk is issued before any product, none behind a branch: a token
      // past T reads row T - 1 and an expert past E row E - 1 (their sums are never stored),
      // so the driver can keep them all in flight at once.
      const uint c = 4u * c4;
      vec4 x[TOK], w[EC];
      if (vec) {
        [[unroll]] for (uint t = 0; t < TOK; t++) x[t] = b4[(pc.b_off + min(tok0 + t, pc.T - 1u) * pc.d) / 4u + c4];
        [[unroll]] for (uint j = 0; j < EC; j++) w[j] = DES_WLOAD4(rw4, pc.r_off + min(e0 + j, pc.E - 1u) * pc.d + c);
      } else { // a column past d reads the last one and zeros replace both factors
        [[unroll]] for (uint i = 0; i < 4u; i++) {
          const uint ci = min(c + i, pc.d - 1u);
          const bool inside = c + i < pc.d;
          [[unroll]] for (uint t = 0; t < TOK; t++) {
            const float v = b[pc.b_off + min(tok0 + t, pc.T - 1u) * pc.d + ci];
            x[t][i] = inside ? v : 0.0;
          }
          [[unroll]] for (uint j = 0; j < EC; j++) {
            const float v = DES_WLOAD(rw, pc.r_off + min(e0 + j, pc.E - 1u) * pc.d + ci);
            w[j][i] = inside ? v : 0.0;
          }
        }
      }
      [[unroll]] for (uint j = 0; j < EC; j++)
        [[unroll]] for (uint t = 0; t < TOK; t++)
          acc[t * EC + j] += x[t].x * w[j].x + x[t].y * w[j].y + x[t].z * w[j].z + x[t].w * w[j].w;
    }
    [[unroll]] for (uint i = 0; i < TOK * EC; i++) part[(g * TOK * EC + i) * RS + l] = acc[i];
    barrier();
    for (uint r = lid; r < ROWS; r += WG) {
      const uint j = r % EC, tok = wgi * NG * TOK + r / EC; // rows run (group, token) then expert
      float s = 0.0;
      for (uint k = 0; k < LN; k++) s += part[r * RS + k];
      if (tok < pc.T && e0 + j < pc.E) logits[tok * pc.E + e0 + j] = s;
    }
    barrier(); // part[] is rewritten by the next group of experts
  }
}
