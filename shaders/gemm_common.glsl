// Tiled GEMM body shared by the gemm_{f32,f16,f16pack}.comp variants, which differ only in how
// W is stored:   C[m, n] = sum_k A[m, k] * W[n, k]  (+ bias[n])   (C = A W^T, f32 accumulation)
//
// A workgroup computes a BM x BN tile of C, walking K in steps of BK: the step's A and W
// slices are stored transposed in shared memory (As[k][m], Ws[k][n]); while they are
// multiplied out, the next step's slices are already being loaded into registers.
// Loads: invocation-group g = lid + l * WG reads k = g % BK of the 4 rows 4 * (g / BK) + c, so
// a warp's loads are consecutive in k (coalesced) and each one writes a whole vec4 of As: no
// partial-vector stores, and consecutive k land in different banks thanks to the padding.
// Each invocation (tx, ty) computes a TM x TN micro-tile (TM, TN multiples of 4): rows
// (g * TY + ty) * 4 + c for g < TM / 4, c < 4, likewise columns, so that each shared-memory
// read is one vec4 and a warp's reads are broadcasts or consecutive 16-byte words.
// Edge tiles: out-of-range loads read a valid address and are replaced by 0; out-of-range
// outputs are not written. So any M, N, K >= 1 works.
// Loops over constants are [[unroll]]ed, have at most TM, TN, BK or 4 trips each and no
// break / continue, so that drivers unroll them all and acc[], ra[] and rw[] stay in
// registers (an array indexed dynamically anywhere goes to slow per-thread memory).
//
// The includer declares W's buffer at binding 1 and defines W_LOAD(e) -> float, element e.

#extension GL_EXT_control_flow_attributes : require
#include "push_constants.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;       // (BM / TM) * (BN / TN)
layout(constant_id = 1) const uint BM = 128;       // multiples of 4
layout(constant_id = 2) const uint BN = 128;
layout(constant_id = 3) const uint BK = 16;        // BM * BK and BN * BK multiples of 4 * WG
layout(constant_id = 4) const uint TM = 8;         // multiples of 4
layout(constant_id = 5) const uint TN = 8;

layout(std430, binding = 0) readonly buffer A { float a[]; }; // [M, lda] f32 from a_off
layout(std430, binding = 2) readonly buffer Bias { float bias[]; }; // [N] f32 from bias_off (a dummy without bias)
layout(std430, binding = 3) buffer C { float c[]; };                // [M, ldc] f32 from c_off
layout(push_constant) uniform Push { drd_pc_gemm pc; };

const uint TX = BN / TN, TY = BM / TM;             // invocations along n and m
const uint LA = BM * BK / (4 * WG), LW = BN * BK / (4 * WG); // 4-row groups each invocation loads per step
// Row strides in vec4s, padded by one vec4: a warp's stores of consecutive k then fall in
// different banks.
const uint SA = BM / 4 + 1, SW = BN / 4 + 1;
shared vec4 As[BK * SA]; // As[k * SA + m / 4][m % 4] = A[m0 + m][k0 + k]
shared vec4 Ws[BK * SW]; // Ws[k * SW + n / 4][n % 4] = W[n0 + n][k0 + k]

vec4 ra[LA], rw[LW]; // the next step's slices, in flight in registers

void load_step(uint k0, uint m0, uint n0, uint lid) {
  [[unroll]] for (uint l = 0; l < LA; l++) {
    uint g = lid + l * WG, k = k0 + g % BK, r = m0 + (g / BK) * 4;
    bool ok = k < pc.K;
    [[unroll]] for (uint c = 0; c < 4; c++) {
      uint m = min(r + c, pc.M - 1); // rows past M are loaded but never stored
      float v = a[ok ? pc.a_off + m * pc.lda + k : pc.a_off];
      ra[l][c] = ok ? v : 0.0;
    }
  }
  [[unroll]] for (uint l = 0; l < LW; l++) {
    uint g = lid + l * WG, k = k0 + g % BK, r = n0 + (g / BK) * 4;
    bool ok = k < pc.K;
    [[unroll]] for (uint c = 0; c < 4; c++) {
      uint n = min(r + c, pc.N - 1);
      float v = W_LOAD(ok ? pc.w_off + n * pc.ldw + k : pc.w_off);
      rw[l][c] = ok ? v : 0.0;
    }
  }
}

void store_step(uint lid) {
  [[unroll]] for (uint l = 0; l < LA; l++) {
    uint g = lid + l * WG;
    As[(g % BK) * SA + g / BK] = ra[l];
  }
  [[unroll]] for (uint l = 0; l < LW; l++) {
    uint g = lid + l * WG;
    Ws[(g % BK) * SW + g / BK] = rw[l];
  }
}

// row (column) of the tile that element i (j) of the micro-tile belongs to
uint row_of(uint ty, uint i) { return ((i / 4) * TY + ty) * 4 + i % 4; }
uint col_of(uint tx, uint j) { return ((j / 4) * TX + tx) * 4 + j % 4; }

void main() {
  uint lid = gl_LocalInvocationID.x;
  uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
  uint tx = lid % TX, ty = lid / TX;

  float acc[TM * TN];
  [[unroll]] for (uint i = 0; i < TM; i++)
    [[unroll]] for (uint j = 0; j < TN; j++) acc[i * TN + j] = 0.0;

  uint steps = (pc.K + BK - 1) / BK;
  load_step(0, m0, n0, lid);
  for (uint s = 0; s < steps; s++) {
    store_step(lid);
    barrier();
    if (s + 1 < steps) load_step((s + 1) * BK, m0, n0, lid);
    [[unroll]] for (uint k = 0; k < BK; k++) {
      float av[TM], wv[TN];
      [[unroll]] for (uint g = 0; g < TM / 4; g++) {
        vec4 v = As[k * SA + g * TY + ty];
        [[unroll]] for (uint c = 0; c < 4; c++) av[g * 4 + c] = v[c];
      }
      [[unroll]] for (uint g = 0; g < TN / 4; g++) {
        vec4 v = Ws[k * SW + g * TX + tx];
        [[unroll]] for (uint c = 0; c < 4; c++) wv[g * 4 + c] = v[c];
      }
      [[unroll]] for (uint i = 0; i < TM; i++)
        [[unroll]] for (uint j = 0; j < TN; j++) acc[i * TN + j] = fma(av[i], wv[j], acc[i * TN + j]);
    }
    barrier(); // the next store_step overwrites the tiles
  }

  bool add_bias = (pc.flags & DRD_GEMM_BIAS) != 0, accumulate = (pc.flags & DRD_GEMM_ACCUMULATE) != 0;
  [[unroll]] for (uint j = 0; j < TN; j++) {
    uint n = n0 + col_of(tx, j);
    float b = 0.0;
    if (add_bias && n < pc.N) b = bias[pc.bias_off + n]; // a branch, not a select: without bias, binding 2 is a stand-in
    [[unroll]] for (uint i = 0; i < TM; i++) {
      uint m = m0 + row_of(ty, i);
      if (m < pc.M && n < pc.N) {
        uint ci = pc.c_off + m * pc.ldc + n;
        float v = acc[i * TN + j] + b;
        if (accumulate) v += c[ci];
        c[ci] = v;
      }
    }
  }
}
