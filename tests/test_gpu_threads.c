/* Several generations at once in one process, as a server embedding drdiff runs them: threads
 * that each create their own context at the same moment (Vulkan loaded and instances made
 * concurrently) and generate with one shared drd_model, beside a thread on the CPU backend
 * with the same model. Every thread's tokens must equal those of the same requests run one
 * after another, no context may see a validation message, and nothing may log a warning
 * (the contexts save one pipeline cache file at the same moment). */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drdiff.h"
#include "util_expect.h"
#include "util_gguf_build.h"

#define THREADS 3 /* two Vulkan contexts and the CPU backend */
#define REQUESTS 3
#define NEW_TOKENS 40

typedef struct worker {
  const drd_model *model;
  drd_backend backend;
  pthread_barrier_t *start;
  pthread_barrier_t *saved; /* the Vulkan threads destroy their contexts (save the cache) together */
  int32_t tokens[REQUESTS][NEW_TOKENS];
  drd_status status;
  char error[512];
  uint32_t validation_messages;
} worker;

static uint64_t seed_of(int request) { return 1000 + 77 * (uint64_t)request; }

/* Runs the requests (in reverse order for odd ids, so that the threads' sessions differ at
 * every moment) on a context of its own, or without one on the CPU backend. */
static drd_status run_requests(worker *w, int id) {
  drd_context *ctx = NULL;
  drd_status s = DRD_OK;
  if (w->start) pthread_barrier_wait(w->start);
  if (w->backend == DRD_BACKEND_VULKAN) s = drd_context_create(&(drd_context_desc){.validation = 1}, &ctx);
  for (int i = 0; i < REQUESTS && s == DRD_OK; i++) {
    int r = id % 2 ? REQUESTS - 1 - i : i;
    drd_gen_params p;
    drd_gen_params_default(&p);
    p.backend = w->backend;
    p.new_tokens = NEW_TOKENS + 8 * (uint32_t)r; /* a new shape each time: sessions are rebuilt */
    p.prompt_text = r == 1 ? "the history of the city" : NULL;
    p.seed = seed_of(r);
    drd_gen_result res = {0};
    s = drd_generate(ctx, w->model, &p, &res);
    if (s == DRD_OK) memcpy(w->tokens[r], res.tokens, sizeof w->tokens[r]);
    drd_gen_result_free(&res);
  }
  if (s != DRD_OK) snprintf(w->error, sizeof w->error, "%s", drd_last_error());
  w->validation_messages = ctx ? drd_context_validation_messages(ctx) : 0;
  if (w->saved) pthread_barrier_wait(w->saved);
  drd_context_destroy(ctx);
  return s;
}

/* every warning or error any thread logs (a failed cache write, say) fails the test */
static int g_warnings;
static void count_warnings(drd_log_level level, const char *message, void *user) {
  (void)user;
  if (level > DRD_LOG_WARN) return;
  __atomic_add_fetch(&g_warnings, 1, __ATOMIC_RELAXED);
  fprintf(stderr, "  log: %s\n", message);
}

static worker *g_workers;
static void *thread_main(void *arg) {
  int id = (int)(intptr_t)arg;
  g_workers[id].status = run_requests(&g_workers[id], id);
  return NULL;
}

int main(void) {
  /* a cache folder of its own: the first context writes it, the others read and rewrite it */
  char cache[] = "/tmp/drdiff-threads-cache-XXXXXX";
  if (!mkdtemp(cache) || setenv("DRDIFF_CACHE_DIR", cache, 1)) {
    fprintf(stderr, "FAIL: no temporary cache folder\n");
    return 1;
  }
  drd_log_set(count_warnings, NULL, DRD_LOG_WARN);
  drd_hparams hp;
  drd_test_tiny_hparams(&hp);
  drd_test_model_desc md = {.hp = &hp, .seed = 21, .matrix_type = DRD_DTYPE_F16};
  char path[256];
  if (drd_test_model_temp_file(&md, "threads", path, sizeof path)) return 1;
  drd_model *model = NULL;
  drd_status s = drd_model_create(&(drd_model_desc){.path = path}, &model);
  remove(path);
  if (s != DRD_OK) {
    fprintf(stderr, "FAIL: model: %s\n", drd_last_error());
    return 1;
  }
  drd_context *probe = NULL;
  s = drd_context_create(&(drd_context_desc){0}, &probe);
  drd_context_destroy(probe);
  if (s == DRD_ERROR_NO_VULKAN || s == DRD_ERROR_NO_DEVICE) {
    const char *req = getenv("DRDIFF_REQUIRE_DEVICE");
    int required = req && *req && strcmp(req, "0");
    printf("%s: no Vulkan device\n", required ? "FAIL" : "SKIP");
    drd_model_destroy(model);
    return required ? 1 : 77;
  }

  /* the same requests one after another: what every thread must reproduce */
  worker *seq = calloc(2, sizeof *seq);
  seq[0] = (worker){.model = model, .backend = DRD_BACKEND_VULKAN};
  seq[1] = (worker){.model = model, .backend = DRD_BACKEND_CPU};
  for (int i = 0; i < 2; i++)
    if (run_requests(&seq[i], 0) != DRD_OK) {
      fprintf(stderr, "FAIL: sequential %s run: %s\n", i ? "CPU" : "Vulkan", seq[i].error);
      return 1;
    }

  for (int round = 0; round < 2; round++) {
    pthread_barrier_t start, saved;
    pthread_barrier_init(&start, NULL, THREADS);
    pthread_barrier_init(&saved, NULL, THREADS - 1);
    g_workers = calloc(THREADS, sizeof *g_workers);
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
      const bool vk = t < THREADS - 1;
      g_workers[t] = (worker){.model = model, .start = &start, .saved = vk ? &saved : NULL,
                              .backend = vk ? DRD_BACKEND_VULKAN : DRD_BACKEND_CPU};
      EXPECT(pthread_create(&th[t], NULL, thread_main, (void *)(intptr_t)t) == 0, "pthread_create");
    }
    for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&saved);
    for (int t = 0; t < THREADS; t++) {
      const worker *w = &g_workers[t];
      const worker *want = &seq[w->backend == DRD_BACKEND_CPU];
      EXPECT(w->status == DRD_OK, "round %d thread %d: %s: %s", round, t, drd_status_string(w->status), w->error);
      EXPECT(w->validation_messages == 0, "round %d thread %d: %u validation messages", round, t,
             w->validation_messages);
      for (int r = 0; r < REQUESTS && w->status == DRD_OK; r++)
        EXPECT(!memcmp(w->tokens[r], want->tokens[r], sizeof w->tokens[r]),
               "round %d thread %d request %d: tokens differ from the same request run alone", round, t, r);
    }
    free(g_workers);
  }
  EXPECT(seq[0].validation_messages == 0, "sequential run: %u validation messages", seq[0].validation_messages);
  EXPECT(g_warnings == 0, "%d warnings logged", g_warnings);
  char cmd[sizeof cache + 16];
  snprintf(cmd, sizeof cmd, "rm -rf %s", cache);
  if (system(cmd)) fprintf(stderr, "could not remove %s\n", cache);
  free(seq);
  drd_model_destroy(model);
  if (drd_test_failures) {
    fprintf(stderr, "%d failures\n", drd_test_failures);
    return 1;
  }
  printf("PASS: %d threads (%d Vulkan contexts, the CPU backend) x %d requests, twice, as run alone\n", THREADS,
         THREADS - 1, REQUESTS);
  return 0;
}
