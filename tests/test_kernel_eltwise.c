/* Element-wise kernels (add, mul, scale, silu, swiglu), the f32 -> f16 conversion and the Q8_0
 * and bf16 -> f32 / f16 widenings against the host reference, on odd sizes, in place, and under
 * a 64 KiB binding range that forces chunking. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "model_file.h"

#include "ref_ops.h"
#include "util_gpu.h"
#include "util_rand.h"

static int failures;


static const char *names[] = {"add", "mul", "scale", "silu", "swiglu"};

static void reference(drd_eltwise_op op, const float *a, const float *b, float *out, size_t n, float alpha) {
  switch (op) {
  case DRD_ELT_ADD: drd_ref_add(a, b, out, n); break;
  case DRD_ELT_MUL: drd_ref_mul(a, b, out, n); break;
  case DRD_ELT_SCALE: drd_ref_scale(a, alpha, out, n); break;
  case DRD_ELT_SILU: drd_ref_silu(a, out, n); break;
  case DRD_ELT_SWIGLU: drd_ref_swiglu(a, b, out, n); break;
  }
}

/* in_place: out is a's buffer */
static void run_case(drd_context *ctx, drd_rng *rng, drd_eltwise_op op, uint64_t n, bool in_place) {
  float *a = malloc(n * 4), *b = malloc(n * 4), *want = malloc(n * 4), *got = malloc(n * 4);
  drd_fill_uniform(rng, a, n, -8, 8);
  drd_fill_uniform(rng, b, n, -3, 3);
  float alpha = drd_rng_uniform(rng, -2, 2);
  reference(op, a, b, want, n, alpha);
  drd_buffer ba = drd_test_buffer_f32(ctx, a, n), bb = drd_test_buffer_f32(ctx, b, n);
  drd_buffer bo = in_place ? ba : drd_test_buffer_f32(ctx, NULL, n);
  drd_seq *s;
  drd_test_check(drd_seq_begin(ctx, &s), "seq_begin");
  drd_test_check(drd_op_eltwise(s, op, &ba, &bb, &bo, n, alpha), names[op]);
  drd_test_check(drd_seq_end(s), "seq_end");
  drd_test_check(drd_seq_run(s), "seq_run");
  drd_seq_destroy(s);
  drd_test_download_f32(ctx, &bo, got, n);
  size_t bad;
  double err = drd_compare_f32(got, want, n, &bad);
  /* f32 kernels: add/mul/scale round like the reference; silu differs by exp's last bits */
  if (bad || !(err <= 1e-5)) {
    fprintf(stderr, "FAIL %s n=%llu%s: rel err %.3g, %zu non-finite\n", names[op], (unsigned long long)n,
            in_place ? " in place" : "", err, bad);
    failures++;
  }
  drd_buffer_destroy(ctx, &ba);
  drd_buffer_destroy(ctx, &bb);
  if (!in_place) drd_buffer_destroy(ctx, &bo);
  free(a), free(b), free(want), free(got);
}

/* one op from one buffer into another, for drd_test_run_seq */
typedef struct unary_args {
  const drd_buffer *in, *out;
  uint64_t n;
  drd_dtype in_type, out_type; /* the widenings' */
} unary_args;
static drd_status rec_to_f16(drd_seq *s, void *arg) {
  const unary_args *u = arg;
  return drd_op_to_f16(s, u->in, u->out, u->n);
}
static drd_status rec_widen(drd_seq *s, void *arg) {
  const unary_args *u = arg;
  return u->in_type == DRD_DTYPE_Q8_0 ? drd_op_dequant_q8_0(s, u->in, u->out, u->out_type, u->n)
                                      : drd_op_widen_bf16(s, u->in, u->out, u->out_type, u->n);
}

/* f32 -> f16 must round exactly like the host (nearest even): the same bits, values spread
 * over the whole f16 range with subnormals, overflow to infinity, NaN and signed zeros. The
 * output is poisoned first, and a guard element past n must stay untouched. */
static void run_to_f16(drd_context *ctx, drd_rng *rng, uint64_t n) {
  float *x = malloc(n * 4);
  uint64_t bytes = (n * 2 + 2 + 3) / 4 * 4; /* n halves, a guard, whole words */
  uint16_t *want = malloc(n * 2 + 2), *got = malloc(bytes);
  for (uint64_t i = 0; i < n; i++) x[i] = ldexpf(drd_rng_uniform(rng, -1, 1), (int)drd_rng_range(rng, 0, 44) - 28);
  static const float special[] = {0.0f, -0.0f, 65504.0f, 65520.0f, 1e9f, -1e9f, 5.96e-8f, 2.98e-8f, 1.0f / 3.0f};
  for (size_t i = 0; i < sizeof special / sizeof *special && i < n; i++) x[i] = special[i];
  if (n > 10) x[10] = NAN;
  drd_f32_to_f16_row(x, want, n);
  drd_buffer bx = drd_test_buffer_f32(ctx, x, n), bo;
  drd_test_check(drd_buffer_create(ctx, bytes, &bo), "buffer");
  drd_test_check(drd_buffer_fill(ctx, &bo, 0xABCDABCDu), "poison");
  drd_test_run_seq(ctx, rec_to_f16, &(unary_args){&bx, &bo, n, DRD_DTYPE_F32, DRD_DTYPE_F16}, "to_f16");
  drd_test_check(drd_buffer_download(ctx, &bo, 0, got, bytes), "download");
  uint64_t bad = 0;
  for (uint64_t i = 0; i < n; i++) {
    bool nan_ok = (want[i] & 0x7c00) == 0x7c00 && (want[i] & 0x3ff) && (got[i] & 0x7c00) == 0x7c00 && (got[i] & 0x3ff);
    bad += got[i] != want[i] && !nan_ok;
  }
  if (bad || got[n] != 0xABCD) {
    fprintf(stderr, "FAIL to_f16 n=%llu: %llu elements differ from the host's rounding%s\n", (unsigned long long)n,
            (unsigned long long)bad, got[n] != 0xABCD ? ", the guard element was overwritten" : "");
    failures++;
  }
  drd_buffer_destroy(ctx, &bx);
  drd_buffer_destroy(ctx, &bo);
  free(x), free(want), free(got);
}

/* Q8_0 or bf16 -> f32 or f16 (drd_op_dequant_q8_0, drd_op_widen_bf16) against the model reader's
 * conversion (then the host's rounding to f16), bit for bit. Q8_0: random f16 scales over the
 * whole finite range (subnormals, negatives, zero), int8 values with -128 and 127, `count`
 * blocks (odd counts: blocks then straddle words); values past f16's range become infinities in
 * f16 on both sides. bf16: `count` random bit patterns (NaNs, infinities, subnormals included).
 * A poisoned guard element past the output must stay untouched. */
static void run_widen(drd_context *ctx, drd_rng *rng, drd_dtype in_type, uint64_t count, drd_dtype out_type) {
  const bool q8 = in_type == DRD_DTYPE_Q8_0;
  const uint64_t n = q8 ? count * 32 : count, in_bytes = q8 ? count * 34 : n * 2;
  const uint32_t es = out_type == DRD_DTYPE_F16 ? 2 : 4;
  uint8_t *in = malloc((in_bytes + 3) / 4 * 4);
  if (q8) {
    for (uint64_t b = 0; b < count; b++) {
      uint16_t d = drd_f32_to_f16(ldexpf(drd_rng_uniform(rng, -1, 1), (int)drd_rng_range(rng, 0, 40) - 25));
      if (b == 1) d = 0x8000; /* -0 */
      if (b == 2) d = 0x7bff; /* the largest f16 */
      in[b * 34] = (uint8_t)d, in[b * 34 + 1] = (uint8_t)(d >> 8);
      for (int i = 0; i < 32; i++) in[b * 34 + 2 + i] = (uint8_t)drd_rng_range(rng, 0, 255);
      if (b == 0) in[2] = 0x80, in[3] = 0x7f; /* -128, 127 */
    }
  } else {
    for (uint64_t i = 0; i < n; i++) {
      uint16_t v = (uint16_t)drd_rng_range(rng, 0, 65535);
      memcpy(in + 2 * i, &v, 2);
    }
  }
  drd_tensor_view t = {.name = "w", .type = in_type, .ndim = 1, .shape = {n}, .n_elements = n, .data = in,
                       .nbytes = in_bytes};
  float *want = malloc(n * 4);
  drd_tensor_to_f32(&t, 0, n, want);
  uint16_t *want16 = malloc(n * 2);
  drd_f32_to_f16_row(want, want16, n);
  const uint64_t out_bytes = (n * es + es + 3) / 4 * 4; /* n elements, a guard, whole words */
  uint8_t *got = malloc(out_bytes);
  drd_buffer bi, bo;
  drd_test_check(drd_buffer_create(ctx, (in_bytes + 3) / 4 * 4, &bi), "buffer");
  drd_test_check(drd_buffer_upload(ctx, &bi, 0, in, in_bytes), "upload");
  drd_test_check(drd_buffer_create(ctx, out_bytes, &bo), "buffer");
  drd_test_check(drd_buffer_fill(ctx, &bo, 0xABCDABCDu), "poison");
  const char *name = q8 ? (es == 2 ? "dequant_q8_0 f16" : "dequant_q8_0 f32")
                        : (es == 2 ? "widen_bf16 f16" : "widen_bf16 f32");
  drd_test_run_seq(ctx, rec_widen, &(unary_args){&bi, &bo, n, in_type, out_type}, name);
  drd_test_check(drd_buffer_download(ctx, &bo, 0, got, out_bytes), "download");
  uint64_t bad = 0;
  for (uint64_t i = 0; i < n; i++) {
    if (es == 4) {
      float g;
      memcpy(&g, got + 4 * i, 4);
      /* a NaN's payload may be canonicalized by a driver's move: any NaN for a NaN */
      bad += memcmp(&g, &want[i], 4) != 0 && !(isnan(g) && isnan(want[i]));
    } else {
      uint16_t g;
      memcpy(&g, got + 2 * i, 2);
      bool nan_ok = isnan(want[i]) && (g & 0x7c00) == 0x7c00 && (g & 0x3ff);
      bad += g != want16[i] && !nan_ok;
    }
  }
  uint16_t guard;
  memcpy(&guard, got + n * es, 2);
  if (bad || guard != 0xABCD) {
    fprintf(stderr, "FAIL %s, %llu elements: %llu differ from the host's%s\n", name, (unsigned long long)n,
            (unsigned long long)bad, guard != 0xABCD ? ", the guard was overwritten" : "");
    failures++;
  }
  drd_buffer_destroy(ctx, &bi);
  drd_buffer_destroy(ctx, &bo);
  free(in), free(want), free(want16), free(got);
}

static void run_all(drd_context *ctx, drd_rng *rng, const uint64_t *sizes, size_t n_sizes) {
  for (int op = DRD_ELT_ADD; op <= DRD_ELT_SWIGLU; op++) {
    for (size_t i = 0; i < n_sizes; i++) run_case(ctx, rng, (drd_eltwise_op)op, sizes[i], false);
    run_case(ctx, rng, (drd_eltwise_op)op, 1001, true);
  }
  if (drd_context_caps(ctx)->storage_16bit)
    for (size_t i = 0; i < n_sizes; i++) run_to_f16(ctx, rng, sizes[i]);
  /* to f32, and to f16 where the device has 16-bit storage */
  for (int f16 = 0; f16 <= (drd_context_caps(ctx)->storage_16bit ? 1 : 0); f16++) {
    const drd_dtype out = f16 ? DRD_DTYPE_F16 : DRD_DTYPE_F32;
    /* Q8_0 blocks: as many as the sizes have elements, rounded up, and at least 3 */
    for (size_t i = 0; i < n_sizes; i++) run_widen(ctx, rng, DRD_DTYPE_Q8_0, (sizes[i] + 31) / 32 + 2, out);
    for (size_t i = 0; i < n_sizes; i++) run_widen(ctx, rng, DRD_DTYPE_BF16, sizes[i], out);
  }
}

int main(void) {
  uint64_t seed = drd_test_seed();
  drd_rng rng = {seed};
  drd_context *ctx = drd_test_context();
  static const uint64_t sizes[] = {1, 3, 17, 33, 65, 127, 257, 1000, 65537, 1000003};
  run_all(ctx, &rng, sizes, sizeof sizes / sizeof *sizes);
  int rc = drd_test_finish(ctx);

  /* 64 KiB bindings: the larger sizes are split into chunks */
  setenv("DRDIFF_MAX_BUFFER_RANGE", "65536", 1);
  ctx = drd_test_context();
  static const uint64_t chunked[] = {16383, 16384, 16385, 100003};
  run_all(ctx, &rng, chunked, sizeof chunked / sizeof *chunked);
  rc |= drd_test_finish(ctx);
  unsetenv("DRDIFF_MAX_BUFFER_RANGE");

  if (failures || rc) fprintf(stderr, "test_kernel_eltwise: %d failures (seed %llu)\n", failures, (unsigned long long)seed);
  else fprintf(stderr, "test_kernel_eltwise: ok (seed %llu)\n", (unsigned long long)seed);
  return failures || rc ? 1 : 0;
}
