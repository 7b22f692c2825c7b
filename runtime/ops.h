/* Kernel wrappers: each records one operation (possibly several dispatches, e.g. when a
 * tensor is larger than one descriptor may cover) into a drd_seq. Shapes are in elements;
 * every buffer's comment gives its shape and type. */
#ifndef DRD_OPS_H
#define DRD_OPS_H

#include "model_file.h" /* drd_dtype */
#include "vk_internal.h"

/* Splits a 1-D dispatch of `groups` workgroups over x and y so neither exceeds the device's
 * limit; shaders rebuild the flat index as x + y * gl_NumWorkGroups.x * local_size. */
void drd_grid_1d(const drd_context *ctx, uint64_t groups, uint32_t *gx, uint32_t *gy);
/* The workgroup width of the CPU devices' own kernels (gemm_sg, des_sg, des_logits_sg,
 * attn_hsa_sg, sas_absorb_sg): the subgroup size, the lanes of one SIMD register, where the
 * device is a CPU, that size is 1 - 64 and a workgroup may have it, and its compute subgroups
 * shuffle (every one of those kernels hands values between lanes by subgroupShuffle); else 0. */
uint32_t drd_cpu_sg_wg(const drd_context *ctx);
/* The largest element count of `elem_size`-byte elements one binding may cover, a multiple
 * of `multiple` elements, with chunk offsets staying storage-aligned. */
uint64_t drd_chunk_elems(const drd_context *ctx, uint32_t elem_size, uint64_t multiple);

/* Whether bytes [a->offset, + a_bytes) and [b->offset, + b_bytes) of two buffers overlap
 * (sub-allocations share a VkBuffer, so the same VkBuffer alone does not mean aliasing). */
static inline bool drd_bytes_overlap(const drd_buffer *a, uint64_t a_bytes, const drd_buffer *b, uint64_t b_bytes) {
  return a->buffer == b->buffer && a->offset < b->offset + b_bytes && b->offset < a->offset + a_bytes;
}

typedef enum drd_eltwise_op {
  DRD_ELT_ADD = 0,    /* out = a + b */
  DRD_ELT_MUL = 1,    /* out = a * b */
  DRD_ELT_SCALE = 2,  /* out = alpha * a */
  DRD_ELT_SILU = 3,   /* out = a * sigmoid(a) */
  DRD_ELT_SWIGLU = 4, /* out = silu(a) * b */
} drd_eltwise_op;

/* a, b, out: [n] f32 (b is ignored by scale and silu and may be NULL). out may alias a or b. */
drd_status drd_op_eltwise(drd_seq *s, drd_eltwise_op op, const drd_buffer *a, const drd_buffer *b,
                          const drd_buffer *out, uint64_t n, float alpha);

/* out[i] = x[i] rounded to f16 (nearest even) for i < n. x: [n] f32; out: [n] f16. Needs 16-bit
 * storage (DRD_ERROR_UNSUPPORTED without). */
drd_status drd_op_to_f16(drd_seq *s, const drd_buffer *x, const drd_buffer *out, uint64_t n);
/* out[0..n) = the values of n elements (a multiple of 32) of Q8_0 blocks as GGUF stores them
 * (per 32 elements an f16 scale, then 32 int8; x = d q, exact in f32), as out_type: f32
 * (exact) or f16 (rounded to nearest even; needs 16-bit storage). q holds the raw bytes; its
 * size is rounded up to whole 32-bit words. */
drd_status drd_op_dequant_q8_0(drd_seq *s, const drd_buffer *q, const drd_buffer *out, drd_dtype out_type, uint64_t n);
/* out[0..n) = the values of n bf16 elements as out_type: f32 (exact) or f16 (rounded to
 * nearest even); b's size is rounded up to whole words. */
drd_status drd_op_widen_bf16(drd_seq *s, const drd_buffer *b, const drd_buffer *out, drd_dtype out_type, uint64_t n);

/* Binds `bytes` bytes that start `offset` bytes into b, from the storage-aligned offset at or
 * before it (ctx->alloc.alignment; buffers start aligned): *skip receives the bytes between
 * the binding's start and `offset`, which the shader adds as an element offset. */
static inline drd_bind drd_bind_span(const drd_context *ctx, const drd_buffer *b, uint64_t offset,
                                     uint64_t bytes, bool write, uint32_t *skip) {
  uint64_t base = offset / ctx->alloc.alignment * ctx->alloc.alignment;
  *skip = (uint32_t)(offset - base);
  return (drd_bind){b, base, offset - base + bytes, write};
}

/* Workgroup size of the row kernels (RMSNorm, softmax) for rows of `cols` elements. */
uint32_t drd_row_wg(const drd_context *ctx, uint32_t cols);

/* out = x / sqrt(mean(x^2) + eps) * w per row. x, out: [rows, cols] f32 (out may alias x);
 * w: [cols] f32. One row must fit in one binding (cols * 4 <= drd_max_bind_range). */
drd_status drd_op_rmsnorm(drd_seq *s, const drd_buffer *x, const drd_buffer *w, const drd_buffer *out,
                          uint32_t rows, uint32_t cols, float eps);

/* drd_op_rmsnorm that also writes out16 = f16(out) ([rows, cols] f16, round to nearest even):
 * the same bits as drd_op_rmsnorm then drd_op_to_f16, one pass fewer over out. With out NULL
 * only out16 is written (for consumers that read nothing else). UNSUPPORTED without 16-bit
 * storage. */
drd_status drd_op_rmsnorm_f16(drd_seq *s, const drd_buffer *x, const drd_buffer *w, const drd_buffer *out,
                              const drd_buffer *out16, uint32_t rows, uint32_t cols, float eps);

/* Workgroup size of the one-subgroup-per-row kernels (shaders/rmsnorm_sg.glsl) for rows of
 * `cols` elements; 0 where the device or the row length does not allow them. */
uint32_t drd_rows_sg_wg(const drd_context *ctx, uint32_t cols);

/* Whether drd_op_rmsnorm(_f16) runs one subgroup per row (shaders/rmsnorm_sg.glsl) for this
 * shape: its rows' bits then equal drd_op_rmsnorm_router's. */
bool drd_rmsnorm_on_subgroups(const drd_context *ctx, uint32_t rows, uint32_t cols);

/* drd_op_rmsnorm_f16 with out NULL that also writes the DES router's logits of the normalized
 * rows: logits [rows, E] f32 = out . router^T (router [E, cols] f32 or f16, E <= 8), summed in
 * des_logits' order (shaders/rmsnorm_sg.glsl), so the FFN's norm writes no f32 rows and the
 * router needs no pass (drd_op_des_ffn_ex with b NULL). UNSUPPORTED where
 * drd_rmsnorm_router_fits says no. */
bool drd_rmsnorm_router_fits(const drd_context *ctx, uint32_t rows, uint32_t cols, uint32_t E, drd_dtype rtype);
drd_status drd_op_rmsnorm_router(drd_seq *s, const drd_buffer *x, const drd_buffer *w, const drd_buffer *out16,
                                 const drd_buffer *router, drd_dtype rtype, uint32_t E, const drd_buffer *logits,
                                 uint32_t rows, uint32_t cols, float eps);

/* Row-wise softmax, max-subtracted. x, out: [rows, cols] f32 (out may alias x). One row must
 * fit in one binding. */
drd_status drd_op_softmax_rows(drd_seq *s, const drd_buffer *x, const drd_buffer *out, uint32_t rows,
                               uint32_t cols);

/* C = A W^T + bias with f32 accumulation. A: [M, K] f32; W: [N, K] f32 or f16 (raw IEEE half
 * bits) as wtype says (DRD_DTYPE_F32 = 0, DRD_DTYPE_F16 = 1 of host/model_file.h); bias: [N]
 * f32 or NULL; C: [M, N] f32 (must not alias A, W or bias). Tensors larger than one binding
 * are processed in chunks of rows of A / C, rows of W and, when even one row is too long,
 * of K (later K chunks accumulate into C). */
drd_status drd_op_gemm(drd_seq *s, const drd_buffer *A, const drd_buffer *W, drd_dtype wtype,
                       const drd_buffer *bias, const drd_buffer *C, uint32_t M, uint32_t N, uint32_t K);

/* GEMM kernels: the tiled shared-memory kernel (GPUs), and the subgroup-broadcast kernel for
 * CPU implementations, where shared-memory reads cost a loop over the SIMD lanes. */
typedef enum drd_gemm_kind {
  DRD_GEMM_TILED = 0,    /* shaders/gemm_{f32,f16,f16pack}.comp */
  DRD_GEMM_SUBGROUP = 1, /* shaders/gemm_sg_{f32,f16,f16pack}.comp */
  DRD_GEMM_COOPMAT = 2,  /* shaders/gemm_cm.comp: f16 weights, cooperative matrices */
} drd_gemm_kind;

/* A GEMM configuration. Tiled: the workgroup computes bm x bn of C in steps of bk along K,
 * each of its (bm / tm) * (bn / tn) invocations a tm x tn micro-tile (tm, tn multiples of 4).
 * Subgroup: the workgroup is one subgroup of S = caps.subgroup_size invocations computing
 * (S * tm) x (S * tn) of C; bm, bn and bk are ignored. Coopmat: bm x bn in steps of bk
 * computed by tm x tn subgroups (tm along M, tn along N), each a block of the device's
 * cooperative matrices (caps.coopmat_m x coopmat_n). */
typedef struct drd_gemm_config {
  drd_gemm_kind kind;
  uint32_t bm, bn, bk, tm, tn;
} drd_gemm_config;
typedef struct drd_rope_table drd_rope_table; /* ops_attention.h */
/* The general form: C (+)= A W^T + bias with A f32 or f16 (f16: the cooperative-matrix
 * kernel only, which takes f16 weights only) and, with accumulate, C added to instead of
 * overwritten (a residual connection in the GEMM's epilogue). With rope, C = RoPE(A W^T +
 * bias) over heads of rope->dh columns, rows at positions 0..M-1 (drd_op_rope's): in the
 * cooperative-matrix kernel's epilogue where each subgroup's columns are whole heads, else by
 * drd_op_rope after the product (not with accumulate). cfg NULL: drd_gemm_pick_for's. */
typedef struct drd_gemm_args {
  const drd_buffer *A; /* [M, K] */
  drd_dtype atype;     /* DRD_DTYPE_F32 or DRD_DTYPE_F16 */
  const drd_buffer *W; /* [N, K] */
  drd_dtype wtype;
  const drd_buffer *bias; /* [N] f32 or NULL */
  const drd_buffer *C;    /* [M, N] f32, or f16 where ctype says so */
  uint32_t M, N, K;
  bool accumulate;
  const drd_rope_table *rope; /* or NULL */
  /* DRD_DTYPE_F32 (0, the default) or DRD_DTYPE_F16: each sum rounded to nearest once. f16
   * only on the cooperative-matrix kernel, without accumulate, in one K chunk, and with RoPE
   * only where it fuses (drd_gemm_rope_fuses); else UNSUPPORTED. */
  drd_dtype ctype;
  /* f16 C only: each value is multiplied by c_scale (an f32 product) before it is rounded, as
   * the attention scales f32 q (drd_attention_q_scale); 0 (the default) leaves it as is */
  float c_scale;
} drd_gemm_args;
drd_status drd_op_gemm_ex(drd_seq *s, const drd_gemm_config *cfg, const drd_gemm_args *args);
/* Whether drd_op_gemm_ex with configuration cfg applies RoPE of head dim dh in its epilogue
 * (given no split K), rather than by drd_op_rope after it. */
bool drd_gemm_rope_fuses(const drd_context *ctx, const drd_gemm_config *cfg, uint32_t dh);

/* The configuration drd_op_gemm uses for this problem and weight type on this context. */
drd_gemm_config drd_gemm_pick_for(const drd_context *ctx, uint32_t M, uint32_t N, uint32_t K, drd_dtype wtype);
/* The best scalar (tiled or subgroup) configuration, the fallback of drd_gemm_pick_for. */
drd_gemm_config drd_gemm_pick(const drd_context *ctx, uint32_t M, uint32_t N, uint32_t K);
/* Whether cfg is well formed and fits the device's shared memory and workgroup limits. */
bool drd_gemm_config_ok(const drd_context *ctx, const drd_gemm_config *cfg);
/* drd_op_gemm with a given configuration (NULL: drd_gemm_pick's), for tests and tuning. */
drd_status drd_op_gemm_config(drd_seq *s, const drd_gemm_config *cfg, const drd_buffer *A, const drd_buffer *W,
                              drd_dtype wtype, const drd_buffer *bias, const drd_buffer *C, uint32_t M,
                              uint32_t N, uint32_t K);

/* Cooperative-matrix tiles (shaders/cm_gemm.glsl), shared by gemm_cm and the DES grouped
 * GEMMs: bm x bn in steps of bk, wm x wn subgroups, n_b B operands (2: DES gate and up),
 * n_acc accumulators per subgroup in the epilogue's scratch (2: fused RoPE; 2 at least anyway
 * where a subgroup has two columns of matrices, which the epilogue pairs). */
#define DRD_CM_SPEC 10u
/* Whether the tile fits the device's cooperative-matrix shape, workgroup limits and shared
 * memory (extra_shared: bytes the includer adds). */
bool drd_cm_tile_ok(const drd_context *ctx, uint32_t bm, uint32_t bn, uint32_t bk, uint32_t wm, uint32_t wn,
                    uint32_t n_b, uint32_t n_acc, uint64_t extra_shared);
/* Bytes of shared memory cm_gemm.glsl declares for the tile. */
uint64_t drd_cm_tile_shared(const drd_context *ctx, uint32_t bm, uint32_t bn, uint32_t bk, uint32_t wm, uint32_t wn,
                            uint32_t n_b, uint32_t n_acc);
/* Its specialization constants 0..9 (cm_gemm.glsl); returns DRD_CM_SPEC. */
uint32_t drd_cm_spec(const drd_context *ctx, uint32_t bm, uint32_t bn, uint32_t bk, uint32_t wm, uint32_t wn,
                     bool vec4, uint32_t spec[DRD_CM_SPEC]);

#endif
