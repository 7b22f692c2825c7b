/* GEMM benchmark: tool_bench_gemm M N K [f16|f32] [reps]
 * Uploads random A [M, K] f32, W [N, K] f16 or f32 and bias [N], records one sequence with
 * the GEMM, runs it once to warm up and then `reps` times (default 5), and prints one JSON
 * line: wall-clock milliseconds per GEMM around drd_seq_run, GFLOP/s = 2 M N K / time, the GPU
 * time from timestamps when DRDIFF_PROFILE=1, and the relative error of 64 sampled outputs
 * against an f64 host dot product (a sanity check, not a test).
 * DRDIFF_GEMM_TILE=bm,bn,bk,tm,tn (tiled kernel), sg,tm,tn (subgroup kernel) or
 * cm,bm,bn,bk,wm,wn (cooperative-matrix kernel) overrides the configuration, for tuning;
 * DRDIFF_GEMM_A16=1 stores A as f16 (cooperative-matrix kernel only); DRDIFF_GEMM_NO_BIAS=1
 * leaves the bias out (as in the engine's attention projections); DRDIFF_GEMM_ACCUMULATE=1 adds
 * to C (the engine's o projection) and DRDIFF_GEMM_ROPE=dh rotates heads of dh columns (its q
 * and k projections), both without the spot check. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dtype.h"
#include "ops_attention.h"
#include "util_gpu.h"
#include "util_rand.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static double gemm_gpu_ns(const drd_context *ctx) {
  for (uint32_t i = 0; i < ctx->n_profile; i++)
    if (!strcmp(ctx->profile_entries[i].name, "gemm")) return ctx->profile_entries[i].total_ns;
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s M N K [f16|f32] [reps]\n", argv[0]);
    return 2;
  }
  uint32_t M = (uint32_t)strtoul(argv[1], NULL, 10), N = (uint32_t)strtoul(argv[2], NULL, 10);
  uint32_t K = (uint32_t)strtoul(argv[3], NULL, 10);
  bool f16 = argc < 5 || strcmp(argv[4], "f32") != 0;
  int reps = argc > 5 ? atoi(argv[5]) : 5;
  if (!M || !N || !K || reps < 1) {
    fprintf(stderr, "M, N, K and reps must be positive\n");
    return 2;
  }
  drd_context *ctx = drd_bench_context();

  drd_gemm_config cfg = drd_gemm_pick_for(ctx, M, N, K, f16 ? DRD_DTYPE_F16 : DRD_DTYPE_F32);
  const char *tile = getenv("DRDIFF_GEMM_TILE");
  if (tile && !*tile) tile = NULL;
  if (tile && !strncmp(tile, "sg,", 3)) {
    cfg = (drd_gemm_config){.kind = DRD_GEMM_SUBGROUP};
    if (sscanf(tile + 3, "%u,%u", &cfg.tm, &cfg.tn) != 2) tile = "bad";
  } else if (tile && !strncmp(tile, "cm,", 3)) {
    cfg = (drd_gemm_config){.kind = DRD_GEMM_COOPMAT};
    if (sscanf(tile + 3, "%u,%u,%u,%u,%u", &cfg.bm, &cfg.bn, &cfg.bk, &cfg.tm, &cfg.tn) != 5) tile = "bad";
  } else if (tile) {
    cfg = (drd_gemm_config){.kind = DRD_GEMM_TILED};
    if (sscanf(tile, "%u,%u,%u,%u,%u", &cfg.bm, &cfg.bn, &cfg.bk, &cfg.tm, &cfg.tn) != 5) tile = "bad";
  }
  if (tile && !strcmp(tile, "bad")) {
    fprintf(stderr, "DRDIFF_GEMM_TILE: want bm,bn,bk,tm,tn or sg,tm,tn or cm,bm,bn,bk,wm,wn\n");
    return 2;
  }

  uint64_t seed = drd_test_seed();
  drd_rng rng = {seed};
  size_t na = (size_t)M * K, nw = (size_t)N * K;
  float *a = malloc(na * 4), *w = malloc(nw * 4), *bias = malloc((size_t)N * 4);
  uint16_t *w16 = f16 ? malloc(nw * 2) : NULL;
  if (!a || !w || !bias || (f16 && !w16)) {
    fprintf(stderr, "out of host memory\n");
    return 1;
  }
  drd_fill_uniform(&rng, a, na, -1, 1);
  drd_fill_uniform(&rng, w, nw, -1, 1);
  drd_fill_uniform(&rng, bias, N, -1, 1);
  const char *a16e = getenv("DRDIFF_GEMM_A16");
  bool a16 = a16e && *a16e && strcmp(a16e, "0") != 0;
  drd_buffer ba, bb = drd_test_buffer_f32(ctx, bias, N);
  if (a16) {
    uint16_t *ah = malloc(na * 2);
    if (!ah) drd_test_check(DRD_ERROR_OUT_OF_HOST_MEMORY, "malloc");
    drd_f32_to_f16_row(a, ah, na);
    drd_f16_to_f32_row(ah, a, na); /* the values the GPU multiplies, for the check below */
    drd_test_check(drd_buffer_create(ctx, na * 2, &ba), "buffer");
    drd_test_check(drd_buffer_upload(ctx, &ba, 0, ah, na * 2), "upload A");
    free(ah);
  } else {
    ba = drd_test_buffer_f32(ctx, a, na);
  }
  drd_buffer bc = drd_test_buffer_f32(ctx, NULL, (uint64_t)M * N), bw;
  if (f16) {
    drd_f32_to_f16_row(w, w16, nw);
    drd_f16_to_f32_row(w16, w, nw); /* the values the GPU multiplies, for the check below */
    drd_test_check(drd_buffer_create(ctx, nw * 2, &bw), "buffer");
    drd_test_check(drd_buffer_upload(ctx, &bw, 0, w16, nw * 2), "upload W");
  } else {
    bw = drd_test_buffer_f32(ctx, w, nw);
  }

  drd_seq *s;
  drd_test_check(drd_seq_begin(ctx, &s), "seq_begin");
  const char *nob = getenv("DRDIFF_GEMM_NO_BIAS");
  const bool with_bias = !(nob && !strcmp(nob, "1"));
  const char *acc_e = getenv("DRDIFF_GEMM_ACCUMULATE"), *rope_e = getenv("DRDIFF_GEMM_ROPE");
  const bool accumulate = acc_e && !strcmp(acc_e, "1");
  drd_rope_table rope = {0};
  if (rope_e && atoi(rope_e) > 0)
    drd_test_check(drd_rope_table_create(ctx, (uint32_t)atoi(rope_e), 10000.0f, M, &rope), "rope table");
  drd_gemm_args g = {.A = &ba, .atype = a16 ? DRD_DTYPE_F16 : DRD_DTYPE_F32, .W = &bw,
                     .wtype = f16 ? DRD_DTYPE_F16 : DRD_DTYPE_F32, .bias = with_bias ? &bb : NULL, .C = &bc,
                     .M = M, .N = N, .K = K, .accumulate = accumulate, .rope = rope.dh ? &rope : NULL};
  drd_test_check(drd_op_gemm_ex(s, &cfg, &g), "gemm");
  drd_test_check(drd_seq_end(s), "seq_end");
  double t0 = now_ms();
  drd_test_check(drd_seq_run(s), "warm-up run");
  double warm_ms = now_ms() - t0;
  double gpu0 = gemm_gpu_ns(ctx);
  t0 = now_ms();
  for (int r = 0; r < reps; r++) drd_test_check(drd_seq_run(s), "run");
  double ms = (now_ms() - t0) / reps;
  double gpu_ms = (gemm_gpu_ns(ctx) - gpu0) / reps * 1e-6;

  /* spot check: 64 outputs against f64 dot products */
  float *c = accumulate || rope.dh ? NULL : malloc((size_t)M * N * 4);
  double err = 0, ref_max = 1e-30;
  if (c) {
    drd_test_download_f32(ctx, &bc, c, (uint64_t)M * N);
    for (int i = 0; i < 64; i++) {
      uint32_t m = drd_rng_range(&rng, 0, M - 1), n = drd_rng_range(&rng, 0, N - 1);
      double ref = with_bias ? bias[n] : 0.0;
      for (uint32_t k = 0; k < K; k++) ref += (double)a[(size_t)m * K + k] * w[(size_t)n * K + k];
      double d = fabs(c[(size_t)m * N + n] - ref);
      if (!(d <= err)) err = d;
      if (fabs(ref) > ref_max) ref_max = fabs(ref);
    }
  }
  double flop = 2.0 * M * N * K;
  bool sg = cfg.kind == DRD_GEMM_SUBGROUP;
  uint32_t sgs = ctx->caps.subgroup_size;
  static const char *kinds[] = {"tiled", "subgroup", "coopmat"};
  printf("{\"M\": %u, \"N\": %u, \"K\": %u, \"wtype\": \"%s\", \"device\": \"%s\", \"kernel\": \"%s\", "
         "\"tile\": \"%ux%ux%u/%ux%u\", \"a\": \"%s\", \"reps\": %d, \"warmup_ms\": %.3f, \"ms\": %.3f, \"gflops\": %.2f",
         M, N, K, f16 ? "f16" : "f32", ctx->caps.name, kinds[cfg.kind], sg ? sgs * cfg.tm : cfg.bm,
         sg ? sgs * cfg.tn : cfg.bn, sg ? 4 : cfg.bk, cfg.tm, cfg.tn, a16 ? "f16" : "f32", reps, warm_ms, ms, flop / (ms * 1e6));
  if (gpu_ms > 0) printf(", \"gpu_ms\": %.3f, \"gpu_gflops\": %.2f", gpu_ms, flop / (gpu_ms * 1e6));
  printf(", \"check_rel_err\": %.3g}\n", c ? err / ref_max : -1.0);
  fflush(stdout);

  drd_seq_destroy(s);
  drd_rope_table_destroy(ctx, &rope);
  drd_buffer *bufs[] = {&ba, &bb, &bc, &bw};
  for (int i = 0; i < 4; i++) drd_buffer_destroy(ctx, bufs[i]);
  drd_context_destroy(ctx);
  free(a), free(w), free(bias), free(w16), free(c);
  return 0;
}
