/* Row softmax kernel against the host reference: odd row lengths, rows offset by +-1000 (an
 * unshifted exp would overflow or vanish), in place, chunking under a 64 KiB binding range,
 * and the clear error for a row longer than one binding. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ref_ops.h"
#include "util_gpu.h"
#include "util_rand.h"

static int failures;


static void run_case(drd_context *ctx, drd_rng *rng, uint32_t rows, uint32_t cols, float shift, bool in_place) {
  size_t n = (size_t)rows * cols;
  float *x = malloc(n * 4), *want = malloc(n * 4), *got = malloc(n * 4);
  for (uint32_t r = 0; r < rows; r++) { /* each row its own spread: sharp and flat distributions */
    float spread = drd_rng_uniform(rng, 0.1f, 12.0f);
    drd_fill_uniform(rng, x + (size_t)r * cols, cols, shift - spread, shift + spread);
  }
  drd_ref_softmax_rows(x, want, rows, cols);
  drd_buffer bx = drd_test_buffer_f32(ctx, x, n);
  drd_buffer bo = in_place ? bx : drd_test_buffer_f32(ctx, NULL, n);
  drd_seq *s;
  drd_test_check(drd_seq_begin(ctx, &s), "seq_begin");
  drd_test_check(drd_op_softmax_rows(s, &bx, &bo, rows, cols), "softmax");
  drd_test_check(drd_seq_end(s), "seq_end");
  drd_test_check(drd_seq_run(s), "seq_run");
  drd_seq_destroy(s);
  drd_test_download_f32(ctx, &bo, got, n);
  size_t bad;
  double err = drd_compare_f32(got, want, n, &bad);
  /* f32 exp and sum vs the reference's f64: ~1e-6 relative */
  if (getenv("DRDIFF_TEST_VERBOSE")) fprintf(stderr, "  [%u, %u]: rel err %.3g\n", rows, cols, err);
  if (bad || !(err <= 1e-5)) {
    fprintf(stderr, "FAIL softmax [%u, %u] shift %g%s: rel err %.3g, %zu non-finite\n", rows, cols, shift,
            in_place ? " in place" : "", err, bad);
    failures++;
  }
  drd_buffer_destroy(ctx, &bx);
  if (!in_place) drd_buffer_destroy(ctx, &bo);
  free(x), free(want), free(got);
}

int main(void) {
  uint64_t seed = drd_test_seed();
  drd_rng rng = {seed};
  drd_context *ctx = drd_test_context();
  static const uint32_t cols[] = {1, 3, 17, 33, 65, 127, 257, 1000, 4097, 32001};
  static const uint32_t rows[] = {1, 3, 17, 100};
  for (size_t c = 0; c < sizeof cols / sizeof *cols; c++)
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) run_case(ctx, &rng, rows[r], cols[c], 0, false);
  run_case(ctx, &rng, 17, 1000, 1000, false);
  run_case(ctx, &rng, 17, 1000, -1000, false);
  run_case(ctx, &rng, 33, 257, 0, true);
  run_case(ctx, &rng, 70000, 3, 0, false);
  int rc = drd_test_finish(ctx);

  setenv("DRDIFF_MAX_BUFFER_RANGE", "65536", 1);
  ctx = drd_test_context();
  run_case(ctx, &rng, 100, 1000, 0, false);
  run_case(ctx, &rng, 257, 127, 5, true);
  run_case(ctx, &rng, 5, 16000, 0, false);
  drd_buffer big;
  drd_test_check(drd_buffer_create(ctx, 20000 * 4, &big), "buffer");
  drd_seq *s;
  drd_test_check(drd_seq_begin(ctx, &s), "seq_begin");
  drd_status st = drd_op_softmax_rows(s, &big, &big, 1, 20000);
  if (st != DRD_ERROR_UNSUPPORTED) {
    fprintf(stderr, "FAIL: a 20000-float row under a 64 KiB range gave %s\n", drd_status_string(st));
    failures++;
  }
  drd_seq_destroy(s);
  drd_buffer_destroy(ctx, &big);
  rc |= drd_test_finish(ctx);
  unsetenv("DRDIFF_MAX_BUFFER_RANGE");

  if (failures || rc) fprintf(stderr, "test_kernel_softmax: %d failures (seed %llu)\n", failures, (unsigned long long)seed);
  else fprintf(stderr, "test_kernel_softmax: ok (seed %llu)\n", (unsigned long long)seed);
  return failures || rc ? 1 : 0;
}
