#version 450
// Configure-time probe of CMakeLists.txt: can this glslc compile GL_KHR_cooperative_matrix?
// A 16x16 f16 tile from shared memory, one multiply-add, the f32 result to a storage buffer.
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
layout(local_size_x = 32) in;
layout(std430, binding = 0) buffer C { float c[]; }; // [16, 16] f32

shared float16_t tile[16 * 16]; // [16, 16] f16

void main() {
  for (uint i = gl_LocalInvocationIndex; i < 16 * 16; i += 32) tile[i] = float16_t(i % 7);
  barrier();
  coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA> a;
  coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseB> b;
  coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator> acc =
      coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>(0.0);
  coopMatLoad(a, tile, 0, 16, gl_CooperativeMatrixLayoutRowMajor);
  coopMatLoad(b, tile, 0, 16, gl_CooperativeMatrixLayoutColumnMajor);
  acc = coopMatMulAdd(a, b, acc);
  coopMatStore(acc, c, 0, 16, gl_CooperativeMatrixLayoutRowMajor);
}
