/* GPU test helpers: a context with validation on (skip = exit 77 when there is no Vulkan
 * or no device), one for benchmarks without it, a record-run-wait helper, upload/download of f32 arrays, NaN poisoning, and the final check that
 * the validation layer said nothing. */
#ifndef DRD_UTIL_GPU_H
#define DRD_UTIL_GPU_H

#include <stdint.h>

#include "ops.h"
#include "vk_internal.h"

#define DRD_TEST_SKIP 77

/* Creates the test context (validation always on). Exits 77 when no device exists, 1 on
 * any other failure. Prints the device and the weak-device switches in effect. */
drd_context *drd_test_context(void);
/* The same for benchmark tools, with validation off (it would distort the timings). */
drd_context *drd_bench_context(void);
/* Records rec(seq, arg) into a new sequence, runs it once and waits; aborts on any error. */
void drd_test_run_seq(drd_context *ctx, drd_status (*rec)(drd_seq *, void *), void *arg, const char *what);
/* Destroys the context; returns 1 (fail) if the validation layer reported anything. */
int drd_test_finish(drd_context *ctx);

/* A device buffer of n floats filled from host (or poisoned with NaN when host is NULL). */
drd_buffer drd_test_buffer_f32(drd_context *ctx, const float *host, uint64_t n);
/* Downloads n floats. */
void drd_test_download_f32(drd_context *ctx, const drd_buffer *b, float *host, uint64_t n);

/* Aborts the test with a message when s is not DRD_OK (tests may exit; the library may not). */
void drd_test_check(drd_status s, const char *what);

#endif
