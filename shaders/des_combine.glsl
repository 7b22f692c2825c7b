// DES combine (des_combine.comp: y f32; des_combine_y16.comp: y f16, from the cooperative-
// matrix down GEMM): out[t, c] = sum over the token's slots, in slot order, of w[t, s] * y[pos, c];
// with pc.accumulate, out[t, c] += that sum (the residual connection, the f32 add an
// eltwise add of the plain result would do, without its extra pass).
// One invocation per output element (V4: per 4 of a row, the same arithmetic per element)
// and a fixed order: no float atomics, the same bits on every run.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "des_common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;
// d and o_off multiples of 4: 16-byte loads and stores (element-wise, the kernel ran at ~1.8
// TB/s on an H200 at 16K tokens)
layout(constant_id = 1) const bool V4 = false;

#if DES_Y16 // y [rows, d] as the cooperative-matrix down GEMM writes it (16-bit storage)
layout(std430, binding = 0) readonly buffer Y_ { float16_t y[]; };  // [rows, d] f16
layout(std430, binding = 0) readonly buffer Y4_ { f16vec4 y4[]; };
#else
layout(std430, binding = 0) readonly buffer Y_ { float y[]; };      // [rows, d] f32
layout(std430, binding = 0) readonly buffer Y4_ { vec4 y4[]; };
#endif
layout(std430, binding = 1) readonly buffer W_ { float wts[]; };    // [T, kmax] f32
layout(std430, binding = 2) readonly buffer Pos_ { uint pos[]; };   // [T, kmax] row or NONE
layout(std430, binding = 3) buffer O_ { float o[]; };               // [T, d] f32 from o_off
layout(std430, binding = 3) buffer O4_ { vec4 o4[]; };
layout(push_constant) uniform Push { drd_pc_des_combine pc; };

// A token's slots SC at a time, every load (its rows and weights, then their y elements, and
// out's old value) issued before the sums use any, none behind a branch: a NONE slot, and every
// slot after it (des_route pads with NONE), reads row 0 and is skipped, so the sum is the
// plain loop's, in slot order, up to its first NONE. One loop trip per slot would wait for
// each load in turn (des_logits.glsl).
const uint SC = 4;

// Slots s0 .. s0 + SC - 1 of token t (past kmax: the last one again): their rows of y, with
// NONE as row 0 (a readable row whose product is skipped), and their weights.
void load_slots(uint t, uint s0, out uint r[SC], out uint yr[SC], out float w[SC]) {
  [[unroll]] for (uint j = 0; j < SC; j++) {
    const uint k = t * pc.kmax + min(s0 + j, pc.kmax - 1u);
    r[j] = pos[k];
    w[j] = wts[k];
    yr[j] = r[j] == DRD_DES_NONE ? 0u : r[j];
  }
}

// whether slot s0 + j is a real choice (below kmax, not NONE): its product joins the sum
bool counts(uint s0, uint j, uint r[SC]) { return s0 + j < pc.kmax && r[j] != DRD_DES_NONE; }

void main() {
  uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * WG;
  uint r[SC], yr[SC];
  float w[SC];
  if (V4) {
    const uint d4 = pc.d / 4u;
    if (i >= pc.T * d4) return;
    uint t = i / d4, c4 = i % d4;
    const vec4 old = pc.accumulate != 0u ? o4[pc.o_off / 4u + i] : vec4(0.0);
    vec4 acc = vec4(0.0), yv[SC];
    for (uint s0 = 0; s0 < pc.kmax; s0 += SC) {
      load_slots(t, s0, r, yr, w);
      [[unroll]] for (uint j = 0; j < SC; j++) yv[j] = vec4(y4[yr[j] * d4 + c4]);
      [[unroll]] for (uint j = 0; j < SC; j++)
        if (counts(s0, j, r)) acc += w[j] * yv[j];
    }
    if (pc.accumulate != 0u) acc = old + acc;
    o4[pc.o_off / 4u + i] = acc;
    return;
  }
  if (i >= pc.T * pc.d) return;
  uint t = i / pc.d, c = i % pc.d;
  const float old = pc.accumulate != 0u ? o[pc.o_off + i] : 0.0;
  float acc = 0.0, yv[SC];
  for (uint s0 = 0; s0 < pc.kmax; s0 += SC) {
    load_slots(t, s0, r, yr, w);
    [[unroll]] for (uint j = 0; j < SC; j++) yv[j] = float(y[yr[j] * pc.d + c]);
    [[unroll]] for (uint j = 0; j < SC; j++)
      if (counts(s0, j, r)) acc += w[j] * yv[j];
  }
  if (pc.accumulate != 0u) acc = old + acc;
  o[pc.o_off + i] = acc;
}
