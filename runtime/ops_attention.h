/* RoPE and Hierarchical Sparse Attention on the GPU (SPEC sections 4-5).
 *
 * RoPE: the rotation angles come from a small table computed once in f64 (per head dim and
 * theta), so positions up to 2^24 keep f32 accuracy.
 *
 * HSA attention: FlashAttention-2 style block-sparse attention over the CSR plan of
 * host/hsa_plan.h. The plan is uploaded once per (N, H, dh) with drd_attention_plan_upload,
 * which also decides how the work is cut:
 *   - each query block's visible key blocks form one work item (one workgroup per row tile
 *     and head), written straight to out;
 *   - rows longer than the longest ordinary row (the global query blocks, which see all nb
 *     blocks) are split into pieces of about that length (split-K); each piece writes a
 *     partial (m, l, unnormalised o) to a scratch slot and a second small kernel merges a
 *     row's slots exactly by log-sum-exp;
 *   - when q/k/v/out do not fit one binding (drd_max_bind_range), token rows are bound in
 *     windows of whole blocks. A query block's keys can be in any window, so the key range is
 *     walked window by window ("rounds"): in round kw every query window runs the pieces of its
 *     rows whose keys lie in key window kw, and the merge kernel folds them into a running
 *     state (unnormalised o kept in out, (m, l) in a [N, H, 2] stats buffer) that the row's
 *     last round normalises. Memory stays O(N); only the number of dispatches grows.
 * Scratch is O(N): slots for the split rows of one dispatch group plus, when windowed, the
 * stats buffer.
 * Several kernels compute the pieces, with the same work items, bindings and outputs (so the
 * plan and the merge are shared): the scalar one in f32 (attn_hsa_f32*.comp), its CPU-device
 * form without shared memory (attn_hsa_sg.comp) and, where the device
 * has cooperative matrices and the head dim suits them, attn_hsa_cm.comp or, with
 * VK_NV_cooperative_matrix2's conversions, attn_hsa_cm2.comp (q, k, v and the softmax weights
 * rounded to f16, f32 accumulation); see drd_attention_kernel. */
#ifndef DRD_OPS_ATTENTION_H
#define DRD_OPS_ATTENTION_H

#include "hsa_plan.h"
#include "ops.h"

/* ------------------------------------------------------------------ RoPE */
/* {cos, sin}(n * f_i) for positions n < positions and pairs i < dh/2, f_i = theta^(-2i/dh):
 * the reference's f64 values (host/ref_ops.c) rounded to f32, so the angle is never formed in
 * f32 (at n ~ 7e4 its rounding alone would be ~4e-3 rad). Row n holds the dh/2 cosines, then
 * the dh/2 sines: a run of positions is one contiguous range (row chunks bind their part), and
 * the cooperative-matrix GEMM loads 16 positions' cosines (or sines) of a head as one matrix.
 * A session makes one for its length: dh * 4 bytes per position. */
typedef struct drd_rope_table {
  drd_buffer buf; /* [positions, 2, dh/2] f32 */
  uint32_t dh, positions;
  float theta;
} drd_rope_table;

/* dh even, >= 2; positions >= 1. Destroy with drd_rope_table_destroy (safe on a zeroed or
 * failed table). */
drd_status drd_rope_table_create(drd_context *ctx, uint32_t dh, float theta, uint32_t positions,
                                 drd_rope_table *out);
void drd_rope_table_destroy(drd_context *ctx, drd_rope_table *t);

/* Rotate-half RoPE for positions 0..N-1 (N <= the table's positions): x, out: [N, H*dh] f32, head j owns columns
 * j*dh .. j*dh+dh-1; out may be x (in place). dh is the table's. */
drd_status drd_op_rope(drd_seq *s, const drd_rope_table *table, const drd_buffer *x, const drd_buffer *out,
                       uint32_t N, uint32_t H);

/* ------------------------------------------------------------------ HSA attention */
typedef struct drd_attn_group drd_attn_group; /* one attention dispatch (+ its merge) */

/* The attention kernel (the merge kernel is the same for all). */
typedef enum drd_attn_kind {
  DRD_ATTN_AUTO = 0,    /* request only: cooperative matrices where the device and shape suit them,
                         * else drd_attention_f32_kind's */
  DRD_ATTN_SCALAR = 1,  /* shaders/attn_hsa_f32.comp, or _noshuffle without subgroup shuffles */
  DRD_ATTN_COOPMAT = 2, /* shaders/attn_hsa_cm*.comp: f16 q, k, v and p on cooperative matrices */
  DRD_ATTN_SUBGROUP = 3, /* shaders/attn_hsa_sg.comp: f32, a subgroup's width of invocations, CPU devices only */
} drd_attn_kind;

/* How the coopmat kernel's P reaches O += P V (attn_cm.glsl). */
typedef enum drd_attn_convert {
  DRD_ATTN_CONVERT_AUTO = 0, /* request only: in registers where the device can (caps.coopmat_convert) */
  DRD_ATTN_CONVERT_ON = 1,   /* attn_hsa_cm2.comp: accumulators converted into A operands */
  DRD_ATTN_CONVERT_OFF = 2,  /* attn_hsa_cm.comp: through the subgroup's rows of shared memory */
} drd_attn_convert;

/* A kernel and its tile. As a request (drd_attention_plan.request) only kind counts, and for
 * DRD_ATTN_COOPMAT the fields ns, tms, bc (0 = automatic), eager and convert;
 * drd_attention_kernel fills in the rest. */
typedef struct drd_attn_kernel {
  drd_attn_kind kind;
  uint32_t wg;       /* invocations per workgroup */
  uint32_t br, bc;   /* query rows per workgroup (the dispatch's y = ceil(B / br)); keys per K/V tile */
  uint32_t shared;   /* bytes of shared memory */
  /* scalar: tc threads per query row, each v4 vec4 of the head dim; partial dots through shuffles */
  uint32_t tc, v4;
  bool shuffle;
  /* coopmat: ns subgroups of tms row tiles (caps.coopmat_m rows each), the head dim padded to dhp;
   * eager: raise a row's max (and rescale its output) whenever a tile exceeds it, instead of
   * only when by more than 2^8 (tests) */
  uint32_t ns, tms, dhp, eager;
  drd_attn_convert convert;
} drd_attn_kernel;

/* The device side of one drd_hsa_plan for given H and dh. */
typedef struct drd_attention_plan {
  uint32_t N, H, dh, B, nb;
  uint32_t window_blocks; /* query / key blocks per binding window (nb when everything fits) */
  uint32_t split;         /* key blocks per piece of a split row */
  uint32_t n_groups;
  drd_attn_group *groups;
  uint32_t n_items, n_merge_items, max_slots;
  uint64_t pairs;         /* visited (query, key) pairs of one head: 4*dh*pairs*H flops */
  drd_buffer items;       /* [n_items, 4] u32: (query block, c0, c1, slot or ~0) */
  drd_buffer merge_items; /* [n_merge_items, 4] u32: (query block, s0, s1, flags) */
  drd_buffer col;         /* [nnz] u32: the plan's CSR key blocks */
  drd_buffer slot_o;      /* [max_slots, B, H, dh] f32: unnormalised partial outputs */
  drd_buffer slot_ml;     /* [max_slots, B, H, 2] f32: their (max, sum), log2 domain */
  drd_buffer stats;       /* [N, H, 2] f32 running (max, sum) when windowed, else a placeholder */
  drd_attn_kernel request; /* zeroed (automatic) by the upload; tests and benchmarks may set it
                            * before recording: drd_op_attention_hsa fails when it cannot run */
} drd_attention_plan;

/* Builds and uploads the work lists for `plan` (N >= 1) with H heads of dim dh (even,
 * 2..128). UNSUPPORTED when one block of B rows (B * H * dh * 4 bytes) does not fit in one
 * binding. Free with drd_attention_plan_free (safe on a zeroed or failed plan). */
drd_status drd_attention_plan_upload(drd_context *ctx, const drd_hsa_plan *plan, uint32_t H, uint32_t dh,
                                     drd_attention_plan *out);
void drd_attention_plan_free(drd_context *ctx, drd_attention_plan *dp);

/* out = HSA attention per head: softmax_j(q_i . k_j / sqrt(dh)) v_j over the keys the plan lets
 * query i see. q, k, v, out: [N, H*dh] f32 (q and k already rotated); out must not alias q, k or
 * v (it holds the running state of windowed rows). Records 1 + (1 when rows are split)
 * dispatches when everything fits one binding, more when windowed. */
drd_status drd_op_attention_hsa(drd_seq *s, const drd_attention_plan *dp, const drd_buffer *q,
                                const drd_buffer *k, const drd_buffer *v, const drd_buffer *out);
/* The same with out16: [N, H*dh] f16, each element the f32 result rounded to nearest even (the
 * copy the cooperative-matrix o projection reads, without a conversion pass over an f32 out),
 * and with in16, q, k and v as [N, H*dh] f16, q already multiplied by drd_attention_q_scale
 * (what the kernel makes of f32 q, k and v anyway: given f16(q * scale) with that f32 product,
 * f16(k) and f16(v), the same results). Only where drd_attention_f16_out: the cooperative-
 * matrix kernel (the plan's request), 16-bit storage, and all keys in one binding window (no
 * running state kept in out); else UNSUPPORTED. */
bool drd_attention_f16_out(const drd_context *ctx, const drd_attention_plan *dp);
drd_status drd_op_attention_hsa_f16(drd_seq *s, const drd_attention_plan *dp, const drd_buffer *q,
                                    const drd_buffer *k, const drd_buffer *v, bool in16, const drd_buffer *out16);
/* The factor the kernels apply to q before its products with k: log2(e) / sqrt(dh) (scores
 * are kept in the log2 domain). */
float drd_attention_q_scale(uint32_t dh);

/* The kernel drd_op_attention_hsa records for dp on this context: dp->request resolved, or the
 * automatic choice (cooperative matrices when caps.coopmat_m != 0, the subgroup supports
 * shuffles and votes, the head dim padded to the matrix shape wastes at most a quarter of it,
 * and the tile fits shared memory; else drd_attention_f32_kind's). UNSUPPORTED when the request
 * cannot run here. */
drd_status drd_attention_kernel(const drd_context *ctx, const drd_attention_plan *dp, drd_attn_kernel *out);

/* The f32 kernel for this device: DRD_ATTN_SUBGROUP on a CPU device (subgroups of 64 or fewer),
 * else DRD_ATTN_SCALAR. */
drd_attn_kind drd_attention_f32_kind(const drd_context *ctx, uint32_t dh);

/* Number of attention + merge dispatches drd_op_attention_hsa records (for tests / benches). */
uint32_t drd_attention_dispatch_count(const drd_attention_plan *dp);

#endif
