/* A context's device memory limit (drd_context_desc.max_device_bytes, DRDIFF_MAX_DEVICE_MEMORY):
 * a generation that needs exactly the limit runs, with the tokens of an unlimited context; one
 * byte less refuses the session with DRD_ERROR_OUT_OF_DEVICE_MEMORY and a message naming N,
 * holds nothing of it afterwards, and leaves the context able to run a shorter generation; a
 * model larger than the limit is refused before anything is uploaded; malformed limits in the
 * environment are refused. Validation on throughout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "util_expect.h"
#include "util_gguf_build.h"
#include "util_gpu.h"
#include "util_rand.h"

/* G new tokens from seed on ctx; tokens (G) receive them. Returns the status. */
static drd_status generate(drd_context *ctx, const drd_model *model, uint32_t G, uint64_t seed, int32_t *tokens) {
  drd_gen_params p;
  drd_gen_params_default(&p);
  p.steps = 3;
  p.backend = DRD_BACKEND_VULKAN;
  p.new_tokens = G;
  p.seed = seed;
  drd_gen_result r;
  drd_status s = drd_generate(ctx, model, &p, &r);
  if (s != DRD_OK) return s;
  if (r.n_tokens == G) memcpy(tokens, r.tokens, G * sizeof *tokens);
  else s = DRD_ERROR_INVALID_ARGUMENT;
  drd_gen_result_free(&r);
  return s;
}

static drd_context *limited_context(uint64_t limit) {
  drd_context *ctx = NULL;
  drd_test_check(drd_context_create(&(drd_context_desc){.validation = 1, .pipeline_cache_path = "",
                                                         .max_device_bytes = limit},
                                    &ctx),
                 "limited context");
  return ctx;
}

static uint32_t count_diff(const int32_t *a, const int32_t *b, uint32_t n) {
  uint32_t d = 0;
  for (uint32_t i = 0; i < n; i++) d += a[i] != b[i];
  return d;
}

/* DRDIFF_MAX_DEVICE_MEMORY: what drd_context_create makes of a value (the limit, or a refusal) */
static void test_environment(void) {
  const char *bad[] = {"lots", "0", "-1", "12x", "3MB", "1.5G", "99999999999999999999", "17179869184G"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    setenv("DRDIFF_MAX_DEVICE_MEMORY", bad[i], 1);
    drd_context *ctx = NULL;
    drd_status s = drd_context_create(&(drd_context_desc){.pipeline_cache_path = ""}, &ctx);
    EXPECT(s == DRD_ERROR_INVALID_ARGUMENT && !ctx && strstr(drd_last_error(), "DRDIFF_MAX_DEVICE_MEMORY"),
           "DRDIFF_MAX_DEVICE_MEMORY='%s' gave %s (%s)", bad[i], drd_status_string(s), drd_last_error());
    drd_context_destroy(ctx);
  }
  const struct {
    const char *env;
    uint64_t desc, limit;
  } good[] = {{"4096", 0, 4096}, {"3M", 0, 3ull << 20}, {"2g", 0, 2ull << 30}, {"5k", 0, 5120},
              {"3M", 12345, 12345}, {"", 0, 0}};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    setenv("DRDIFF_MAX_DEVICE_MEMORY", good[i].env, 1);
    drd_context *ctx = NULL;
    drd_status s =
        drd_context_create(&(drd_context_desc){.pipeline_cache_path = "", .max_device_bytes = good[i].desc}, &ctx);
    EXPECT(s == DRD_OK && ctx->alloc.limit == good[i].limit, "DRDIFF_MAX_DEVICE_MEMORY='%s', desc %llu: %s, limit %llu",
           good[i].env, (unsigned long long)good[i].desc, drd_status_string(s),
           ctx ? (unsigned long long)ctx->alloc.limit : 0ull);
    drd_context_destroy(ctx);
  }
  unsetenv("DRDIFF_MAX_DEVICE_MEMORY");
}

int main(void) {
  uint64_t seed = drd_test_seed();
  drd_rng rng = {seed};
  char path[64];
  drd_test_model_desc md = {.seed = seed};
  if (drd_test_model_temp_file(&md, "memlimit", path, sizeof path)) return 1;
  unsetenv("DRDIFF_MAX_DEVICE_MEMORY");
  drd_context *free_ctx = drd_test_context(); /* exits 77 without a device */
  drd_model *model;
  drd_test_check(drd_model_create(&(drd_model_desc){.path = path}, &model), "drd_model_create");

  /* what the generation needs, from a context without a limit: the allocator's peak from the
   * session's start, which began with the weights in use */
  const uint32_t G = drd_rng_range(&rng, 700, 1100), G_short = drd_rng_range(&rng, 40, 90);
  const uint64_t gen_seed = drd_rng_next(&rng);
  int32_t *want = malloc(G * sizeof *want), *got = malloc(G * sizeof *got);
  int32_t want_short[90], got_short[90];
  drd_test_check(generate(free_ctx, model, G_short, gen_seed, want_short), "short generation");
  drd_test_check(generate(free_ctx, model, G, gen_seed, want), "generation");
  const uint64_t need = free_ctx->alloc.peak_in_use;
  fprintf(stderr, "N = %u: %.2f MiB of device memory at the peak\n", G, need / 1048576.0);

  /* exactly enough: the same tokens */
  drd_context *ctx = limited_context(need);
  drd_status s = generate(ctx, model, G, gen_seed, got);
  EXPECT(s == DRD_OK, "N = %u with a limit of exactly its %llu bytes: %s (%s)", G, (unsigned long long)need,
         drd_status_string(s), drd_last_error());
  if (s == DRD_OK) EXPECT(count_diff(want, got, G) == 0, "%u of %u tokens differ under the limit", count_diff(want, got, G), G);
  EXPECT(ctx->alloc.bytes_allocated <= need, "%llu bytes allocated under a limit of %llu",
         (unsigned long long)ctx->alloc.bytes_allocated, (unsigned long long)need);
  if (drd_test_finish(ctx)) FAIL("validation messages (exact limit)");

  /* one byte short: refused with N in the message, nothing of the session held, and the
   * context (with its weights) still runs what fits */
  ctx = limited_context(need - 1);
  s = generate(ctx, model, G, gen_seed, got);
  char msg[64];
  snprintf(msg, sizeof msg, "N = %u tokens do not fit", G);
  EXPECT(s == DRD_ERROR_OUT_OF_DEVICE_MEMORY && strstr(drd_last_error(), msg),
         "N = %u one byte over the limit: %s (%s)", G, drd_status_string(s), drd_last_error());
  const uint64_t after = ctx->alloc.bytes_in_use;
  s = generate(ctx, model, G_short, gen_seed, got_short);
  EXPECT(s == DRD_OK, "N = %u after the refusal: %s (%s)", G_short, drd_status_string(s), drd_last_error());
  if (s == DRD_OK)
    EXPECT(count_diff(want_short, got_short, G_short) == 0, "%u of %u tokens differ after the refusal",
           count_diff(want_short, got_short, G_short), G_short);
  drd_engine_release(ctx);
  const uint64_t weights = after - ctx->alloc.bytes_in_use;
  EXPECT(ctx->alloc.bytes_in_use == 0, "%llu bytes in use after releasing the engine",
         (unsigned long long)ctx->alloc.bytes_in_use);
  fprintf(stderr, "after the refusal: %.2f MiB in use (the weights)\n", after / 1048576.0);
  if (drd_test_finish(ctx)) FAIL("validation messages (limit one byte short)");

  /* a model over the limit: refused before any upload */
  ctx = limited_context(weights - 1);
  s = generate(ctx, model, G_short, gen_seed, got_short);
  EXPECT(s == DRD_ERROR_OUT_OF_DEVICE_MEMORY && strstr(drd_last_error(), "the model needs"),
         "weights over the limit: %s (%s)", drd_status_string(s), drd_last_error());
  EXPECT(ctx->alloc.bytes_allocated == 0, "%llu bytes allocated for a model that does not fit",
         (unsigned long long)ctx->alloc.bytes_allocated);
  if (drd_test_finish(ctx)) FAIL("validation messages (model over the limit)");

  test_environment();
  drd_model_destroy(model);
  free(want);
  free(got);
  unlink(path);
  if (drd_test_finish(free_ctx)) FAIL("validation messages");
  if (drd_test_failures) fprintf(stderr, "test_gpu_memory_limit: %d failures (seed %llu)\n", drd_test_failures, (unsigned long long)seed);
  return drd_test_failures ? 1 : 0;
}
