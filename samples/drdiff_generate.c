/* drdiff generate: text (or token ids) from a DrDiff model. Text goes to stdout, progress
 * and errors to stderr. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drdiff.h"
#include "drdiff_cli.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: drdiff generate [-m MODEL.gguf] [-p TEXT | --prompt-ids 1,2,3] [-n NEW_TOKENS]\n"
          "         [--steps S] [--order 1|2|3] [--grid time_uniform|logsnr_uniform] [--seed U64]\n"
          "         [--sas-gamma G] [--sas-temperature T] [--sas-start U] [--backend cpu|vulkan]\n"
          "         [--device ID] [--json] [--no-progress] [--dump-state FILE] [--layers-per-submit K]\n"
          "Defaults: the model shipped with drdiff, 64 new tokens, steps and SAS from the model file,\n"
          "order 2, time_uniform grid, seed 0.\n");
}

static int parse_u64(const char *s, uint64_t *v) {
  if (!s || !*s || *s == '-') return 0;
  char *end;
  errno = 0;
  unsigned long long x = strtoull(s, &end, 0);
  if (errno || *end) return 0;
  *v = x;
  return 1;
}

static int parse_f(const char *s, float *v) {
  if (!s || !*s) return 0;
  char *end;
  errno = 0;
  *v = strtof(s, &end);
  return !errno && !*end;
}

static int parse_ids(const char *s, int32_t **ids, uint32_t *n) {
  size_t cap = 16, len = 0;
  int32_t *a = malloc(cap * sizeof *a);
  if (!a) return 0;
  const char *p = s;
  while (*p) {
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (end == p || errno || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
      free(a);
      return 0;
    }
    if (len == cap) {
      int32_t *b = realloc(a, (cap *= 2) * sizeof *a);
      if (!b) {
        free(a);
        return 0;
      }
      a = b;
    }
    a[len++] = (int32_t)v;
    p = *end ? end + 1 : end;
  }
  *ids = a;
  *n = (uint32_t)len;
  return 1;
}

/* The default model: the first *.gguf in models/ beside the build folder or in the install
 * prefix's share/drdiff/models, relative to the executable. */
static int find_default_model(char *out, size_t len) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return 0;
  exe[n] = 0;
  char *slash = strrchr(exe, '/');
  if (!slash) return 0;
  *slash = 0;
  const char *rel[] = {"/../models", "/../../models", "/../share/drdiff/models"};
  for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
    char dir[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s%s", exe, rel[i]);
    DIR *d = opendir(dir);
    if (!d) continue;
    struct dirent *e;
    while ((e = readdir(d))) {
      size_t L = strlen(e->d_name);
      if (L > 5 && !strcmp(e->d_name + L - 5, ".gguf")) {
        snprintf(out, len, "%s/%s", dir, e->d_name);
        closedir(d);
        return 1;
      }
    }
    closedir(d);
  }
  return 0;
}

static int on_progress(uint32_t step, uint32_t steps, double elapsed, void *user) {
  (void)user;
  int width = 30, filled = (int)((double)step / steps * width);
  fprintf(stderr, "\r[%.*s%*s] %u/%u steps, %.2f it/s", filled, "##############################",
          width - filled, "", step, steps, elapsed > 0 ? step / elapsed : 0.0);
  if (step == steps) fputc('\n', stderr);
  return 0;
}

int drdiff_cmd_generate(int argc, char **argv) {
  const char *model_path = NULL, *device = NULL, *dump_state = NULL;
  int json = 0, progress = isatty(2);
  int32_t *ids = NULL;
  drd_gen_params p;
  drd_gen_params_default(&p);
  p.new_tokens = 64;
  int rc = 2;
#define NEED_ARG()                                                        \
  if (i + 1 >= argc) {                                                    \
    fprintf(stderr, "drdiff generate: %s needs a value\n", argv[i]);      \
    goto out;                                                             \
  }                                                                       \
  const char *val = argv[++i]
#define BAD(what)                                                                 \
  do {                                                                            \
    fprintf(stderr, "drdiff generate: bad value for %s: '%s'\n", what, val);      \
    goto out;                                                                     \
  } while (0)
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    uint64_t u;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      rc = 0;
      goto out;
    } else if (!strcmp(a, "--json")) json = 1;
    else if (!strcmp(a, "--no-progress")) progress = 0;
    else if (!strcmp(a, "-m") || !strcmp(a, "--model")) { NEED_ARG(); model_path = val; }
    else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) { NEED_ARG(); p.prompt_text = val; }
    else if (!strcmp(a, "--prompt-ids")) {
      NEED_ARG();
      free(ids);
      ids = NULL;
      if (!parse_ids(val, &ids, &p.prompt_len)) BAD(a);
      p.prompt_ids = ids;
    } else if (!strcmp(a, "-n") || !strcmp(a, "--new-tokens")) {
      NEED_ARG();
      if (!parse_u64(val, &u) || u == 0 || u > UINT32_MAX) BAD(a);
      p.new_tokens = (uint32_t)u;
    } else if (!strcmp(a, "--steps")) {
      NEED_ARG();
      if (!parse_u64(val, &u) || u == 0 || u > 10000) BAD(a);
      p.steps = (uint32_t)u;
    } else if (!strcmp(a, "--order")) {
      NEED_ARG();
      if (!parse_u64(val, &u) || u < 1 || u > 3) BAD(a);
      p.order = (uint32_t)u;
    } else if (!strcmp(a, "--grid")) {
      NEED_ARG();
      if (!strcmp(val, "time_uniform")) p.grid = DRD_GRID_TIME_UNIFORM;
      else if (!strcmp(val, "logsnr_uniform")) p.grid = DRD_GRID_LOGSNR_UNIFORM;
      else BAD(a);
    } else if (!strcmp(a, "--seed")) {
      NEED_ARG();
      if (!parse_u64(val, &p.seed)) BAD(a);
    } else if (!strcmp(a, "--sas-gamma")) {
      NEED_ARG();
      if (!parse_f(val, &p.sas_gamma) || !(p.sas_gamma >= 0 && p.sas_gamma <= 1)) BAD(a);
    } else if (!strcmp(a, "--sas-temperature")) {
      NEED_ARG();
      if (!parse_f(val, &p.sas_temperature) || !(p.sas_temperature > 0)) BAD(a);
    } else if (!strcmp(a, "--sas-start")) {
      NEED_ARG();
      if (!parse_f(val, &p.sas_start) || !(p.sas_start >= 0 && p.sas_start <= 1)) BAD(a);
    } else if (!strcmp(a, "--backend")) {
      NEED_ARG();
      if (!strcmp(val, "cpu")) p.backend = DRD_BACKEND_CPU;
      else if (!strcmp(val, "vulkan")) p.backend = DRD_BACKEND_VULKAN;
      else BAD(a);
    } else if (!strcmp(a, "--device")) { NEED_ARG(); device = val; }
    else if (!strcmp(a, "--dump-state")) { NEED_ARG(); dump_state = val; }
    else if (!strcmp(a, "--layers-per-submit")) {
      NEED_ARG();
      if (!parse_u64(val, &u) || u > 100000) BAD(a);
      p.layers_per_submit = (uint32_t)u;
    }
    else {
      fprintf(stderr, "drdiff generate: unknown option '%s'\n", a);
      usage(stderr);
      goto out;
    }
  }
#undef NEED_ARG
#undef BAD
  if (p.prompt_ids && p.prompt_text) {
    fprintf(stderr, "drdiff generate: give -p or --prompt-ids, not both\n");
    goto out;
  }
  char found[PATH_MAX + 64];
  if (!model_path) {
    if (!find_default_model(found, sizeof found)) {
      fprintf(stderr, "drdiff generate: no -m MODEL given and no model found in models/\n");
      goto out;
    }
    model_path = found;
  }
  rc = 1;
  drd_model *model = NULL;
  drd_context *ctx = NULL;
  drd_gen_result res = {0};
  drd_status s = drd_model_create(&(drd_model_desc){.path = model_path}, &model);
  if (s == DRD_OK && p.backend != DRD_BACKEND_CPU)
    s = drd_context_create(&(drd_context_desc){.device = device}, &ctx);
  /* no Vulkan at all, or no usable device, and neither a backend nor a device asked for
   * (--device, DRDIFF_DEVICE): the C reference engine still generates (slowly), rather than
   * the main command failing */
  const char *env_device = getenv("DRDIFF_DEVICE");
  if ((s == DRD_ERROR_NO_VULKAN || s == DRD_ERROR_NO_DEVICE) && p.backend == DRD_BACKEND_DEFAULT && !device &&
      !(env_device && *env_device)) {
    fprintf(stderr, "drdiff generate: %s; generating on the CPU instead (--backend cpu)\n", drd_last_error());
    p.backend = DRD_BACKEND_CPU;
    s = DRD_OK;
  }
  if (progress) p.progress = on_progress;
  /* --dump-state: the final x before rounding, raw little-endian f32 [N, de], for tests. Whether
   * the path can be written is checked before generating, so that a bad one fails at once, not
   * after a long run (opened for appending: a file already there is not truncated by a run that
   * then fails). Its failures print their own message (drd_last_error is the library's). */
  float *state = NULL;
  size_t state_n = 0;
  bool reported = false;
  if (s == DRD_OK && dump_state) {
    const bool existed = access(dump_state, F_OK) == 0;
    FILE *probe = fopen(dump_state, "ab");
    if (!probe) {
      fprintf(stderr, "drdiff generate: cannot write %s: %s\n", dump_state, strerror(errno));
      s = DRD_ERROR_IO, reported = true;
    } else {
      fclose(probe);
      if (!existed) remove(dump_state);
    }
    state_n = drd_gen_state_size(model, &p); /* 0: the prompt does not encode; drd_generate says why */
    state = state_n ? malloc(state_n * sizeof *state) : NULL;
    p.state_out = state;
    if (s == DRD_OK && state_n && !state) {
      fprintf(stderr, "drdiff generate: no host memory for --dump-state's %zu floats\n", state_n);
      s = DRD_ERROR_OUT_OF_HOST_MEMORY, reported = true;
    }
  }
  if (s == DRD_OK) s = drd_generate(ctx, model, &p, &res);
  if (s == DRD_OK && state) {
    FILE *f = fopen(dump_state, "wb");
    bool written = f && fwrite(state, sizeof *state, state_n, f) == state_n;
    if (f && fclose(f) != 0) written = false;
    if (!written) {
      fprintf(stderr, "drdiff generate: cannot write %s: %s\n", dump_state, strerror(errno));
      s = DRD_ERROR_IO, reported = true;
      remove(dump_state); /* no partial state left behind */
    }
  }
  free(state);
  if (s != DRD_OK) {
    if (!reported) fprintf(stderr, "drdiff generate: %s: %s\n", drd_status_string(s), drd_last_error());
  } else if (json) {
    printf("{\"tokens\": [");
    for (uint32_t i = 0; i < res.n_tokens; i++) printf("%s%d", i ? ", " : "", res.tokens[i]);
    printf("], \"text\": ");
    drdiff_json_string(stdout, res.text);
    printf(", \"backend\": \"%s\", \"device\": ", ctx ? "vulkan" : "cpu");
    drdiff_json_string(stdout, ctx ? drd_context_caps(ctx)->name : "cpu");
    printf(", \"seconds\": %.6f, \"seconds_setup\": %.6f, \"seconds_per_step\": %.6f, \"device_bytes\": %llu}\n",
           res.seconds_total, res.seconds_setup, res.seconds_per_step, (unsigned long long)res.device_bytes);
    rc = 0;
  } else {
    /* the prompt, then its continuation: what a reader wants to see (--json keeps them apart) */
    printf("%s%s\n", p.prompt_text ? p.prompt_text : "", res.text);
    rc = 0;
  }
  drd_gen_result_free(&res);
  drd_context_destroy(ctx);
  drd_model_destroy(model);
out:
  free(ids);
  return rc;
}
