/* C reference kernels: threads, element-wise ops, RMSNorm, softmax, packed GEMM with f64
 * accumulation (generic C, AVX2+FMA and AVX-512 micro-kernels giving identical bits),
 * RoPE and HSA attention. */
#include "ref_ops.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hsa_plan.h"
#include "log.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DRD_X86 1
#include <immintrin.h>
#else
#define DRD_X86 0
#endif

/* ================================================================== threads */

static atomic_uint g_forced_threads;

void drd_ref_set_threads(uint32_t n) { atomic_store(&g_forced_threads, n); }

uint32_t drd_ref_threads(void) {
  uint32_t n = atomic_load(&g_forced_threads);
  if (n == 0) {
    const char *e = getenv("DRDIFF_THREADS");
    if (e && *e) {
      char *end = NULL;
      unsigned long v = strtoul(e, &end, 10);
      if (end && *end == '\0' && v >= 1) n = v > DRD_REF_MAX_THREADS ? DRD_REF_MAX_THREADS : (uint32_t)v;
    }
  }
  if (n == 0) {
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    n = c < 1 ? 1 : (c > DRD_REF_MAX_THREADS ? DRD_REF_MAX_THREADS : (uint32_t)c);
  }
  return n > DRD_REF_MAX_THREADS ? DRD_REF_MAX_THREADS : n;
}

typedef struct par_job {
  drd_ref_task_fn fn;
  void *ctx;
  uint32_t n_tasks;
  atomic_uint next;
} par_job;

typedef struct par_arg {
  par_job *job;
  uint32_t thread;
} par_arg;

static void par_loop(par_job *job, uint32_t thread) {
  for (;;) {
    const uint32_t t = atomic_fetch_add(&job->next, 1u);
    if (t >= job->n_tasks) return;
    job->fn(job->ctx, t, thread);
  }
}

static void *par_main(void *p) {
  par_arg *a = p;
  par_loop(a->job, a->thread);
  return NULL;
}

/* Fallback: threads started for this call only (used when the pool is busy: a parallel
 * region inside a task, or two engines running at once on different threads). */
static void parallel_spawn(par_job *job, uint32_t nthreads) {
  pthread_t tid[DRD_REF_MAX_THREADS];
  par_arg args[DRD_REF_MAX_THREADS];
  uint8_t started[DRD_REF_MAX_THREADS] = {0};
  for (uint32_t i = 1; i < nthreads; i++) {
    args[i] = (par_arg){.job = job, .thread = i};
    started[i] = pthread_create(&tid[i], NULL, par_main, &args[i]) == 0;
  }
  par_loop(job, 0);
  for (uint32_t i = 1; i < nthreads; i++)
    if (started[i]) pthread_join(tid[i], NULL);
}

/* A persistent pool: starting 15 threads costs ~0.5 ms, and a forward pass has hundreds
 * of parallel regions. Workers sleep on a condition variable between jobs and are never
 * joined (they end with the process). Worker i runs as thread index i + 1. */
static struct {
  pthread_mutex_t lock;
  pthread_cond_t wake, done;
  uint32_t nworkers;  /* started so far */
  uint64_t gen;       /* bumped for every job */
  par_job *job;
  uint32_t want;      /* threads in the current job, the caller included */
  uint32_t active;    /* workers of the current job still running */
  uint64_t born[DRD_REF_MAX_THREADS]; /* gen when worker i was started: its first "seen" */
} g_pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};
static atomic_flag g_pool_busy = ATOMIC_FLAG_INIT;

static void *pool_worker(void *p) {
  const uint32_t idx = (uint32_t)(uintptr_t)p; /* thread index, >= 1 */
  pthread_mutex_lock(&g_pool.lock);
  /* Not g_pool.gen: the job it was started for may already have bumped it. */
  uint64_t seen = g_pool.born[idx];
  for (;;) {
    while (g_pool.gen == seen) pthread_cond_wait(&g_pool.wake, &g_pool.lock);
    seen = g_pool.gen;
    if (idx >= g_pool.want) continue;
    par_job *job = g_pool.job;
    pthread_mutex_unlock(&g_pool.lock);
    par_loop(job, idx);
    pthread_mutex_lock(&g_pool.lock);
    if (--g_pool.active == 0) pthread_cond_signal(&g_pool.done);
  }
  return NULL;
}

void drd_ref_parallel(uint32_t nthreads, uint32_t n_tasks, drd_ref_task_fn fn, void *ctx) {
  if (n_tasks == 0) return;
  if (nthreads > n_tasks) nthreads = n_tasks;
  if (nthreads > DRD_REF_MAX_THREADS) nthreads = DRD_REF_MAX_THREADS;
  par_job job = {.fn = fn, .ctx = ctx, .n_tasks = n_tasks};
  atomic_init(&job.next, 0u);
  if (nthreads <= 1) {
    par_loop(&job, 0);
    return;
  }
  if (atomic_flag_test_and_set(&g_pool_busy)) {
    parallel_spawn(&job, nthreads);
    return;
  }
  pthread_mutex_lock(&g_pool.lock);
  while (g_pool.nworkers + 1 < nthreads) { /* grow the pool; on failure use what there is */
    pthread_t t;
    pthread_attr_t attr;
    g_pool.born[g_pool.nworkers + 1] = g_pool.gen;
    int ok = pthread_attr_init(&attr) == 0;
    if (ok) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    ok = ok && pthread_create(&t, &attr, pool_worker, (void *)(uintptr_t)(g_pool.nworkers + 1)) == 0;
    pthread_attr_destroy(&attr);
    if (!ok) break;
    g_pool.nworkers++;
  }
  if (nthreads > g_pool.nworkers + 1) nthreads = g_pool.nworkers + 1;
  g_pool.job = &job;
  g_pool.want = nthreads;
  g_pool.active = nthreads - 1;
  g_pool.gen++;
  pthread_cond_broadcast(&g_pool.wake);
  pthread_mutex_unlock(&g_pool.lock);
  par_loop(&job, 0);
  pthread_mutex_lock(&g_pool.lock);
  while (g_pool.active) pthread_cond_wait(&g_pool.done, &g_pool.lock);
  g_pool.job = NULL;
  pthread_mutex_unlock(&g_pool.lock);
  atomic_flag_clear(&g_pool_busy);
}

/* ================================================================== element-wise */

void drd_ref_add(const float *a, const float *b, float *out, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void drd_ref_mul(const float *a, const float *b, float *out, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}

void drd_ref_scale(const float *x, float s, float *out, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = s * x[i];
}

static double silu_d(double x) { return x / (1.0 + exp(-x)); }

void drd_ref_silu(const float *x, float *out, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = (float)silu_d((double)x[i]);
}

void drd_ref_swiglu(const float *g, const float *u, float *out, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = (float)(silu_d((double)g[i]) * (double)u[i]);
}

/* ================================================================== rows */

void drd_ref_rmsnorm(const float *x, const float *w, float *out, size_t rows, size_t cols, float eps) {
  for (size_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    float *o = out + r * cols;
    double ss = 0.0;
    for (size_t c = 0; c < cols; c++) ss += (double)xr[c] * (double)xr[c];
    const double inv = 1.0 / sqrt(ss / (double)cols + (double)eps);
    for (size_t c = 0; c < cols; c++) o[c] = (float)((double)xr[c] * inv * (double)w[c]);
  }
}

void drd_ref_softmax_rows(const float *x, float *out, size_t rows, size_t cols) {
  for (size_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    float *o = out + r * cols;
    if (cols == 0) continue;
    float mx = xr[0];
    for (size_t c = 1; c < cols; c++)
      if (xr[c] > mx) mx = xr[c];
    double sum = 0.0;
    for (size_t c = 0; c < cols; c++) sum += exp((double)xr[c] - (double)mx);
    /* exp twice rather than a scratch row: out may alias x, and this is a reference */
    for (size_t c = 0; c < cols; c++) o[c] = (float)(exp((double)xr[c] - (double)mx) / sum);
  }
}

/* ================================================================== GEMM */

enum { ISA_GENERIC = 0, ISA_AVX2 = 1, ISA_AVX512 = 2 };
static atomic_int g_isa_forced = -1; /* -1: not forced */
static atomic_int g_isa_detected = -1;

static int isa_from_name(const char *s) {
  if (!s) return -1;
  if (!strcmp(s, "generic")) return ISA_GENERIC;
  if (!strcmp(s, "avx2")) return ISA_AVX2;
  if (!strcmp(s, "avx512")) return ISA_AVX512;
  return -1;
}

static int isa_detect(void) {
  int isa = ISA_GENERIC;
#if DRD_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) isa = ISA_AVX2;
  if (__builtin_cpu_supports("avx512f")) isa = ISA_AVX512;
#endif
  const int env = isa_from_name(getenv("DRDIFF_CPU_ISA"));
  if (env >= 0 && env < isa) isa = env; /* only ever a lesser path than the CPU has */
  return isa;
}

static int isa_current(void) {
  int d = atomic_load(&g_isa_detected);
  if (d < 0) {
    d = isa_detect();
    atomic_store(&g_isa_detected, d);
  }
  const int f = atomic_load(&g_isa_forced);
  return f >= 0 && f < d ? f : d;
}

const char *drd_ref_gemm_isa(void) {
  static const char *names[] = {"generic", "avx2", "avx512"};
  return names[isa_current()];
}

void drd_ref_gemm_force_isa(const char *isa) { atomic_store(&g_isa_forced, isa_from_name(isa)); }

static uint32_t isa_mr(int isa) { return isa == ISA_AVX512 ? 8 : 4; }

drd_status drd_ref_pack_alloc(uint32_t N, uint32_t K, drd_ref_packed *out) {
  out->N = N;
  out->K = K;
  const size_t np = ((size_t)N + DRD_GEMM_NR - 1) / DRD_GEMM_NR;
  size_t bytes = np * K * DRD_GEMM_NR * sizeof(float);
  bytes = (bytes + 63) / 64 * 64;
  out->panels = bytes ? aligned_alloc(64, bytes) : NULL;
  if (bytes && !out->panels)
    return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "GEMM: packing a [%u, %u] weight (%zu bytes)", N, K, bytes);
  if (bytes) memset(out->panels, 0, bytes);
  return DRD_OK;
}

void drd_ref_pack_row(drd_ref_packed *pw, uint32_t n, const float *row) {
  float *dst = pw->panels + (size_t)(n / DRD_GEMM_NR) * pw->K * DRD_GEMM_NR + n % DRD_GEMM_NR;
  for (uint32_t k = 0; k < pw->K; k++) dst[(size_t)k * DRD_GEMM_NR] = row[k];
}

drd_status drd_ref_pack(const float *W, uint32_t N, uint32_t K, drd_ref_packed *out) {
  drd_status st = drd_ref_pack_alloc(N, K, out);
  if (st != DRD_OK) return st;
  for (uint32_t n = 0; n < N; n++) drd_ref_pack_row(out, n, W + (size_t)n * K);
  return DRD_OK;
}

void drd_ref_pack_free(drd_ref_packed *pw) {
  if (!pw) return;
  free(pw->panels);
  pw->panels = NULL;
}

size_t drd_ref_gemm_scratch(uint32_t K) { return (size_t)DRD_GEMM_MC * (K ? K : 1); }

/* Micro-kernels: acc[r*16 + j] = sum over k ascending of Ap[k*MR + r] * w[k*ldw + j], with
 * w = w0 for j < 8 and w = w1 (column j - 8) for 8 <= j < 16 (only the AVX-512 kernel does
 * two panels). All start from 0 and add exact f64 products in the same order, so they agree
 * bit for bit. */
static void kern_generic(const double *Ap, const float *w0, const float *w1, size_t ldw, uint32_t K,
                         double *acc) {
  (void)w1;
  double c[4][8] = {{0}};
  for (uint32_t k = 0; k < K; k++) {
    const float *w = w0 + (size_t)k * ldw;
    const double *a = Ap + (size_t)k * 4;
    for (int r = 0; r < 4; r++)
      for (int j = 0; j < 8; j++) c[r][j] += a[r] * (double)w[j];
  }
  for (int r = 0; r < 4; r++)
    for (int j = 0; j < 8; j++) acc[r * 16 + j] = c[r][j];
}

#if DRD_X86
__attribute__((target("avx2,fma"))) static void kern_avx2(const double *Ap, const float *w0,
                                                          const float *w1, size_t ldw, uint32_t K,
                                                          double *acc) {
  (void)w1;
  __m256d c00 = _mm256_setzero_pd(), c01 = c00, c10 = c00, c11 = c00;
  __m256d c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  for (uint32_t k = 0; k < K; k++) {
    const __m256d wa = _mm256_cvtps_pd(_mm_loadu_ps(w0 + (size_t)k * ldw));
    const __m256d wb = _mm256_cvtps_pd(_mm_loadu_ps(w0 + (size_t)k * ldw + 4));
    const double *a = Ap + (size_t)k * 4;
    __m256d x = _mm256_broadcast_sd(a + 0);
    c00 = _mm256_fmadd_pd(x, wa, c00);
    c01 = _mm256_fmadd_pd(x, wb, c01);
    x = _mm256_broadcast_sd(a + 1);
    c10 = _mm256_fmadd_pd(x, wa, c10);
    c11 = _mm256_fmadd_pd(x, wb, c11);
    x = _mm256_broadcast_sd(a + 2);
    c20 = _mm256_fmadd_pd(x, wa, c20);
    c21 = _mm256_fmadd_pd(x, wb, c21);
    x = _mm256_broadcast_sd(a + 3);
    c30 = _mm256_fmadd_pd(x, wa, c30);
    c31 = _mm256_fmadd_pd(x, wb, c31);
  }
  _mm256_storeu_pd(acc + 0 * 16, c00);
  _mm256_storeu_pd(acc + 0 * 16 + 4, c01);
  _mm256_storeu_pd(acc + 1 * 16, c10);
  _mm256_storeu_pd(acc + 1 * 16 + 4, c11);
  _mm256_storeu_pd(acc + 2 * 16, c20);
  _mm256_storeu_pd(acc + 2 * 16 + 4, c21);
  _mm256_storeu_pd(acc + 3 * 16, c30);
  _mm256_storeu_pd(acc + 3 * 16 + 4, c31);
}

#define K512_ROW(r)                                       \
  x = _mm512_set1_pd(a[r]);                               \
  c##r##a = _mm512_fmadd_pd(x, wa, c##r##a);              \
  c##r##b = _mm512_fmadd_pd(x, wb, c##r##b);
#define K512_STORE(r)                                     \
  _mm512_storeu_pd(acc + (r) * 16, c##r##a);              \
  _mm512_storeu_pd(acc + (r) * 16 + 8, c##r##b);

__attribute__((target("avx512f"))) static void kern_avx512(const double *Ap, const float *w0,
                                                           const float *w1, size_t ldw, uint32_t K,
                                                           double *acc) {
  __m512d c0a = _mm512_setzero_pd(), c0b = c0a, c1a = c0a, c1b = c0a, c2a = c0a, c2b = c0a;
  __m512d c3a = c0a, c3b = c0a, c4a = c0a, c4b = c0a, c5a = c0a, c5b = c0a;
  __m512d c6a = c0a, c6b = c0a, c7a = c0a, c7b = c0a;
  for (uint32_t k = 0; k < K; k++) {
    const __m512d wa = _mm512_cvtps_pd(_mm256_loadu_ps(w0 + (size_t)k * ldw));
    const __m512d wb = _mm512_cvtps_pd(_mm256_loadu_ps(w1 + (size_t)k * ldw));
    const double *a = Ap + (size_t)k * 8;
    __m512d x;
    K512_ROW(0) K512_ROW(1) K512_ROW(2) K512_ROW(3)
    K512_ROW(4) K512_ROW(5) K512_ROW(6) K512_ROW(7)
  }
  K512_STORE(0) K512_STORE(1) K512_STORE(2) K512_STORE(3)
  K512_STORE(4) K512_STORE(5) K512_STORE(6) K512_STORE(7)
}
#endif

/* Packs rows [0, m) of A (stride lda, K columns) to f64 in groups of MR rows, layout
 * [group][K][MR]; rows past m are zero. */
static void pack_a(const float *A, size_t lda, uint32_t m, uint32_t K, uint32_t MR, double *dst) {
  const uint32_t groups = (m + MR - 1) / MR;
  for (uint32_t g = 0; g < groups; g++) {
    double *d = dst + (size_t)g * K * MR;
    for (uint32_t r = 0; r < MR; r++) {
      const uint32_t i = g * MR + r;
      if (i < m) {
        const float *a = A + (size_t)i * lda;
        for (uint32_t k = 0; k < K; k++) d[(size_t)k * MR + r] = (double)a[k];
      } else {
        for (uint32_t k = 0; k < K; k++) d[(size_t)k * MR + r] = 0.0;
      }
    }
  }
}

typedef drd_ref_panels panel_view;

static void gemm_tile_view(const float *A, size_t lda, uint32_t m, const panel_view *W, uint32_t n0,
                           uint32_t n1, const float *bias, float *C, double *Cd, size_t ldc, double *ws) {
  const uint32_t K = W->K;
  const int isa = isa_current();
  const uint32_t MR = isa_mr(isa);
  const uint32_t pstep = isa == ISA_AVX512 ? 2 : 1; /* panels per kernel call */
  double acc[8 * 16];
  if (n1 > W->N) n1 = W->N;
  for (uint32_t mb = 0; mb < m; mb += DRD_GEMM_MC) {
    const uint32_t mc = m - mb < DRD_GEMM_MC ? m - mb : DRD_GEMM_MC;
    pack_a(A + (size_t)mb * lda, lda, mc, K, MR, ws);
    for (uint32_t p = n0 / DRD_GEMM_NR; (size_t)p * DRD_GEMM_NR < n1; p += pstep) {
      const float *w0 = W->data + p * W->pstride;
      const uint32_t nbase = p * DRD_GEMM_NR;
      uint32_t ncols = pstep * DRD_GEMM_NR;
      if (nbase + ncols > n1) ncols = n1 - nbase;
      /* second panel: the next one if it holds any wanted column, else w0 again (unused) */
      const float *w1 = ncols > DRD_GEMM_NR ? w0 + W->pstride : w0;
      for (uint32_t g = 0; g * MR < mc; g++) {
        const double *ap = ws + (size_t)g * K * MR;
        switch (isa) {
#if DRD_X86
        case ISA_AVX512: kern_avx512(ap, w0, w1, W->ldw, K, acc); break;
        case ISA_AVX2: kern_avx2(ap, w0, w1, W->ldw, K, acc); break;
#endif
        default: kern_generic(ap, w0, w1, W->ldw, K, acc); break;
        }
        const uint32_t rows = mc - g * MR < MR ? mc - g * MR : MR;
        for (uint32_t r = 0; r < rows; r++) {
          const size_t i = (size_t)mb + g * MR + r;
          for (uint32_t j = 0; j < ncols; j++) {
            const uint32_t n = nbase + j;
            double v = acc[r * 16 + j];
            if (bias) v += (double)bias[n];
            if (Cd) Cd[i * ldc + (n - n0)] = v;
            else C[i * ldc + (n - n0)] = (float)v;
          }
        }
      }
    }
  }
}

static panel_view packed_view(const drd_ref_packed *W) {
  return (panel_view){.data = W->panels, .N = W->N, .K = W->K, .ldw = DRD_GEMM_NR,
                      .pstride = (size_t)W->K * DRD_GEMM_NR};
}

void drd_ref_gemm_panels(const float *A, size_t lda, uint32_t m, const drd_ref_panels *W, uint32_t n0,
                         uint32_t n1, const float *bias, float *C, double *Cd, size_t ldc, double *ws) {
  gemm_tile_view(A, lda, m, W, n0, n1, bias, C, Cd, ldc, ws);
}

void drd_ref_gemm_tile(const float *A, size_t lda, uint32_t m, const drd_ref_packed *W,
                       uint32_t n0, uint32_t n1, const float *bias, float *C, double *Cd,
                       size_t ldc, double *ws) {
  const panel_view v = packed_view(W);
  gemm_tile_view(A, lda, m, &v, n0, n1, bias, C, Cd, ldc, ws);
}

typedef struct gemm_ctx {
  const float *A;
  const drd_ref_packed *W;
  const float *bias;
  float *C;
  double *ws;
  size_t ws_per_thread;
  uint32_t M, mblocks, nchunk;
} gemm_ctx;

static void gemm_task(void *p, uint32_t task, uint32_t thread) {
  const gemm_ctx *c = p;
  const uint32_t mb = task % c->mblocks, nc = task / c->mblocks;
  const uint32_t m0 = mb * DRD_GEMM_MC;
  const uint32_t m = c->M - m0 < DRD_GEMM_MC ? c->M - m0 : DRD_GEMM_MC;
  const uint32_t n0 = nc * c->nchunk;
  const uint32_t n1 = n0 + c->nchunk < c->W->N ? n0 + c->nchunk : c->W->N;
  const size_t K = c->W->K;
  drd_ref_gemm_tile(c->A + (size_t)m0 * K, K, m, c->W, n0, n1, c->bias,
                    c->C + (size_t)m0 * c->W->N + n0, NULL, c->W->N,
                    c->ws + (size_t)thread * c->ws_per_thread);
}

drd_status drd_ref_gemm_packed(const float *A, uint32_t M, const drd_ref_packed *W,
                               const float *bias, float *C, uint32_t nthreads, double *ws) {
  if (M == 0 || W->N == 0) return DRD_OK;
  if (W->K == 0) { /* empty sum: C = bias */
    for (size_t i = 0; i < M; i++)
      for (size_t n = 0; n < W->N; n++) C[i * W->N + n] = bias ? bias[n] : 0.0f;
    return DRD_OK;
  }
  if (nthreads < 1) nthreads = 1;
  const uint32_t mblocks = (M + DRD_GEMM_MC - 1) / DRD_GEMM_MC;
  /* Column chunks of 256 (a multiple of both kernels' widths) keep a chunk's panels in
   * cache while the A block streams; narrower chunks when there are too few row blocks to
   * feed every thread. */
  uint32_t nchunk = 256;
  while (nchunk > 16 && (uint64_t)mblocks * ((W->N + nchunk - 1) / nchunk) < 4u * nthreads) nchunk /= 2;
  const uint32_t nchunks = (W->N + nchunk - 1) / nchunk;
  const uint64_t tasks64 = (uint64_t)mblocks * nchunks;
  const uint32_t tasks = tasks64 > UINT32_MAX ? UINT32_MAX : (uint32_t)tasks64;
  /* Small products are not worth a thread start. */
  const uint64_t work = (uint64_t)M * W->N * W->K;
  if (work < (1u << 18)) nthreads = 1;
  if (nthreads > tasks) nthreads = tasks;
  const size_t per = drd_ref_gemm_scratch(W->K);
  double *own = NULL;
  if (!ws) {
    own = malloc(sizeof(double) * per * nthreads);
    if (!own) return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "GEMM: %zu bytes of scratch", sizeof(double) * per * nthreads);
    ws = own;
  }
  gemm_ctx c = {.A = A, .W = W, .bias = bias, .C = C, .ws = ws, .ws_per_thread = per,
                .M = M, .mblocks = mblocks, .nchunk = nchunk};
  drd_ref_parallel(nthreads, tasks, gemm_task, &c);
  free(own);
  return DRD_OK;
}

drd_status drd_ref_gemm(const float *A, const float *W, const float *bias, float *C, uint32_t M,
                        uint32_t N, uint32_t K) {
  drd_ref_packed pw;
  drd_status st = drd_ref_pack(W, N, K, &pw);
  if (st != DRD_OK) return st;
  st = drd_ref_gemm_packed(A, M, &pw, bias, C, drd_ref_threads(), NULL);
  drd_ref_pack_free(&pw);
  return st;
}

/* ================================================================== RoPE */

void drd_ref_rope_table(uint32_t N, uint32_t dh, float theta, double *cs) {
  const uint32_t half = dh / 2;
  for (uint32_t i = 0; i < half; i++) {
    const double inv_freq = pow((double)theta, -2.0 * (double)i / (double)dh);
    for (uint32_t n = 0; n < N; n++) {
      const double ang = (double)n * inv_freq;
      cs[((size_t)n * half + i) * 2] = cos(ang);
      cs[((size_t)n * half + i) * 2 + 1] = sin(ang);
    }
  }
}

void drd_ref_rope_apply(float *x, uint32_t N, uint32_t H, uint32_t dh, const double *cs) {
  const uint32_t half = dh / 2;
  const size_t d = (size_t)H * dh;
  for (uint32_t n = 0; n < N; n++) {
    const double *t = cs + (size_t)n * half * 2;
    for (uint32_t h = 0; h < H; h++) {
      float *v = x + n * d + (size_t)h * dh;
      for (uint32_t i = 0; i < half; i++) {
        const double a = v[i], b = v[i + half], c = t[2 * i], s = t[2 * i + 1];
        v[i] = (float)(a * c - b * s);
        v[i + half] = (float)(a * s + b * c);
      }
    }
  }
}

/* ================================================================== HSA attention */

#define ATTN_QG 8u /* queries per group: one row group of the AVX-512 kernel */

typedef struct attn_ctx {
  const float *q;
  float *out;
  const float *kt;       /* [H][dh][kld] f32: keys transposed, zero past N: GEMM panels of 8 keys */
  const float *vp;       /* [H][npad][dh8] f32: values per head, columns padded to 8 with 0 */
  size_t kld, npad, d;
  uint32_t N, H, dh, dh8, B;
  const drd_hsa_plan *plan;
  const uint32_t *order; /* query blocks, global ones first (longest tasks start first) */
  void *scratch;
  size_t scratch_bytes;  /* per thread */
  size_t nk_cap;         /* most keys a query block sees */
  double scale;
} attn_ctx;

/* One (query block, head): per group of ATTN_QG queries, scores against every visible key
 * (f64, a GEMM on the transposed keys: exact products summed in ascending c), an exact
 * two-pass softmax, then P.V as a GEMM per key block. The weights p = exp(s - max) are
 * rounded to f32 before P.V and before their f64 sum, so P.V's products are exact too and
 * the result is the same bits on every SIMD path; the rounding moves a weight by at most
 * 2^-24 relative, and the normalisation uses the same rounded weights. */
static void attn_task(void *p, uint32_t task, uint32_t thread) {
  const attn_ctx *c = p;
  const drd_hsa_plan *pl = c->plan;
  const uint32_t a = c->order[task / c->H], h = task % c->H;
  uint8_t *base = (uint8_t *)c->scratch + (size_t)thread * c->scratch_bytes;
  double *s = (double *)base;                            /* [QG][nk_cap] f64 scores */
  float *pw = (float *)(s + ATTN_QG * c->nk_cap);        /* [QG][nk_cap] f32 weights */
  double *part = (double *)(pw + ATTN_QG * c->nk_cap + (ATTN_QG * c->nk_cap) % 2); /* [QG][dh] */
  double *acc = part + ATTN_QG * (size_t)c->dh;          /* [QG][dh] */
  double *den = acc + ATTN_QG * (size_t)c->dh;           /* [QG] */
  double *ws = den + ATTN_QG;                            /* GEMM scratch */
  const uint32_t *blocks = pl->col + pl->row[a];
  const uint32_t nblk = pl->row[a + 1] - pl->row[a];
  const uint32_t i0 = a * c->B, i1 = i0 + c->B < c->N ? i0 + c->B : c->N;
  for (uint32_t g0 = i0; g0 < i1; g0 += ATTN_QG) {
    const uint32_t qn = i1 - g0 < ATTN_QG ? i1 - g0 : ATTN_QG;
    const float *qa = c->q + (size_t)g0 * c->d + (size_t)h * c->dh;
    /* scores */
    size_t ns = 0;
    for (uint32_t t = 0; t < nblk; t++) {
      const uint32_t j0 = blocks[t] * c->B;
      const uint32_t jn = j0 + c->B < c->N ? c->B : c->N - j0;
      const panel_view kv = {.data = c->kt + (size_t)h * c->dh * c->kld + j0, .N = jn, .K = c->dh,
                             .ldw = c->kld, .pstride = DRD_GEMM_NR};
      gemm_tile_view(qa, c->d, qn, &kv, 0, jn, NULL, NULL, s + ns, c->nk_cap, ws);
      ns += jn;
    }
    /* softmax weights */
    for (uint32_t r = 0; r < qn; r++) {
      double *sr = s + r * c->nk_cap;
      float *pr = pw + r * c->nk_cap;
      double mx = -INFINITY;
      for (size_t j = 0; j < ns; j++) {
        sr[j] *= c->scale;
        if (sr[j] > mx) mx = sr[j];
      }
      double dsum = 0.0;
      for (size_t j = 0; j < ns; j++) {
        pr[j] = (float)exp(sr[j] - mx);
        dsum += (double)pr[j];
      }
      den[r] = dsum;
      for (uint32_t k = 0; k < c->dh; k++) acc[r * c->dh + k] = 0.0;
    }
    /* P.V, one key block at a time, partial sums added in block order */
    ns = 0;
    for (uint32_t t = 0; t < nblk; t++) {
      const uint32_t j0 = blocks[t] * c->B;
      const uint32_t jn = j0 + c->B < c->N ? c->B : c->N - j0;
      const panel_view vv = {.data = c->vp + ((size_t)h * c->npad + j0) * c->dh8, .N = c->dh, .K = jn,
                             .ldw = c->dh8, .pstride = DRD_GEMM_NR};
      gemm_tile_view(pw + ns, c->nk_cap, qn, &vv, 0, c->dh, NULL, NULL, part, c->dh, ws);
      for (size_t k = 0; k < (size_t)qn * c->dh; k++) acc[k] += part[k];
      ns += jn;
    }
    for (uint32_t r = 0; r < qn; r++) {
      float *o = c->out + (size_t)(g0 + r) * c->d + (size_t)h * c->dh;
      for (uint32_t k = 0; k < c->dh; k++) o[k] = (float)(acc[r * c->dh + k] / den[r]);
    }
  }
}

typedef struct attn_prep_ctx {
  const float *k, *v;
  float *kt, *vp;
  uint32_t N, dh, dh8;
  size_t d, kld, npad;
} attn_prep_ctx;

/* One head's keys transposed and values copied into their padded panel layouts. The keys
 * go through 8-key tiles so both the reads and the strided writes stay in cache lines. */
static void attn_prep_task(void *p, uint32_t h, uint32_t thread) {
  (void)thread;
  const attn_prep_ctx *c = p;
  for (size_t j0 = 0; j0 < c->N; j0 += 8) {
    const size_t j1 = j0 + 8 < c->N ? j0 + 8 : c->N;
    for (size_t c0 = 0; c0 < c->dh; c0++)
      for (size_t j = j0; j < j1; j++) c->kt[((size_t)h * c->dh + c0) * c->kld + j] = c->k[j * c->d + (size_t)h * c->dh + c0];
  }
  for (size_t j = 0; j < c->N; j++)
    memcpy(c->vp + ((size_t)h * c->npad + j) * c->dh8, c->v + j * c->d + (size_t)h * c->dh, sizeof(float) * c->dh);
}

drd_status drd_ref_attention_hsa(const float *q, const float *k, const float *v, float *out,
                                 uint32_t N, uint32_t H, uint32_t dh,
                                 const drd_hsa_plan *plan, uint32_t nthreads) {
  if (plan->N != N) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "attention: plan for N=%u used with N=%u", plan->N, N);
  if (nthreads < 1) nthreads = 1;
  const size_t d = (size_t)H * dh, npad = (size_t)plan->nb * plan->B;
  /* Key panels may read up to 7 keys past a block's end and value panels up to 7 columns
   * past dh: pad both with zeros so every read stays inside the buffers. */
  const size_t kld = npad + DRD_GEMM_NR;
  const uint32_t dh8 = (dh + DRD_GEMM_NR - 1) / DRD_GEMM_NR * DRD_GEMM_NR;
  const uint32_t tasks = plan->nb * H;
  if (nthreads > tasks) nthreads = tasks;
  size_t nk_cap = 0;
  for (uint32_t a = 0; a < plan->nb; a++) {
    const size_t keys = (size_t)(plan->row[a + 1] - plan->row[a]) * plan->B;
    if (keys > nk_cap) nk_cap = keys;
  }
  const uint32_t kmaxdim = dh > plan->B ? dh : plan->B;
  const size_t scratch_raw = sizeof(double) * ATTN_QG * nk_cap + sizeof(float) * (ATTN_QG * nk_cap + 1) +
                               sizeof(double) * (2 * ATTN_QG * (size_t)dh + ATTN_QG + drd_ref_gemm_scratch(kmaxdim));
  const size_t scratch_bytes = (scratch_raw + 63) / 64 * 64; /* keeps every thread's doubles aligned */
  float *kt = calloc((size_t)H * dh * kld, sizeof(float));   // [H][dh][kld] f32
  float *vp = calloc((size_t)H * npad * dh8, sizeof(float)); // [H][npad][dh8] f32
  void *scratch = malloc(scratch_bytes * nthreads);
  uint32_t *order = malloc(sizeof(uint32_t) * plan->nb);
  if (!kt || !vp || !scratch || !order) {
    free(kt);
    free(vp);
    free(scratch);
    free(order);
    return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "attention: scratch for N=%u", N);
  }
  attn_prep_ctx pc = {.k = k, .v = v, .kt = kt, .vp = vp, .N = N, .dh = dh, .dh8 = dh8, .d = d,
                      .kld = kld, .npad = npad};
  drd_ref_parallel(N >= 256 ? nthreads : 1, H, attn_prep_task, &pc);
  /* global query blocks (whole-sequence rows) first, then the rest ascending */
  uint32_t n = 0;
  for (uint32_t i = 0; i < plan->n_global; i++) order[n++] = plan->global[i];
  for (uint32_t a = 0, gi = 0; a < plan->nb; a++) {
    if (gi < plan->n_global && plan->global[gi] == a) {
      gi++;
      continue;
    }
    order[n++] = a;
  }
  attn_ctx c = {.q = q, .out = out, .kt = kt, .vp = vp, .kld = kld, .npad = npad, .d = d, .N = N,
                .H = H, .dh = dh, .dh8 = dh8, .B = plan->B, .plan = plan, .order = order,
                .scratch = scratch, .scratch_bytes = scratch_bytes, .nk_cap = nk_cap,
                .scale = 1.0 / sqrt((double)dh)};
  drd_ref_parallel(nthreads, tasks, attn_task, &c);
  free(kt);
  free(vp);
  free(scratch);
  free(order);
  return DRD_OK;
}
