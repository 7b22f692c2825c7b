#version 450
// Sinusoidal time features of SPEC 4.1: s[i] = cos(t phi_i), s[half + i] = sin(t phi_i),
// phi_i = exp(-ln(10000) i / half), for t = u Ts up to ~2000 rad. f32 alone cannot do this:
// phi_i rounded to f32 moves t phi_i by up to ~1e-4 rad, and driver sin/cos are loose for
// large arguments. So the angle is formed in double-float (sampler_math.glsl) in turns:
// phi_i = r^i by binary powering of r = 10000^(-1/half) (given as hi + lo by the host, which
// also gives t / (2 pi) as hi + lo), theta = t/(2 pi) * phi_i, exact reduction of theta to
// a quadrant and |rest| <= 1/8 turn, and f32 polynomials from there: the features are
// within a few 1e-8 of the f64 reference (see tests/test_kernel_sampler.c).
#extension GL_GOOGLE_include_directive : require
#include "pc_sampler.h"
#include "sampler_math.glsl"

layout(local_size_x_id = 0) in;
layout(std430, binding = 0) writeonly buffer S { float s[]; }; // [2 half] f32 from s_off
layout(push_constant) uniform Push { drd_pc_time pc; };

void main() {
  uint i = gl_GlobalInvocationID.x;
  if (i >= pc.half_dt) return;
  vec2 phi = vec2(1.0, 0.0), base = vec2(pc.r_hi, pc.r_lo);
  for (uint e = i; e != 0u; e >>= 1) {
    if ((e & 1u) != 0u) phi = df_mul(phi, base);
    base = df_mul(base, base);
  }
  vec2 th = df_mul(vec2(pc.tt_hi, pc.tt_lo), phi); // turns, >= 0
  float k = floor(4.0 * th.x + 0.5);
  precise float rest = (th.x - 0.25 * k) + th.y; // the subtraction is exact
  vec2 cs = sincos_quadrant(int(k), rest);
  s[pc.s_off + i] = cs.x;
  s[pc.s_off + pc.half_dt + i] = cs.y;
}
