// The bindings and push constants every HSA attention kernel declares (runtime/ops_attention.c
// binds the same eight buffers to each): f32 q, k, v (also as vec4), the output, the work
// items, the CSR key blocks and the split rows' slots. Includers add their own views of the
// same bindings (vec4 outputs in attn_io.glsl, f16 ones in attn_cm.glsl).
#include "pc_attention.h"

layout(std430, binding = 0) readonly buffer Q { float q[]; };     // [rows, H*DH] f32 (q window)
layout(std430, binding = 0) readonly buffer Q4 { vec4 q4[]; };
layout(std430, binding = 1) readonly buffer K { float k[]; };     // [rows, H*DH] f32 (k/v window)
layout(std430, binding = 1) readonly buffer K4 { vec4 k4[]; };
layout(std430, binding = 2) readonly buffer V { float v[]; };     // [rows, H*DH] f32 (k/v window)
layout(std430, binding = 2) readonly buffer V4B { vec4 v4[]; };
layout(std430, binding = 3) writeonly buffer O { float o_out[]; }; // [rows, H*DH] f32 (q window)
layout(std430, binding = 4) readonly buffer Items { uvec4 items[]; }; // (a, c0, c1, slot or ~0)
layout(std430, binding = 5) readonly buffer Col { uint col[]; };       // CSR key blocks (from col_base)
layout(std430, binding = 6) writeonly buffer SO { float slot_o[]; };   // [slots, B, H, DH] f32
layout(std430, binding = 7) writeonly buffer SML { vec2 slot_ml[]; };  // [slots, B, H] (m, l) f32
layout(push_constant) uniform Push { drd_pc_attn pc; };
