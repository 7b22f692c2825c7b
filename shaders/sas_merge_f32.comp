#version 450
// Combines the per-split states of sas_absorb_f32.comp (vocabulary splits): for row r and
// column c, with M = max_s m_s,
//   D[r, c] <- (1 - gamma) D[r, c] + gamma * (sum_s acc_s[c] e^(m_s - M)) / (sum_s l_s e^(m_s - M)),
// the exact log-sum-exp merge of online softmaxes. One invocation per element, splits in
// ascending order: deterministic.
#extension GL_GOOGLE_include_directive : require
#include "pc_sampler.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint DE = 16;
const uint S = DRD_SAS_STATE_FLOATS(DE);

layout(std430, binding = 0) readonly buffer St { float st[]; }; // [rows, n_splits, S] f32 from s_off (pc_sampler.h)
layout(std430, binding = 1) buffer Dbuf { float d[]; };         // [rows, DE] f32 from d_off
layout(push_constant) uniform Push { drd_pc_sas_merge pc; };

void main() {
  uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= pc.rows * DE) return;
  uint r = i / DE, c = i - r * DE;
  uint base = pc.s_off + r * pc.n_splits * S;
  float mx = st[base];
  for (uint s = 1; s < pc.n_splits; s++) mx = max(mx, st[base + s * S]);
  float l = 0.0, a = 0.0;
  for (uint s = 0; s < pc.n_splits; s++) {
    uint b = base + s * S;
    float w = exp(st[b] - mx);
    l = fma(st[b + 1], w, l);
    a = fma(st[b + DRD_SAS_STATE_ACC + c], w, a);
  }
  uint di = pc.d_off + r * DE + c;
  d[di] = (1.0 - pc.gamma) * d[di] + pc.gamma * (a / l);
}
