// Shared pieces of the DES kernels (shaders/des_*.comp): weight access for the three weight
// encodings, a portable exp for the router softmax, and the grouped GEMM body that the
// gate/up and down kernels instantiate.
//
// Weight encodings (one per .comp file, chosen by DES_WTYPE before including this file):
//   0: f32 storage
//   1: f16 through 16-bit storage (float16_t buffers; only loads and conversions, no f16 math)
//   2: f16 packed two per uint, read with unpackHalf2x16 (devices without 16-bit storage, and
//      DRDIFF_DISABLE_F16=1); element i is half (i & 1) of word i >> 1, so any offset works.
#ifndef DES_COMMON_GLSL
#define DES_COMMON_GLSL

#ifndef DES_WTYPE
#define DES_WTYPE 0
#endif

// extensions before any declaration (pc_des.h declares structs)
#extension GL_GOOGLE_include_directive : require
#if DES_WTYPE == 1
#extension GL_EXT_shader_16bit_storage : require
#endif
#include "pc_des.h"

// DES_WDECL declares a weight binding; DES_WDECL4 a second view of it, 4 elements at a time,
// and DES_WLOAD4(name4, i) reads elements i .. i+3 (i a multiple of 4) as a vec4.
#if DES_WTYPE == 1
#define DES_WDECL(bind, blk, name) layout(std430, binding = bind) readonly buffer blk { float16_t name[]; };
#define DES_WLOAD(name, i) float(name[i])
#define DES_WDECL4(bind, blk, name) layout(std430, binding = bind) readonly buffer blk { f16vec4 name[]; };
#define DES_WLOAD4(name, i) vec4(name[(i) >> 2])
#elif DES_WTYPE == 2
#define DES_WDECL(bind, blk, name) layout(std430, binding = bind) readonly buffer blk { uint name[]; };
#define DES_WLOAD(name, i) des_half(name[(i) >> 1], (i))
#define DES_WDECL4(bind, blk, name) layout(std430, binding = bind) readonly buffer blk { uvec2 name[]; };
#define DES_WLOAD4(name, i) des_half4(name[(i) >> 2])
#else
#define DES_WDECL(bind, blk, name) layout(std430, binding = bind) readonly buffer blk { float name[]; };
#define DES_WLOAD(name, i) name[i]
#define DES_WDECL4(bind, blk, name) layout(std430, binding = bind) readonly buffer blk { vec4 name[]; };
#define DES_WLOAD4(name, i) name[(i) >> 2]
#endif

float des_half(uint word, uint i) {
  vec2 v = unpackHalf2x16(word);
  return (i & 1u) != 0u ? v.y : v.x;
}

// exp(a - b) for the router softmax (a, b f32, a <= b), from basic operations only. The
// difference is carried as an unevaluated pair hi + lo (two-sum) because rounding it to f32
// would move exp by up to |a - b| * 2^-24 relative (4e-6 at a - b = -70), where the host
// subtracts in f64 exactly. Then a Cody-Waite reduction and a degree-7 Taylor polynomial on
// |r| <= ln2/2 (error under 1e-7 relative). The built-in exp is not used: it may be as
// coarse as 3 + 2|x| ulp (Vulkan's bound; NVIDIA's is ex2.approx of x*log2(e)), which would
// move the probabilities, hence routing, from one device to another. `precise` keeps
// compilers from fusing or reordering, so the bits are the same everywhere.
float des_exp_diff(float a, float b) {
  precise float hi = a - b;
  precise float bb = hi - a;
  precise float lo = (a - (hi - bb)) + (-b - bb);
  if (hi < -104.0) return 0.0; // below the smallest subnormal
  precise float n = floor(hi * 1.44269504 + 0.5);
  precise float r = ((hi - n * 0.693145752) + lo) - n * 1.42860677e-6; // ln2 = hi (16 bits) + lo
  precise float q = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
  return ldexp(q, int(n)); // exact scaling (a subnormal result may flush to zero)
}

vec4 des_half4(uvec2 w) { return vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y)); }

float des_silu(float x) { return x / (1.0 + exp(-x)); }

#endif // DES_COMMON_GLSL

// ---------------------------------------------------------------------------------------
// Grouped GEMM body. The including file defines DES_GEMM_MODE: 1 = gate/up with SwiGLU
// epilogue, 2 = down projection. One workgroup computes a BM x BN tile of one expert:
//   mode 1: h[row, n] = SiLU(sum_k A[row, k] Wg[e, n, k]) * (sum_k A[row, k] Wu[e, n, k]),
//           A[row, :] = b[pair_tok[row], :] (zero for padding rows)
//   mode 2: y[row, n] = sum_k h[row, k] Wd[e, n, k]
// The K loop holds BK-wide slices of A and W in shared memory, transposed (As[k][m]); while
// a slice is multiplied out the next one is already loaded into registers. Each invocation
// (tx, ty) owns a TM x TN micro-tile; when TM and TN are multiples of 4 its rows are
// (g * TY + ty) * 4 + c (likewise columns) so that every shared read is one vec4 and a warp's
// reads are broadcasts or consecutive; otherwise rows are ty + i * TY, read one at a time.
// VEC4 (K and every element offset multiples of 4): global loads of 4 consecutive k.
// Loops over constants are [[unroll]]ed so that the accumulators stay in registers.
// Out-of-range loads read a valid address and are replaced by 0; out-of-range columns are
// not written; padding rows are written (zeros in mode 1), they stay inside the scratch.
#if defined(DES_GEMM_MODE) && !defined(DES_SG)
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;       // (BM / TM) * (BN / TN)
layout(constant_id = 1) const uint BM = 32;       // rows (pairs) per tile, a multiple of 4
layout(constant_id = 2) const uint BN = 32;       // output columns per tile, a multiple of 4
layout(constant_id = 3) const uint BK = 16;       // reduction slice, a multiple of 4
layout(constant_id = 4) const uint TM = 4;        // rows per invocation
layout(constant_id = 5) const uint TN = 4;        // columns per invocation
layout(constant_id = 6) const bool VEC4 = false;  // 4-element global loads

const uint TX = BN / TN, TY = BM / TM;            // invocations along n and m
const bool VM = TM % 4 == 0, VN = TN % 4 == 0;
const uint GA = BM * BK / 4, GW = BN * BK / 4;    // 4-element groups per slice
const uint LA = (GA + WG - 1) / WG, LW = (GW + WG - 1) / WG; // ... per invocation
const uint SA = BM / 4 + 1, SW = BN / 4 + 1;      // row strides in vec4s, padded by one

shared vec4 As[BK * SA];  // As[k * SA + m / 4][m % 4] = A[row0 + m][k0 + k]
shared vec4 W1s[BK * SW]; // W1s[k * SW + n / 4][n % 4] = W1[n0 + n][k0 + k]
#if DES_GEMM_MODE == 1
shared vec4 W2s[BK * SW];
shared uint tok_s[BM];
#endif

vec4 ra[LA], r1[LW];
#if DES_GEMM_MODE == 1
vec4 r2[LW];
#endif
#include "des_gemm_io.glsl"

// group g = lid + l * WG covers tile row g / (BK / 4), k (g % (BK / 4)) * 4 .. + 3
void load_step(uint k0, uint lid) {
  [[unroll]] for (uint l = 0; l < LA; l++) {
    uint g = lid + l * WG;
    if (g < GA) ra[l] = load_a(g / (BK / 4), k0 + (g % (BK / 4)) * 4);
  }
  [[unroll]] for (uint l = 0; l < LW; l++) {
    uint g = lid + l * WG;
    vec4 v2;
    if (g < GW) load_w(g / (BK / 4), k0 + (g % (BK / 4)) * 4, r1[l], v2);
#if DES_GEMM_MODE == 1
    r2[l] = v2;
#endif
  }
}

void store_step(uint lid) {
  [[unroll]] for (uint l = 0; l < LA; l++) {
    uint g = lid + l * WG, m = g / (BK / 4), k = (g % (BK / 4)) * 4;
    if (g < GA) [[unroll]] for (uint i = 0; i < 4; i++) As[(k + i) * SA + m / 4][m % 4] = ra[l][i];
  }
  [[unroll]] for (uint l = 0; l < LW; l++) {
    uint g = lid + l * WG, n = g / (BK / 4), k = (g % (BK / 4)) * 4;
    if (g < GW) [[unroll]] for (uint i = 0; i < 4; i++) {
      W1s[(k + i) * SW + n / 4][n % 4] = r1[l][i];
#if DES_GEMM_MODE == 1
      W2s[(k + i) * SW + n / 4][n % 4] = r2[l][i];
#endif
    }
  }
}

uint row_of(uint ty, uint i) { return VM ? ((i / 4) * TY + ty) * 4 + i % 4 : ty + i * TY; }
uint col_of(uint tx, uint j) { return VN ? ((j / 4) * TX + tx) * 4 + j % 4 : tx + j * TX; }

void main() {
  const uint lid = gl_LocalInvocationID.x;
  const uint tx = lid % TX, ty = lid / TX;
  if (!des_tile_begin()) return;

  float acc1[TM * TN];
#if DES_GEMM_MODE == 1
  float acc2[TM * TN];
#endif
  [[unroll]] for (uint i = 0; i < TM * TN; i++) {
    acc1[i] = 0.0;
#if DES_GEMM_MODE == 1
    acc2[i] = 0.0;
#endif
  }

  const uint steps = (pc.K + BK - 1) / BK;
  load_step(0, lid);
  for (uint s = 0; s < steps; s++) {
    store_step(lid);
    barrier();
    if (s + 1 < steps) load_step((s + 1) * BK, lid);
    [[unroll]] for (uint k = 0; k < BK; k++) {
      float av[TM], bv[TN];
#if DES_GEMM_MODE == 1
      float uv[TN];
#endif
      if (VM) {
        [[unroll]] for (uint g = 0; g < TM / 4; g++) {
          vec4 v = As[k * SA + g * TY + ty];
          [[unroll]] for (uint c = 0; c < 4; c++) av[g * 4 + c] = v[c];
        }
      } else {
        [[unroll]] for (uint i = 0; i < TM; i++) av[i] = As[k * SA + row_of(ty, i) / 4][row_of(ty, i) % 4];
      }
      if (VN) {
        [[unroll]] for (uint g = 0; g < TN / 4; g++) {
          vec4 v = W1s[k * SW + g * TX + tx];
          [[unroll]] for (uint c = 0; c < 4; c++) bv[g * 4 + c] = v[c];
#if DES_GEMM_MODE == 1
          vec4 u = W2s[k * SW + g * TX + tx];
          [[unroll]] for (uint c = 0; c < 4; c++) uv[g * 4 + c] = u[c];
#endif
        }
      } else {
        [[unroll]] for (uint j = 0; j < TN; j++) {
          bv[j] = W1s[k * SW + col_of(tx, j) / 4][col_of(tx, j) % 4];
#if DES_GEMM_MODE == 1
          uv[j] = W2s[k * SW + col_of(tx, j) / 4][col_of(tx, j) % 4];
#endif
        }
      }
      [[unroll]] for (uint i = 0; i < TM; i++)
        [[unroll]] for (uint j = 0; j < TN; j++) {
          acc1[i * TN + j] = fma(av[i], bv[j], acc1[i * TN + j]);
#if DES_GEMM_MODE == 1
          acc2[i * TN + j] = fma(av[i], uv[j], acc2[i * TN + j]);
#endif
        }
    }
    barrier(); // the next store_step overwrites the slices
  }

  [[unroll]] for (uint j = 0; j < TN; j++) {
    uint n = n0 + col_of(tx, j);
    if (n >= pc.n_end) continue;
    [[unroll]] for (uint i = 0; i < TM; i++) {
      uint row = row0 + row_of(ty, i);
#if DES_GEMM_MODE == 1
      o_mat[row * pc.N + n] = des_silu(acc1[i * TN + j]) * acc2[i * TN + j];
#else
      o_mat[row * pc.N + n] = acc1[i * TN + j];
#endif
    }
  }
}
#endif // DES_GEMM_MODE && !DES_SG
