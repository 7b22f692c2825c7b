/* The engine's pacing after one slow step. The host sleeps through most of each group of
 * steps before it waits on the group's fence, for as long as the last steps took. A step that
 * is slow once (a shader compiled on first use, as llvmpipe does: the README's main command
 * spent 26 s in one step on a cold shader cache) must not make the following steps slow: a
 * host that slept for the old estimate left the device idle, the idle time entered the next
 * estimate, and the run went on sleeping 3/4 of the last sleep at a time (171 s instead of 35
 * for that command, 2026-12-05). Here the slow step is the host's own: the progress callback
 * stalls once, and the device runs out of queued work meanwhile, as in the case above. The
 * rest of the run must take about as long as without the stall. Validation on. */
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "util_expect.h"
#include "util_gguf_build.h"
#include "util_gpu.h"
#include "util_rand.h"

#define STALL_S 1.0
#define STEPS 30

typedef struct {
  uint32_t stall_at; /* 0: never */
} stall;

static int stall_once(uint32_t step, uint32_t steps, double t, void *user) {
  (void)steps, (void)t;
  const stall *s = user;
  if (step == s->stall_at) drd_sleep_until_s(drd_now_s() + STALL_S);
  return 0;
}

static double timed_run(drd_context *ctx, drd_model *model, drd_gen_params *p, uint32_t stall_at) {
  stall s = {stall_at};
  p->progress = stall_once;
  p->progress_user = &s;
  drd_gen_result r;
  double t0 = drd_now_s();
  drd_test_check(drd_generate(ctx, model, p, &r), "generation");
  double t = drd_now_s() - t0;
  drd_gen_result_free(&r);
  return t;
}

int main(void) {
  uint64_t seed = drd_test_seed();
  char path[64];
  drd_test_model_desc md = {.seed = seed};
  if (drd_test_model_temp_file(&md, "pacing", path, sizeof path)) return 1;
  drd_context *ctx = drd_test_context();
  drd_model *model;
  drd_test_check(drd_model_create(&(drd_model_desc){.path = path}, &model), "drd_model_create");
  drd_gen_params p;
  drd_gen_params_default(&p);
  p.backend = DRD_BACKEND_VULKAN;
  p.new_tokens = 64;
  p.steps = STEPS;
  /* a layer per submission: one step per group, as after a slow step, where the estimate
   * makes groups of one */
  p.layers_per_submit = 1;
  timed_run(ctx, model, &p, 0); /* compiles the pipelines and learns the step time */
  /* the stall at step 2: the run still has 28 steps in which to recover (or not) */
  double plain = timed_run(ctx, model, &p, 0), stalled = timed_run(ctx, model, &p, 2),
         plain2 = timed_run(ctx, model, &p, 0);
  double base = plain < plain2 ? plain : plain2;
  fprintf(stderr, "%u steps: %.3f / %.3f s; with a %.1f s stall at step 2: %.3f s\n", STEPS, plain, plain2, STALL_S,
          stalled);
  /* the stall itself, plus the device's idle time behind it (one group, ~0.2 s) and the
   * machine's noise (ctest runs two tests at once), within another STALL_S: the old pacing made
   * the run 3.9 s longer here (it slept 0.75, 0.56, 0.42 ... s after the stall) */
  EXPECT(stalled - base < 2 * STALL_S, "a %.1f s stall in one step made the run %.3f s longer", STALL_S,
         stalled - base);
  int rc = drd_test_finish(ctx);
  drd_model_destroy(model);
  remove(path);
  if (drd_test_failures || rc) fprintf(stderr, "test_gpu_pacing: %d failures (seed %llu)\n", drd_test_failures, (unsigned long long)seed);
  return drd_test_failures || rc ? 1 : 0;
}
