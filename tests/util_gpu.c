#include "util_gpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void drd_test_check(drd_status s, const char *what) {
  if (s == DRD_OK) return;
  fprintf(stderr, "FAIL: %s: %s (%s)\n", what, drd_status_string(s), drd_last_error());
  exit(1);
}

static drd_context *open_context(int validation) {
  drd_context *ctx = NULL;
  drd_status s = drd_context_create(&(drd_context_desc){.validation = validation, .pipeline_cache_path = ""}, &ctx);
  if (s == DRD_ERROR_NO_VULKAN || s == DRD_ERROR_NO_DEVICE) {
    const char *req = getenv("DRDIFF_REQUIRE_DEVICE");
    bool required = req && *req && strcmp(req, "0") != 0;
    fprintf(stderr, "%s: %s (%s)\n", required ? "FAIL (DRDIFF_REQUIRE_DEVICE)" : "SKIP", drd_status_string(s),
            drd_last_error());
    exit(required ? 1 : DRD_TEST_SKIP);
  }
  drd_test_check(s, "drd_context_create");
  const drd_device_caps *c = drd_context_caps(ctx);
  fprintf(stderr, "device: %s; f16 %d, storage16 %d, coopmat %d, shared %u, range %llu\n", c->name, c->shader_float16,
          c->storage_16bit, c->coopmat, c->max_shared_memory, (unsigned long long)c->max_storage_buffer_range);
  return ctx;
}

drd_context *drd_test_context(void) { return open_context(1); }
drd_context *drd_bench_context(void) { return open_context(0); }

void drd_test_run_seq(drd_context *ctx, drd_status (*rec)(drd_seq *, void *), void *arg, const char *what) {
  drd_seq *s;
  drd_test_check(drd_seq_begin(ctx, &s), "seq_begin");
  drd_test_check(rec(s, arg), what);
  drd_test_check(drd_seq_end(s), "seq_end");
  drd_test_check(drd_seq_run(s), "seq_run");
  drd_seq_destroy(s);
}

int drd_test_finish(drd_context *ctx) {
  uint32_t msgs = drd_context_validation_messages(ctx);
  drd_context_destroy(ctx);
  if (msgs) {
    fprintf(stderr, "FAIL: %u validation messages\n", msgs);
    return 1;
  }
  return 0;
}

drd_buffer drd_test_buffer_f32(drd_context *ctx, const float *host, uint64_t n) {
  drd_buffer b;
  drd_test_check(drd_buffer_create(ctx, n * 4, &b), "drd_buffer_create");
  if (host) drd_test_check(drd_buffer_upload(ctx, &b, 0, host, n * 4), "drd_buffer_upload");
  else drd_test_check(drd_buffer_fill(ctx, &b, 0x7fc00000u), "drd_buffer_fill"); /* quiet NaN */
  return b;
}

void drd_test_download_f32(drd_context *ctx, const drd_buffer *b, float *host, uint64_t n) {
  drd_test_check(drd_buffer_download(ctx, b, 0, host, n * 4), "drd_buffer_download");
}
