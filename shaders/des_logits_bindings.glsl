// The DES router logits kernels' bindings and push constants (des_logits.glsl for GPUs,
// des_logits_sg.glsl for CPU devices; runtime/ops_des.c binds both alike). After des_common.glsl.
layout(std430, binding = 0) readonly buffer B_ { float b[]; };  // [T, d] f32 from b_off
layout(std430, binding = 0) readonly buffer B4_ { vec4 b4[]; };
DES_WDECL(1, R_, rw)                                             // [E, d] from r_off
DES_WDECL4(1, R4_, rw4)
layout(std430, binding = 2) writeonly buffer L_ { float logits[]; };  // [T, E] f32
layout(push_constant) uniform Push { drd_pc_des_logits pc; };
