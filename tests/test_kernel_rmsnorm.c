/* RMSNorm kernels against the host reference: odd row lengths (shorter and longer than a
 * workgroup; rows of whole vec4s go to the subgroup-per-row kernels from 2048 rows on a GPU, at
 * any count on a CPU device such as lavapipe, whose workgroup-per-row runs are then the rows
 * of 4n + 1..3 floats), in place,
 * chunking under a 64 KiB binding range, and the clear error for a row longer than one
 * binding. Where the device has 16-bit storage, every case also runs
 * drd_op_rmsnorm_f16: its f32 output must be bit-identical to drd_op_rmsnorm's and its f16
 * copy the host's nearest-even rounding of that output, bit for bit, with a poisoned guard
 * half past the end left untouched; and again without the f32 output (rmsnorm_f16only): the
 * same halves, x unchanged. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "ref_ops.h"
#include "util_gpu.h"
#include "util_rand.h"

static int failures;


/* drd_op_rmsnorm_f16 on x (host copy) against `plain`, drd_op_rmsnorm's output for it; with
 * f16_only, no f32 output (out = NULL), and x must come back as it went in. */
static void run_f16(drd_context *ctx, const float *x, const drd_buffer *bw, const float *plain, uint32_t rows,
                    uint32_t cols, float eps, bool in_place, bool f16_only) {
  size_t n = (size_t)rows * cols;
  uint64_t bytes = (n * 2 + 2 + 3) / 4 * 4; /* n halves, a guard, whole words */
  float *got = malloc(n * 4);
  uint16_t *want16 = malloc(n * 2), *got16 = malloc(bytes);
  drd_buffer bx = drd_test_buffer_f32(ctx, x, n), bh;
  drd_buffer bo = in_place ? bx : drd_test_buffer_f32(ctx, NULL, n);
  drd_test_check(drd_buffer_create(ctx, bytes, &bh), "buffer");
  drd_test_check(drd_buffer_fill(ctx, &bh, 0xABCDABCDu), "poison");
  drd_seq *s;
  drd_test_check(drd_seq_begin(ctx, &s), "seq_begin");
  drd_test_check(drd_op_rmsnorm_f16(s, &bx, bw, f16_only ? NULL : &bo, &bh, rows, cols, eps), "rmsnorm_f16");
  drd_test_check(drd_seq_end(s), "seq_end");
  drd_test_check(drd_seq_run(s), "seq_run");
  drd_seq_destroy(s);
  drd_test_download_f32(ctx, f16_only ? &bx : &bo, got, n);
  drd_test_check(drd_buffer_download(ctx, &bh, 0, got16, bytes), "download");
  drd_f32_to_f16_row(plain, want16, n);
  size_t bad32 = 0, bad16 = 0;
  for (size_t i = 0; i < n; i++) {
    bad32 += memcmp(&got[i], f16_only ? &x[i] : &plain[i], 4) != 0;
    bad16 += got16[i] != want16[i];
  }
  if (bad32 || bad16 || got16[n] != 0xABCD) {
    fprintf(stderr, "FAIL rmsnorm_f16%s [%u, %u]%s: %zu f32 values differ from %s, %zu halves from their "
            "rounding%s\n", f16_only ? " (f16 only)" : "", rows, cols, in_place ? " in place" : "", bad32,
            f16_only ? "x (which must stay)" : "rmsnorm's", bad16,
            got16[n] != 0xABCD ? ", the guard half was overwritten" : "");
    failures++;
  }
  drd_buffer_destroy(ctx, &bx);
  if (!in_place) drd_buffer_destroy(ctx, &bo);
  drd_buffer_destroy(ctx, &bh);
  free(got), free(want16), free(got16);
}

static void run_case(drd_context *ctx, drd_rng *rng, uint32_t rows, uint32_t cols, bool in_place) {
  size_t n = (size_t)rows * cols;
  float *x = malloc(n * 4), *w = malloc((size_t)cols * 4), *want = malloc(n * 4), *got = malloc(n * 4);
  float scale = drd_rng_uniform(rng, 0.01f, 10.0f); /* rows of very different norms */
  drd_fill_uniform(rng, x, n, -scale, scale);
  drd_fill_uniform(rng, w, cols, -2, 2);
  float eps = drd_rng_uniform(rng, 1e-6f, 1e-5f);
  drd_ref_rmsnorm(x, w, want, rows, cols, eps);
  drd_buffer bx = drd_test_buffer_f32(ctx, x, n), bw = drd_test_buffer_f32(ctx, w, cols);
  drd_buffer bo = in_place ? bx : drd_test_buffer_f32(ctx, NULL, n);
  drd_seq *s;
  drd_test_check(drd_seq_begin(ctx, &s), "seq_begin");
  drd_test_check(drd_op_rmsnorm(s, &bx, &bw, &bo, rows, cols, eps), "rmsnorm");
  drd_test_check(drd_seq_end(s), "seq_end");
  drd_test_check(drd_seq_run(s), "seq_run");
  drd_seq_destroy(s);
  drd_test_download_f32(ctx, &bo, got, n);
  /* x was overwritten in place: the f16 variant starts again from the host copy */
  if (drd_context_caps(ctx)->storage_16bit) {
    run_f16(ctx, x, &bw, got, rows, cols, eps, in_place, false);
    if (!in_place) run_f16(ctx, x, &bw, got, rows, cols, eps, false, true);
  }
  size_t bad;
  double err = drd_compare_f32(got, want, n, &bad);
  /* f32 sum of squares vs the reference's f64: ~1e-7 relative for these lengths */
  if (getenv("DRDIFF_TEST_VERBOSE")) fprintf(stderr, "  [%u, %u]: rel err %.3g\n", rows, cols, err);
  if (bad || !(err <= 1e-5)) {
    fprintf(stderr, "FAIL rmsnorm [%u, %u]%s: rel err %.3g, %zu non-finite\n", rows, cols, in_place ? " in place" : "",
            err, bad);
    failures++;
  }
  drd_buffer_destroy(ctx, &bx);
  drd_buffer_destroy(ctx, &bw);
  if (!in_place) drd_buffer_destroy(ctx, &bo);
  free(x), free(w), free(want), free(got);
}

/* drd_op_rmsnorm_router: its f16 rows must be drd_op_rmsnorm_f16's, bit for bit where that runs
 * on subgroups too (drd_rmsnorm_on_subgroups), and its logits
 * out . router^T (router f32 or f16 with E experts) within f32 summation error of the f64 sum
 * over that f32 output; a poisoned guard past the logits stays. Where drd_rmsnorm_router_fits
 * says no, the op must refuse (UNSUPPORTED); returns whether the case ran. */
static bool run_router(drd_context *ctx, drd_rng *rng, uint32_t rows, uint32_t cols, uint32_t E, drd_dtype rtype) {
  size_t n = (size_t)rows * cols, nr = (size_t)E * cols, nl = (size_t)rows * E;
  float *x = malloc(n * 4), *w = malloc((size_t)cols * 4), *r = malloc(nr * 4), *a = malloc(n * 4);
  float *logits = malloc((nl + 1) * 4);
  uint16_t *r16 = malloc(nr * 2), *want16 = malloc(n * 2), *got16 = malloc(n * 2);
  drd_fill_uniform(rng, x, n, -3, 3);
  drd_fill_uniform(rng, w, cols, -2, 2);
  drd_fill_uniform(rng, r, nr, -0.1f, 0.1f);
  drd_f32_to_f16_row(r, r16, nr);
  if (rtype == DRD_DTYPE_F16) drd_f16_to_f32_row(r16, r, nr); /* the reference multiplies by what the GPU reads */
  const float eps = 1e-6f;
  drd_buffer bx = drd_test_buffer_f32(ctx, x, n), bw = drd_test_buffer_f32(ctx, w, cols);
  drd_buffer ba = drd_test_buffer_f32(ctx, NULL, n), bl = drd_test_buffer_f32(ctx, NULL, nl + 1), br, bh, bh2;
  drd_test_check(drd_buffer_create(ctx, nr * 4, &br), "buffer");
  drd_test_check(rtype == DRD_DTYPE_F16 ? drd_buffer_upload(ctx, &br, 0, r16, nr * 2) : drd_buffer_upload(ctx, &br, 0, r, nr * 4),
                 "upload router");
  drd_test_check(drd_buffer_create(ctx, n * 2 + 4, &bh), "buffer");
  drd_test_check(drd_buffer_create(ctx, n * 2 + 4, &bh2), "buffer");
  drd_test_check(drd_buffer_fill(ctx, &bl, 0x7fc00001u), "poison logits");
  const bool fits = drd_rmsnorm_router_fits(ctx, rows, cols, E, rtype);
  drd_seq *s;
  drd_test_check(drd_seq_begin(ctx, &s), "seq_begin");
  if (fits) drd_test_check(drd_op_rmsnorm_f16(s, &bx, &bw, &ba, &bh, rows, cols, eps), "rmsnorm_f16"); /* the reference */
  drd_status st = drd_op_rmsnorm_router(s, &bx, &bw, &bh2, &br, rtype, E, &bl, rows, cols, eps);
  if (st != (fits ? DRD_OK : DRD_ERROR_UNSUPPORTED)) {
    fprintf(stderr, "FAIL rmsnorm_router [%u, %u] E=%u: status %s where it %s\n", rows, cols, E,
            drd_status_string(st), fits ? "fits" : "does not fit");
    failures++;
  }
  drd_test_check(drd_seq_end(s), "seq_end");
  drd_test_check(drd_seq_run(s), "seq_run");
  drd_seq_destroy(s);
  if (fits && st == DRD_OK) {
    drd_test_download_f32(ctx, &ba, a, n);
    drd_test_download_f32(ctx, &bl, logits, nl + 1);
    drd_test_check(drd_buffer_download(ctx, &bh, 0, want16, n * 2), "download");
    drd_test_check(drd_buffer_download(ctx, &bh2, 0, got16, n * 2), "download");
    size_t bad16 = 0, badl = 0;
    double worst = 0;
    /* rmsnorm_f16 below 2048 rows sums the squares on a workgroup, in another order: there the
     * halves may differ by one unit in the last place */
    const bool same_kernel = drd_rmsnorm_on_subgroups(ctx, rows, cols);
    for (size_t i = 0; i < n; i++)
      bad16 += same_kernel ? got16[i] != want16[i] : abs((int)got16[i] - (int)want16[i]) > 1;
    for (size_t t = 0; t < rows; t++)
      for (size_t e = 0; e < E; e++) {
        double sum = 0, mag = 0;
        for (size_t c = 0; c < cols; c++) {
          sum += (double)a[t * cols + c] * r[e * cols + c];
          mag += fabs((double)a[t * cols + c] * r[e * cols + c]);
        }
        const float g = logits[t * E + e];
        if (!isfinite(g)) badl++;
        else worst = fmax(worst, fabs(g - sum) / fmax(mag, 1e-30));
      }
    const double tol = 1e-6 * sqrt((double)cols) + 1e-6; /* f32 sums of cols products */
    uint32_t guard;
    memcpy(&guard, &logits[nl], 4);
    if (bad16 || badl || !(worst <= tol) || guard != 0x7fc00001u) {
      fprintf(stderr, "FAIL rmsnorm_router [%u, %u] E=%u %s router: %zu halves differ from rmsnorm_f16's, logits rel "
              "err %.3g (tol %.3g), %zu non-finite%s\n", rows, cols, E, rtype == DRD_DTYPE_F16 ? "f16" : "f32", bad16,
              worst, tol, badl, guard != 0x7fc00001u ? ", the guard past the logits was written" : "");
      failures++;
    }
  }
  drd_buffer *bufs[] = {&bx, &bw, &ba, &bl, &br, &bh, &bh2};
  for (int i = 0; i < 7; i++) drd_buffer_destroy(ctx, bufs[i]);
  free(x), free(w), free(r), free(a), free(logits), free(r16), free(want16), free(got16);
  return fits && st == DRD_OK;
}

int main(void) {
  uint64_t seed = drd_test_seed();
  drd_rng rng = {seed};
  drd_context *ctx = drd_test_context();
  static const uint32_t cols[] = {1, 3, 4, 17, 33, 36, 65, 127, 256, 257, 1000, 4097, 20000};
  static const uint32_t rows[] = {1, 3, 17, 100};
  for (size_t c = 0; c < sizeof cols / sizeof *cols; c++)
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) run_case(ctx, &rng, rows[r], cols[c], false);
  run_case(ctx, &rng, 33, 1000, true);
  /* 2048 rows or more of whole vec4s take the subgroup-per-row kernels where the device has
   * subgroup arithmetic (a partly filled last workgroup here; a CPU device takes them for the
   * cases above too): rows of 4 .. 256 floats stay in
   * registers on lavapipe's subgroups of 8, up to 1024 on NVIDIA's 32; 1000 and 4100 are
   * loaded twice on lavapipe */
  static const uint32_t sg_cols[] = {4, 36, 256, 1000, 4100};
  for (size_t c = 0; c < sizeof sg_cols / sizeof *sg_cols; c++) run_case(ctx, &rng, 2051, sg_cols[c], false);
  run_case(ctx, &rng, 2048, 1000, true);
  run_case(ctx, &rng, 70000, 3, false); /* more rows than one grid dimension holds on some devices */
  /* the FFN norm with the DES router's logits (rows kept in registers or loaded twice, partial
   * last workgroups, every E up to 8, f32 and f16 routers); E = 9 and rows of 4n + 2 are
   * refused. Where the device has 16-bit storage and subgroup arithmetic, cases must run. */
  int router_ran = 0;
  router_ran += run_router(ctx, &rng, 2051, 1000, 8, DRD_DTYPE_F32);
  router_ran += run_router(ctx, &rng, 17, 36, 3, DRD_DTYPE_F16);
  router_ran += run_router(ctx, &rng, 100, 4100, 8, DRD_DTYPE_F16);
  router_ran += run_router(ctx, &rng, 33, 256, 1, DRD_DTYPE_F32);
  router_ran += run_router(ctx, &rng, 5, 64, 9, DRD_DTYPE_F32);
  router_ran += run_router(ctx, &rng, 5, 66, 2, DRD_DTYPE_F32);
  fprintf(stderr, "test_kernel_rmsnorm: the router in the norm in %d of 6 cases\n", router_ran);
  if (drd_rmsnorm_router_fits(ctx, 2051, 1000, 8, DRD_DTYPE_F32) && router_ran != 4) {
    fprintf(stderr, "FAIL: %d router cases ran where 4 fit\n", router_ran);
    failures++;
  }
  int rc = drd_test_finish(ctx);

  /* 64 KiB bindings: several rows per chunk, chunks starting mid-alignment, one row per chunk */
  setenv("DRDIFF_MAX_BUFFER_RANGE", "65536", 1);
  ctx = drd_test_context();
  run_case(ctx, &rng, 100, 1000, false);
  run_case(ctx, &rng, 257, 127, true);
  run_case(ctx, &rng, 5, 16000, false);
  run_case(ctx, &rng, 2051, 1000, false); /* subgroup kernels, 16 rows per chunk */
  /* a row longer than a binding: refused cleanly */
  drd_buffer big;
  drd_test_check(drd_buffer_create(ctx, 20000 * 4, &big), "buffer");
  drd_seq *s;
  drd_test_check(drd_seq_begin(ctx, &s), "seq_begin");
  drd_status st = drd_op_rmsnorm(s, &big, &big, &big, 1, 20000, 1e-5f);
  if (st != DRD_ERROR_UNSUPPORTED) {
    fprintf(stderr, "FAIL: a 20000-float row under a 64 KiB range gave %s\n", drd_status_string(st));
    failures++;
  }
  drd_seq_destroy(s);
  drd_buffer_destroy(ctx, &big);
  rc |= drd_test_finish(ctx);
  unsetenv("DRDIFF_MAX_BUFFER_RANGE");

  if (failures || rc) fprintf(stderr, "test_kernel_rmsnorm: %d failures (seed %llu)\n", failures, (unsigned long long)seed);
  else fprintf(stderr, "test_kernel_rmsnorm: ok (seed %llu)\n", (unsigned long long)seed);
  return failures || rc ? 1 : 0;
}
