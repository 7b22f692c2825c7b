/* C reference versions of the engine's kernels, on f32 arrays: the oracle the GPU kernels
 * are tested against, and the building blocks of the CPU engine (forward.c).
 *
 * Precision policy (see docs/model.md): storage is f32; every dot product and every
 * reduction accumulates in f64. A product of two f32 values is exact in f64, so a GEMM
 * element is the f64 sum, in ascending k, of exact products, rounded once to f32: FMA or
 * not, the bits are the same. That makes the GEMM independent of the SIMD path (generic C,
 * AVX2+FMA, AVX-512) and of the thread count, bit for bit. */
#ifndef DRD_REF_OPS_H
#define DRD_REF_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "drdiff.h"

/* ------------------------------------------------------------------ threads */
/* Threads the reference ops use: drd_ref_set_threads' value, else $DRDIFF_THREADS, else the
 * number of online CPUs; always 1..DRD_REF_MAX_THREADS. */
#define DRD_REF_MAX_THREADS 256
uint32_t drd_ref_threads(void);
void drd_ref_set_threads(uint32_t n); /* 0: back to $DRDIFF_THREADS / online CPUs */

/* Runs fn(ctx, task, thread) for every task in [0, n_tasks) on up to nthreads threads
 * (the caller's thread is one of them); thread < nthreads identifies per-thread scratch.
 * Tasks are handed out in ascending order by an atomic counter; each task must write
 * disjoint outputs, so results do not depend on the thread count. The threads come from
 * a process-wide pool that grows on demand and sleeps between calls; a call made while the
 * pool is busy (from inside a task, or from another thread) starts its own threads. If a
 * thread cannot be started, the others do its share. */
typedef void (*drd_ref_task_fn)(void *ctx, uint32_t task, uint32_t thread);
void drd_ref_parallel(uint32_t nthreads, uint32_t n_tasks, drd_ref_task_fn fn, void *ctx);

/* ------------------------------------------------------------------ element-wise, [n] f32 */
void drd_ref_add(const float *a, const float *b, float *out, size_t n);   /* a + b */
void drd_ref_mul(const float *a, const float *b, float *out, size_t n);   /* a * b */
void drd_ref_scale(const float *x, float s, float *out, size_t n);        /* s * x */
void drd_ref_silu(const float *x, float *out, size_t n);                  /* x / (1 + e^-x) */
void drd_ref_swiglu(const float *g, const float *u, float *out, size_t n); /* silu(g) * u */

/* ------------------------------------------------------------------ rows */
/* out = x / sqrt(mean(x^2) + eps) * w per row; x, out: [rows, cols] f32, w: [cols] f32. */
void drd_ref_rmsnorm(const float *x, const float *w, float *out, size_t rows, size_t cols, float eps);
/* Row-wise softmax (max-subtracted, f64 exp and sum); x, out: [rows, cols] f32. */
void drd_ref_softmax_rows(const float *x, float *out, size_t rows, size_t cols);

/* ------------------------------------------------------------------ GEMM: C = A W^T + bias */
/* W pre-packed into panels of DRD_GEMM_NR output columns: panel p holds columns
 * [p*NR, p*NR + NR) as [K][NR] f32 (columns past N are zero). Packing costs O(N K), so the
 * engine packs every weight once at load time. */
#define DRD_GEMM_NR 8
#define DRD_GEMM_MC 64 /* rows of A packed (to f64) per block */
typedef struct drd_ref_packed {
  uint32_t N, K;
  float *panels; /* [ceil(N/NR)][K][NR] f32, 64-byte aligned */
} drd_ref_packed;

drd_status drd_ref_pack_alloc(uint32_t N, uint32_t K, drd_ref_packed *out); /* zeroed panels */
/* Writes row n of W (K values) into its panel column. */
void drd_ref_pack_row(drd_ref_packed *pw, uint32_t n, const float *row);
drd_status drd_ref_pack(const float *W, uint32_t N, uint32_t K, drd_ref_packed *out); /* W: [N, K] */
void drd_ref_pack_free(drd_ref_packed *pw);

/* Scratch (in doubles) that one thread of drd_ref_gemm_tile needs for a given K. */
size_t drd_ref_gemm_scratch(uint32_t K);
/* Single-threaded worker: rows [0, m) of A (row stride lda, K = W->K columns) times the
 * packed columns [n0, n1) (n0 a multiple of NR). Output element (i, n) goes to
 * C[i*ldc + n - n0] as f32, or to Cd (same indexing) as f64 when Cd is not NULL.
 * bias: [W->N] f32 indexed by n, or NULL. ws: drd_ref_gemm_scratch(K) doubles. */
void drd_ref_gemm_tile(const float *A, size_t lda, uint32_t m, const drd_ref_packed *W,
                       uint32_t n0, uint32_t n1, const float *bias, float *C, double *Cd,
                       size_t ldc, double *ws);
/* A panel view of some W [N, K] that is not packed: panel p (columns p*NR ..) has its row k
 * at data + p*pstride + k*ldw. Packed weights are ldw = NR, pstride = K*NR; attention and
 * SAS read keys, values and embeddings in place through views. Every panel holding a
 * wanted column must be readable in full (NR floats per row, columns past N included). */
typedef struct drd_ref_panels {
  const float *data;
  uint32_t N, K;
  size_t ldw, pstride;
} drd_ref_panels;
/* drd_ref_gemm_tile on a view. */
void drd_ref_gemm_panels(const float *A, size_t lda, uint32_t m, const drd_ref_panels *W, uint32_t n0,
                         uint32_t n1, const float *bias, float *C, double *Cd, size_t ldc, double *ws);
/* C[M, N] = A[M, K] W^T + bias on nthreads threads. ws: nthreads * drd_ref_gemm_scratch(K)
 * doubles, or NULL to allocate (then OUT_OF_HOST_MEMORY is possible). */
drd_status drd_ref_gemm_packed(const float *A, uint32_t M, const drd_ref_packed *W,
                               const float *bias, float *C, uint32_t nthreads, double *ws);
/* The plain form: A: [M, K], W: [N, K], bias: [N] or NULL, C: [M, N] (packs W per call). */
drd_status drd_ref_gemm(const float *A, const float *W, const float *bias, float *C, uint32_t M,
                        uint32_t N, uint32_t K);
/* Which SIMD path the GEMM uses: "avx512", "avx2" or "generic". $DRDIFF_CPU_ISA (same
 * names) can force a lesser path, for tests. */
const char *drd_ref_gemm_isa(void);
void drd_ref_gemm_force_isa(const char *isa); /* NULL: back to the detected / env choice */

/* ------------------------------------------------------------------ attention pieces */
/* RoPE cos/sin table in f64: cs[(n*half + i)*2 + {0,1}] = {cos, sin}(n * theta^(-2i/dh)),
 * half = dh/2; cs: [N, dh/2, 2] f64. */
void drd_ref_rope_table(uint32_t N, uint32_t dh, float theta, double *cs);
/* Rotate-half RoPE in place on x: [N, H*dh] f32 (head j owns columns j*dh ..). */
void drd_ref_rope_apply(float *x, uint32_t N, uint32_t H, uint32_t dh, const double *cs);

struct drd_hsa_plan;
/* out = HSA attention per head: softmax_j(q_i . k_j / sqrt(dh)) v_j over the keys the plan
 * lets query i see. q, k, v, out: [N, H*dh] f32 (q and k already rotated). Exact two-pass
 * softmax per query (scores in f64, never an N x N buffer). nthreads threads. */
drd_status drd_ref_attention_hsa(const float *q, const float *k, const float *v, float *out,
                                 uint32_t N, uint32_t H, uint32_t dh,
                                 const struct drd_hsa_plan *plan, uint32_t nthreads);

#endif
