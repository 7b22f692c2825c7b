/* DES FFN benchmark: tool_bench_des T d dff E kmax p [f16|f32] [reps]
 * Random b [T, d] and weights (router and experts f16 or f32, default f16), one recorded
 * sequence holding the whole MoE FFN (the cooperative-matrix path reading an f16 copy of b,
 * as in the engine), one warm-up run, then `reps` runs (default 10). Prints one JSON line:
 * wall-clock milliseconds per FFN around drd_seq_run, the (token, slot) pairs the router
 * produced, and GFLOP/s counting 6 d dff per pair (gate, up and down products);
 * with DRDIFF_PROFILE=1 also the GPU time per dispatch kind from timestamps.
 * DRDIFF_DES_TILE=bm,bn,bk,tm,tn (scalar kernels), cm,bm,bn,bk,wm,wn (cooperative-matrix
 * kernels, wm x wn subgroups) or sg,bm,bn,4,tm,tn (CPU devices' subgroup kernels: bm = tm x
 * the subgroup size, bn = tn x it) overrides the grouped-GEMM tile, for tuning. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "des.h"
#include "dtype.h"
#include "ops_des.h"
#include "ref_des.h"
#include "ref_ops.h"
#include "util_gpu.h"
#include "util_rand.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* keep: receives the host values (f16-rounded when f16), else they are freed */
static drd_buffer weights(drd_context *ctx, drd_rng *rng, size_t n, float a, int f16, float **keep) {
  float *h = malloc(n * 4);
  if (!h) drd_test_check(DRD_ERROR_OUT_OF_HOST_MEMORY, "malloc");
  drd_fill_uniform(rng, h, n, -a, a);
  drd_buffer b;
  if (f16) {
    uint16_t *h16 = malloc(n * 2);
    if (!h16) drd_test_check(DRD_ERROR_OUT_OF_HOST_MEMORY, "malloc");
    drd_f32_to_f16_row(h, h16, n);
    drd_test_check(drd_buffer_create(ctx, n * 2, &b), "buffer");
    drd_test_check(drd_buffer_upload(ctx, &b, 0, h16, n * 2), "upload");
    drd_f16_to_f32_row(h16, h, n);
    free(h16);
  } else {
    b = drd_test_buffer_f32(ctx, h, n);
  }
  if (keep) *keep = h;
  else free(h);
  return b;
}

int main(int argc, char **argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: %s T d dff E kmax p [f16|f32] [reps]\n", argv[0]);
    return 2;
  }
  uint32_t T = (uint32_t)strtoul(argv[1], NULL, 10), d = (uint32_t)strtoul(argv[2], NULL, 10);
  uint32_t dff = (uint32_t)strtoul(argv[3], NULL, 10), E = (uint32_t)strtoul(argv[4], NULL, 10);
  uint32_t kmax = (uint32_t)strtoul(argv[5], NULL, 10);
  float p = strtof(argv[6], NULL);
  int f16 = argc < 8 || strcmp(argv[7], "f32") != 0;
  int reps = argc > 8 ? atoi(argv[8]) : 10;
  if (!T || !d || !dff || !E || !kmax || kmax > E || !(p > 0) || reps < 1) {
    fprintf(stderr, "need T, d, dff, E > 0, 1 <= kmax <= E, p > 0, reps >= 1\n");
    return 2;
  }
  drd_des_scratch_desc sd = {.max_T = T};
  const char *tile = getenv("DRDIFF_DES_TILE");
  if (tile && !strncmp(tile, "cm,", 3)) sd.cm = 1, tile += 3;
  if (tile && !strncmp(tile, "sg,", 3)) sd.sg = 1, tile += 3;
  if (tile && *tile && sscanf(tile, "%u,%u,%u,%u,%u", &sd.bm, &sd.bn, &sd.bk, &sd.tm, &sd.tn) != 5) {
    fprintf(stderr, "DRDIFF_DES_TILE: want bm,bn,bk,tm,tn, cm,bm,bn,bk,wm,wn or sg,bm,bn,4,tm,tn\n");
    return 2;
  }
  drd_context *ctx = drd_bench_context();

  drd_rng rng = {drd_test_seed()};
  float *b = malloc((size_t)T * d * 4);
  if (!b) drd_test_check(DRD_ERROR_OUT_OF_HOST_MEMORY, "malloc");
  drd_fill_uniform(&rng, b, (size_t)T * d, -1, 1);
  /* As in the engine, the cooperative-matrix gate/up GEMM reads an f16 copy of b (16-byte
   * loads; converting f32 b in the kernel made it 1.5x slower on an H200): b holds values f16
   * represents exactly, so that the copy and the f32 b the router reads agree. */
  uint16_t *b16h = f16 ? malloc((size_t)T * d * 2) : NULL;
  if (f16 && !b16h) drd_test_check(DRD_ERROR_OUT_OF_HOST_MEMORY, "malloc");
  if (f16) {
    drd_f32_to_f16_row(b, b16h, (size_t)T * d);
    drd_f16_to_f32_row(b16h, b, (size_t)T * d);
  }
  drd_buffer bb = drd_test_buffer_f32(ctx, b, (size_t)T * d), bo = drd_test_buffer_f32(ctx, NULL, (size_t)T * d);
  const size_t nw = (size_t)E * dff * d;
  float *router, *gate, *up, *down;
  drd_buffer wr = weights(ctx, &rng, (size_t)E * d, 6.0f / sqrtf((float)d), f16, &router);
  drd_buffer wg = weights(ctx, &rng, nw, 1.7f / sqrtf((float)d), f16, &gate);
  drd_buffer wu = weights(ctx, &rng, nw, 1.7f / sqrtf((float)d), f16, &up);
  drd_buffer wd = weights(ctx, &rng, nw, 1.7f / sqrtf((float)dff), f16, &down);
  drd_des_weights w = {.d = d, .dff = dff, .E = E, .kmax = kmax, .p = p,
                       .router_type = f16 ? DRD_DES_F16 : DRD_DES_F32, .expert_type = f16 ? DRD_DES_F16 : DRD_DES_F32,
                       .router = &wr, .gate = &wg, .up = &wu, .down = &wd};
  drd_des_scratch s;
  drd_test_check(drd_des_scratch_create(ctx, &w, &sd, &s), "scratch");

  drd_buffer bb16 = {0};
  if (f16 && s.cm) {
    drd_test_check(drd_buffer_create(ctx, (uint64_t)T * d * 2, &bb16), "buffer");
    drd_test_check(drd_buffer_upload(ctx, &bb16, 0, b16h, (uint64_t)T * d * 2), "upload b16");
  }
  free(b16h);

  drd_seq *q;
  drd_test_check(drd_seq_begin(ctx, &q), "seq_begin");
  drd_test_check(drd_op_des_ffn_ex(q, &w, &bb, bb16.size ? &bb16 : NULL, &bo, T, &s, false), "des_ffn");
  drd_test_check(drd_seq_end(q), "seq_end");
  double t0 = now_ms();
  drd_test_check(drd_seq_run(q), "warm-up");
  double warm_ms = now_ms() - t0;
  uint32_t n_prof0 = ctx->n_profile;
  double *prof0 = calloc(n_prof0 + 1, sizeof(double));
  for (uint32_t i = 0; i < n_prof0; i++) prof0[i] = ctx->profile_entries[i].total_ns;
  t0 = now_ms();
  for (int r = 0; r < reps; r++) drd_test_check(drd_seq_run(q), "run");
  double ms = (now_ms() - t0) / reps;

  /* (token, slot) pairs from the host's routing of the same inputs (exact up to near-ties) */
  uint64_t pairs = 0;
  float *logits = malloc((size_t)T * E * 4);
  uint32_t ex[DRD_DES_MAX_EXPERTS];
  float wt[DRD_DES_MAX_EXPERTS];
  if (!logits) drd_test_check(DRD_ERROR_OUT_OF_HOST_MEMORY, "malloc");
  drd_test_check(drd_ref_gemm(b, router, NULL, logits, T, E, d), "host router");
  for (uint32_t t = 0; t < T; t++) pairs += drd_des_route(logits + (size_t)t * E, E, kmax, p, ex, wt);
  double flop = 6.0 * d * dff * (double)pairs;

  /* sanity check (not a test): 16 evenly spaced tokens against host/ref_des.c */
  const uint32_t nc = T < 16 ? T : 16;
  float *bs = malloc((size_t)nc * d * 4), *ref = malloc((size_t)nc * d * 4), *got = malloc((size_t)T * d * 4);
  if (!bs || !ref || !got) drd_test_check(DRD_ERROR_OUT_OF_HOST_MEMORY, "malloc");
  for (uint32_t i = 0; i < nc; i++) memcpy(bs + (size_t)i * d, b + (size_t)(i * (T / nc)) * d, (size_t)d * 4);
  drd_test_check(drd_ref_des_ffn(bs, router, gate, up, down, nc, d, dff, E, kmax, p, ref), "reference");
  drd_test_download_f32(ctx, &bo, got, (size_t)T * d);
  for (uint32_t i = 0; i < nc; i++) memcpy(bs + (size_t)i * d, got + (size_t)(i * (T / nc)) * d, (size_t)d * 4);
  double check = drd_rel_error(bs, ref, (size_t)nc * d);
  printf("{\"T\": %u, \"d\": %u, \"dff\": %u, \"E\": %u, \"kmax\": %u, \"p\": %.3f, \"wtype\": \"%s\", "
         "\"device\": \"%s\", \"tile\": \"%s%ux%ux%u/%ux%u down %ux%u\", \"weights\": \"%s\", \"passes\": %u, "
         "\"pairs\": %llu, "
         "\"reps\": %d, \"warmup_ms\": %.3f, \"ms\": %.3f, \"gflops\": %.2f",
         T, d, dff, E, kmax, p, f16 ? (ctx->caps.storage_16bit ? "f16" : "f16-packed") : "f32", ctx->caps.name,
         s.cm ? "cm " : s.sg ? "sg " : "", s.bm, s.bn, s.bk, s.tm, s.tn, s.tm2, s.tn2,
         s.fused1 && s.fused2 ? "whole" : "per-expert",
         (T + s.chunk_T - 1) / s.chunk_T,
         (unsigned long long)pairs, reps, warm_ms, ms, flop / (ms * 1e6));
  if (ctx->n_profile) {
    double total = 0;
    printf(", \"gpu_ms\": {");
    for (uint32_t i = 0; i < ctx->n_profile; i++) {
      double ns = ctx->profile_entries[i].total_ns - (i < n_prof0 ? prof0[i] : 0);
      total += ns;
      printf("%s\"%s\": %.4f", i ? ", " : "", ctx->profile_entries[i].name, ns / reps * 1e-6);
    }
    printf(", \"sum\": %.4f}, \"gpu_gflops\": %.2f", total / reps * 1e-6, flop / (total / reps));
  }
  printf(", \"check_rel_err\": %.3g}\n", check);
  fflush(stdout);

  drd_seq_destroy(q);
  drd_des_scratch_destroy(ctx, &s);
  drd_buffer *bufs[] = {&bb, &bb16, &bo, &wr, &wg, &wu, &wd};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) drd_buffer_destroy(ctx, bufs[i]);
  drd_context_destroy(ctx);
  free(b), free(router), free(gate), free(up), free(down), free(logits), free(prof0), free(bs), free(ref), free(got);
  return 0;
}
