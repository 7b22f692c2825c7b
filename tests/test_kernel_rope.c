/* RoPE on the GPU against the f64 reference (host/ref_ops.c): odd head counts and dims, in
 * place and out of place, tables longer than the sequence, and a long sequence (N = 70000)
 * where the angle n * f reaches 7e4 rad: the kernel must stay at f32 accuracy there (the
 * host's f64 table), not lose 1e-3 to an f32 angle. Runs under the weak-device switches (1 MiB
 * bindings: many chunks, each binding its rows of the table). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ops_attention.h"
#include "ref_ops.h"
#include "util_gpu.h"
#include "util_rand.h"

static int failures;

/* |x| <= 1 and |cos|, |sin| <= 1: a correct f32 kernel is off by a few 1e-7 */
#define ROPE_TOL_ABS 2e-6

static void check(drd_context *ctx, drd_rng *rng, uint32_t N, uint32_t H, uint32_t dh, float theta, bool in_place,
                  uint32_t positions) {
  const size_t n = (size_t)N * H * dh;
  float *x = malloc(n * 4), *ref = malloc(n * 4), *got = malloc(n * 4);
  double *cs = malloc(sizeof(double) * N * dh); /* [N, dh/2, 2] f64 */
  if (!x || !ref || !got || !cs) {
    fprintf(stderr, "FAIL: out of host memory\n");
    exit(1);
  }
  drd_fill_uniform(rng, x, n, -1.0f, 1.0f);
  for (size_t i = 0; i < n; i++) ref[i] = x[i];
  drd_ref_rope_table(N, dh, theta, cs);
  drd_ref_rope_apply(ref, N, H, dh, cs);

  drd_rope_table table;
  drd_test_check(drd_rope_table_create(ctx, dh, theta, positions, &table), "rope table");
  drd_buffer bx = drd_test_buffer_f32(ctx, x, n);
  drd_buffer bo = in_place ? bx : drd_test_buffer_f32(ctx, NULL, n); /* NaN-poisoned */
  drd_seq *s;
  drd_test_check(drd_seq_begin(ctx, &s), "seq_begin");
  drd_test_check(drd_op_rope(s, &table, &bx, &bo, N, H), "rope");
  drd_test_check(drd_seq_end(s), "seq_end");
  drd_test_check(drd_seq_run(s), "seq_run");
  drd_test_download_f32(ctx, &bo, got, n);
  double err = 0.0;
  size_t bad = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - (double)ref[i]);
    if (!(d <= ROPE_TOL_ABS)) bad++; /* NaN counts as bad */
    if (d > err || d != d) err = d;
  }
  fprintf(stderr, "  rope N=%u H=%u dh=%u theta=%g %s: max abs error %.3g\n", N, H, dh, theta,
          in_place ? "in place" : "out of place", err);
  if (bad) {
    fprintf(stderr, "FAIL rope N=%u H=%u dh=%u: %zu elements off by more than %g (max %.3g)\n", N, H, dh, bad,
            ROPE_TOL_ABS, err);
    failures++;
  }
  drd_seq_destroy(s);
  if (!in_place) drd_buffer_destroy(ctx, &bo);
  drd_buffer_destroy(ctx, &bx);
  drd_rope_table_destroy(ctx, &table);
  free(x), free(ref), free(got), free(cs);
}

int main(void) {
  drd_context *ctx = drd_test_context();
  uint64_t seed = drd_test_seed();
  drd_rng rng = {seed};
  check(ctx, &rng, 1, 1, 2, 10000.0f, false, 1);
  check(ctx, &rng, 7, 3, 10, 10000.0f, false, 9);
  check(ctx, &rng, 33, 5, 6, 10000.0f, true, 33);
  check(ctx, &rng, 130, 2, 128, 10000.0f, false, 131);
  check(ctx, &rng, 257, 4, 16, 500000.0f, true, 1000);
  check(ctx, &rng, 1000, 16, 64, 10000.0f, true, 1000);
  check(ctx, &rng, 70000, 1, 64, 10000.0f, false, 70000); /* angles up to 7e4 rad */
  check(ctx, &rng, 70001, 3, 10, 10000.0f, true, 70005);

  /* bad arguments are refused, not crashed on */
  drd_rope_table t;
  if (drd_rope_table_create(ctx, 7, 10000.0f, 16, &t) != DRD_ERROR_INVALID_ARGUMENT) {
    fprintf(stderr, "FAIL: odd head dim accepted\n");
    failures++;
  }
  drd_rope_table_destroy(ctx, &t);
  if (drd_rope_table_create(ctx, 8, 10000.0f, 0, &t) != DRD_ERROR_INVALID_ARGUMENT) {
    fprintf(stderr, "FAIL: a table of 0 positions accepted\n");
    failures++;
  }
  drd_rope_table_destroy(ctx, &t);
  drd_test_check(drd_rope_table_create(ctx, 8, 10000.0f, 5, &t), "rope table");
  drd_buffer bx = drd_test_buffer_f32(ctx, NULL, 6 * 8);
  drd_seq *s;
  drd_test_check(drd_seq_begin(ctx, &s), "seq_begin");
  if (drd_op_rope(s, &t, &bx, &bx, 6, 1) != DRD_ERROR_INVALID_ARGUMENT) {
    fprintf(stderr, "FAIL: RoPE over 6 positions accepted a table of 5\n");
    failures++;
  }
  drd_seq_destroy(s);
  drd_buffer_destroy(ctx, &bx);
  drd_rope_table_destroy(ctx, &t);

  int rc = drd_test_finish(ctx);
  if (failures) fprintf(stderr, "%d failures (seed %llu)\n", failures, (unsigned long long)seed);
  return failures || rc ? 1 : 0;
}
