// Vocabulary streaming shared by sas_absorb_f32.comp and round_argmax_f32.comp: attention of
// query rows (x̂0 rows of D, or x) over the token embeddings E, one vocabulary tile at a time.
//
// Workgroup = RG row groups x CT column threads. Row group g owns the RB = RG * TR rows
// g*TR .. g*TR+TR-1 of the workgroup's row block; column thread c owns
//   * in the logits:  vocabulary entries c + j*CT of the tile (j < TVC = VT / CT),
//   * in the weighted sum (absorb): the 4-column groups c + k*CT of the embedding (k < NC4).
// So every invocation computes a TR x TVC micro-tile of logits and a TR x 4*NC4 micro-tile of
// the accumulator (register blocking). Rows and the tile live in shared memory as vec4s along
// the embedding (zero-padded to DE4 = ceil(DE / 4) vec4s): one 128-bit load feeds 4 FMAs per
// row, the D loads of a warp are broadcasts, and the E loads of neighbouring invocations
// (rows ES4 vec4s apart, ES4 odd) or of consecutive column groups hit distinct banks.
// Tile entries past the split's end are loaded as 0 and their logits masked, so any V works.
//
// The includer declares the query binding and defines Q_LOAD(i) -> float before including;
// it uses sh_d4 (the query rows), sh_e4 (the E tile), lg (the logits), sas_load_rows,
// sas_load_tile and sas_logits.

#extension GL_GOOGLE_include_directive : require
#include "pc_sampler.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;  // RG * CT invocations
layout(constant_id = 1) const uint CT = 16;  // column threads per row group
layout(constant_id = 2) const uint TR = 1;   // rows per invocation
layout(constant_id = 3) const uint VT = 16;  // vocabulary entries per tile, a multiple of CT
layout(constant_id = 4) const uint DE = 16;  // embedding width
layout(constant_id = 5) const uint ETYPE = DRD_SAMPLER_E_F32;

const uint RG = WG / CT;
const uint RB = RG * TR;              // rows per workgroup
const uint TVC = VT / CT;             // logits per invocation and row
const uint DE4 = (DE + 3) / 4;        // vec4s per embedding row
const uint NC4 = (DE4 + CT - 1) / CT; // accumulator vec4s per invocation and row
const uint ES4 = DE4 | 1u;            // row stride of the shared tiles in vec4s: odd, see above

layout(std430, binding = 0) readonly buffer Emb { uint e_words[]; }; // [V, DE] f32, or f16 pairs
layout(push_constant) uniform Push { drd_pc_sas pc; };

shared vec4 sh_d4[RB * ES4]; // the row block's query rows (rows past the chunk are 0)
shared vec4 sh_e4[VT * ES4]; // the current vocabulary tile

float e_load(uint i) { // element i of E's binding
  if (ETYPE == DRD_SAMPLER_E_F32) return uintBitsToFloat(e_words[i]);
  return unpackHalf2x16(e_words[i >> 1])[i & 1u];
}

void sas_load_rows(uint row0) {
  for (uint i = gl_LocalInvocationID.x; i < RB * DE4; i += WG) {
    uint r = i / DE4, q = i - r * DE4;
    vec4 v = vec4(0.0);
    if (row0 + r < pc.rows) {
      uint base = pc.d_off + (row0 + r) * DE + 4 * q;
      for (uint u = 0; u < 4; u++)
        if (4 * q + u < DE) v[u] = Q_LOAD(base + u);
    }
    sh_d4[r * ES4 + q] = v;
  }
}

// Vocabulary entries [v0, v0 + VT) of this dispatch's E binding; entries at or past ve are 0.
void sas_load_tile(uint v0, uint ve) {
  for (uint i = gl_LocalInvocationID.x; i < VT * DE4; i += WG) {
    uint v = i / DE4, q = i - v * DE4;
    vec4 e = vec4(0.0);
    if (v0 + v < ve) {
      uint base = pc.e_off + (v0 + v) * DE + 4 * q;
      for (uint u = 0; u < 4; u++)
        if (4 * q + u < DE) e[u] = e_load(base + u);
    }
    sh_e4[v * ES4 + q] = e;
  }
}

// lg[i * TVC + j] = row g*TR + i . entry c + j*CT, accumulated with fma in ascending column
// order (f32). A global array: spec-constant-sized arrays do not pass through function
// parameters in every compiler.
float lg[TR * TVC];
void sas_logits(uint g, uint c) {
  for (uint i = 0; i < TR * TVC; i++) lg[i] = 0.0;
  for (uint k = 0; k < DE4; k++) {
    vec4 ev[TVC];
    for (uint j = 0; j < TVC; j++) ev[j] = sh_e4[(c + j * CT) * ES4 + k];
    for (uint i = 0; i < TR; i++) {
      vec4 dv = sh_d4[(g * TR + i) * ES4 + k];
      for (uint j = 0; j < TVC; j++) {
        float t = lg[i * TVC + j];
        t = fma(dv.x, ev[j].x, t);
        t = fma(dv.y, ev[j].y, t);
        t = fma(dv.z, ev[j].z, t);
        lg[i * TVC + j] = fma(dv.w, ev[j].w, t);
      }
    }
  }
}
