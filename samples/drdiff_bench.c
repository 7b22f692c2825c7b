/* drdiff bench: set-up time, time per denoising step, tokens/s, achieved FLOP rate, device
 * memory, host CPU time and a per-op GPU breakdown, for a model file or a random model made
 * from a named configuration (no Python needed). Results go to stdout, errors to stderr. */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "drdiff.h"
#include "drdiff_bench.h"
#include "drdiff_cli.h"
#include "log.h"
#include "random_model.h"

#define MAX_NS 64
/* The engine's longest sequence (DRD_MAX_TOKENS in runtime/api_internal.h): checked here so a
 * bad -n fails before any model is written or loaded. */
#define ENGINE_MAX_TOKENS (1u << 24)

static void usage(FILE *f) {
  fprintf(f,
          "usage: drdiff bench (-m MODEL.gguf | --config tiny|base-220m) [-n N[,N...]] [--steps S]\n"
          "         [--seed U64] [--dtype f16|f32|bf16|q8_0] [--device ID] [--layers-per-submit K]\n"
          "         [--no-profile] [--json]\n"
          "For each N: one warm-up generation (its set-up time is reported), then a timed generation\n"
          "of S steps (default 5) and, unless --no-profile, a GPU-timestamped one for the per-op\n"
          "breakdown. --config writes a random model (weights from --seed, default f16) to a\n"
          "temporary file, deleted once loaded. Default -n 256.\n");
}

typedef struct options {
  const char *model_path, *config, *device;
  uint64_t seed;
  drd_dtype dtype;
  int dtype_given, json, profile;
  uint32_t ns[MAX_NS], n_ns, steps, layers_per_submit;
} options;

static int parse_u64(const char *s, uint64_t *v) {
  if (!s || !*s || *s == '-' || *s == '+') return 0;
  char *end;
  errno = 0;
  unsigned long long x = strtoull(s, &end, 10);
  if (errno || *end) return 0;
  *v = x;
  return 1;
}

/* "40,150,1024": each 1..ENGINE_MAX_TOKENS. */
static int parse_ns(const char *s, options *o) {
  o->n_ns = 0;
  char buf[32];
  for (const char *p = s;; p++) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    uint64_t v;
    if (len == 0 || len >= sizeof buf || o->n_ns == MAX_NS) return 0;
    memcpy(buf, p, len);
    buf[len] = 0;
    if (!parse_u64(buf, &v) || v == 0 || v > ENGINE_MAX_TOKENS) return 0;
    o->ns[o->n_ns++] = (uint32_t)v;
    if (!comma) return 1;
    p = comma;
  }
}

/* 0 on success, 2 (after a message) on bad options, -1 for --help. */
static int parse(int argc, char **argv, options *o) {
  *o = (options){.dtype = DRD_DTYPE_F16, .profile = 1, .steps = 5, .ns = {256}, .n_ns = 1};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    uint64_t u = 0;
    int takes = !strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "--config") || !strcmp(a, "-n") ||
                !strcmp(a, "--steps") || !strcmp(a, "--seed") || !strcmp(a, "--dtype") || !strcmp(a, "--device") ||
                !strcmp(a, "--layers-per-submit");
    if (takes && !val) {
      fprintf(stderr, "drdiff bench: %s needs a value\n", a);
      return 2;
    }
    int ok = 1;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) return -1;
    else if (!strcmp(a, "--json")) o->json = 1;
    else if (!strcmp(a, "--no-profile")) o->profile = 0;
    else if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model_path = val;
    else if (!strcmp(a, "--config")) {
      drd_hparams hp;
      ok = drd_random_model_config(val, &hp) == DRD_OK;
      o->config = val;
    } else if (!strcmp(a, "-n")) ok = parse_ns(val, o);
    else if (!strcmp(a, "--steps")) {
      ok = parse_u64(val, &u) && u >= 1 && u <= 10000;
      o->steps = (uint32_t)u;
    } else if (!strcmp(a, "--seed")) ok = parse_u64(val, &o->seed);
    else if (!strcmp(a, "--dtype")) {
      static const struct { const char *name; drd_dtype type; } t[] = {
          {"f16", DRD_DTYPE_F16}, {"f32", DRD_DTYPE_F32}, {"bf16", DRD_DTYPE_BF16}, {"q8_0", DRD_DTYPE_Q8_0}};
      ok = 0;
      for (size_t k = 0; k < sizeof t / sizeof *t; k++)
        if (!strcmp(val, t[k].name)) o->dtype = t[k].type, ok = 1;
      o->dtype_given = 1;
    } else if (!strcmp(a, "--device")) o->device = val;
    else if (!strcmp(a, "--layers-per-submit")) {
      ok = parse_u64(val, &u) && u <= 100000;
      o->layers_per_submit = (uint32_t)u;
    } else {
      fprintf(stderr, "drdiff bench: unknown option '%s'\n", a);
      usage(stderr);
      return 2;
    }
    if (!ok) {
      fprintf(stderr, "drdiff bench: bad value for %s: '%s'%s\n", a, val,
              !strcmp(a, "-n") ? " (want N[,N...], each 1..16777216)"
              : !strcmp(a, "--config") ? " (choose tiny or base-220m)" : "");
      return 2;
    }
    i += takes;
  }
  if (!o->model_path == !o->config) {
    fprintf(stderr, "drdiff bench: give exactly one of -m MODEL.gguf and --config tiny|base-220m\n");
    return 2;
  }
  if (o->model_path && o->dtype_given) {
    fprintf(stderr, "drdiff bench: --dtype applies to --config (a model file has its own types)\n");
    return 2;
  }
  return 0;
}

/* ------------------------------------------------------------------ measurement */

/* user + system CPU seconds of `who`, or -1 where the system cannot say */
static double rusage_seconds(int who) {
  struct rusage ru;
  if (getrusage(who, &ru) != 0) return -1;
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static double cpu_seconds(void) { return rusage_seconds(RUSAGE_SELF); }

/* CPU seconds of the calling thread alone (the one that submits and waits), or -1 where the
 * system cannot say: the process's figure also counts the driver's own threads. */
static double thread_cpu_seconds(void) {
#ifdef RUSAGE_THREAD
  return rusage_seconds(RUSAGE_THREAD);
#else
  return -1;
#endif
}

typedef struct step_clock {
  double *elapsed; /* [steps] seconds since the first step began, at the end of each step */
  double cpu_last;    /* this process's CPU seconds at the end of the last step */
  double thread_last; /* the same for the generating thread (-1: unknown) */
  drd_context *profile_ctx; /* non-NULL: snapshot the profile after the last step */
  drd_profile_op *ops;
  uint32_t n_ops;
} step_clock;

static int on_step(uint32_t step, uint32_t steps, double elapsed, void *user) {
  step_clock *c = user;
  if (c->elapsed) c->elapsed[step - 1] = elapsed;
  if (step == steps) c->cpu_last = cpu_seconds(), c->thread_last = thread_cpu_seconds();
  /* after the last step, before the rounding: the profile then holds the steps alone (and
   * the one noise dispatch before them) */
  if (c->profile_ctx && step == steps) {
    uint32_t n = drd_profile_ops(c->profile_ctx, NULL, 0);
    c->ops = n ? malloc(n * sizeof *c->ops) : NULL;
    c->n_ops = c->ops ? drd_profile_ops(c->profile_ctx, c->ops, n) : 0;
  }
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median of v[i] over the i < n with flags[i] == want (all i when flags is NULL), using tmp
 * (n doubles); 0 when there are none. */
static double median_of(const double *v, uint32_t n, const uint8_t *flags, uint8_t want, double *tmp) {
  uint32_t k = 0;
  for (uint32_t i = 0; i < n; i++)
    if (!flags || flags[i] == want) tmp[k++] = v[i];
  if (!k) return 0;
  qsort(tmp, k, sizeof *tmp, cmp_double);
  return k % 2 ? tmp[k / 2] : 0.5 * (tmp[k / 2 - 1] + tmp[k / 2]);
}

static int by_time_desc(const void *a, const void *b) {
  double x = ((const drd_profile_op *)a)->total_ns, y = ((const drd_profile_op *)b)->total_ns;
  return (x < y) - (x > y);
}

static drd_gen_params params_for(const options *o, uint32_t N) {
  drd_gen_params p;
  drd_gen_params_default(&p);
  p.new_tokens = N;
  p.steps = o->steps;
  p.seed = o->seed;
  p.backend = DRD_BACKEND_VULKAN;
  p.layers_per_submit = o->layers_per_submit;
  return p;
}

/* Warm-up (set-up time, device memory), then the timed generation: step times and CPU time. */
static drd_status time_one(drd_context *ctx, const drd_model *model, const drd_hparams *hp, const options *o,
                           bench_run *run) {
  drd_gen_params p = params_for(o, run->N);
  drd_gen_result res = {0};
  drd_status s = drd_generate(ctx, model, &p, &res);
  run->setup_s = res.seconds_setup;
  run->device_bytes = res.device_bytes;
  drd_gen_result_free(&res);
  if (s != DRD_OK) return s;

  const uint32_t S = o->steps;
  double *elapsed = calloc(S, sizeof *elapsed), *sorted = calloc(S, sizeof *sorted);
  run->step_s = calloc(S, sizeof *run->step_s);
  if (!elapsed || !sorted || !run->step_s) {
    free(elapsed), free(sorted);
    return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  }
  step_clock clock = {.elapsed = elapsed};
  p.progress = on_step;
  p.progress_user = &clock;
  const double cpu0 = cpu_seconds(), thread0 = thread_cpu_seconds();
  s = drd_generate(ctx, model, &p, &res); /* same shape: reuses the warm-up's recording */
  const double cpu = cpu_seconds() - cpu0;
  if (s == DRD_OK) {
    for (uint32_t i = 0; i < S; i++) run->step_s[i] = elapsed[i] - (i ? elapsed[i - 1] : 0);
    run->step_ms_median = 1e3 * median_of(run->step_s, S, NULL, 0, sorted);
    /* SAS steps cost more (the absorption reads the whole vocabulary per token), and a 20-step
     * generation has its own share of them: the two kinds of step apart */
    uint8_t *sas = calloc(S, 1);
    uint32_t n_sas = 0, n_sas20 = 0;
    if (sas && bench_sas_steps(hp, S, sas, &n_sas) == DRD_OK && bench_sas_steps(hp, 20, NULL, &n_sas20) == DRD_OK) {
      run->step_ms_sas = n_sas ? 1e3 * median_of(run->step_s, S, sas, 1, sorted) : 0;
      run->step_ms_plain = n_sas < S ? 1e3 * median_of(run->step_s, S, sas, 0, sorted) : run->step_ms_sas;
      run->sas_steps_20 = n_sas20;
    } else {
      run->step_ms_plain = run->step_ms_median;
      run->sas_steps_20 = 0;
    }
    free(sas);
    run->gen_s = res.seconds_total;
    /* noise, rounding and read-back happen once per generation whatever the step count */
    const double once = res.seconds_total - elapsed[S - 1];
    const double sas_ms = run->step_ms_sas > 0 ? run->step_ms_sas : run->step_ms_plain;
    run->gen_s_20 = 1e-3 * ((20 - run->sas_steps_20) * run->step_ms_plain + run->sas_steps_20 * sas_ms) +
                    (once > 0 ? once : 0);
    run->tokens_per_s = run->N / run->gen_s_20;
    /* everything from the generation's start to the last step's end counts against the
     * steps (the noise dispatch before them too): the engine hands steps to the GPU in groups,
     * so the host's work does not fall step by step. The rest (rounding, read-back) is paid
     * once per generation. */
    const double steps_cpu = (clock.cpu_last - cpu0) / S;
    run->host_cpu_ms_per_step = 1e3 * steps_cpu;
    run->host_cpu_ms_once = 1e3 * (cpu - S * steps_cpu);
    run->host_thread_cpu_ms_per_step =
        thread0 >= 0 && clock.thread_last >= 0 ? 1e3 * (clock.thread_last - thread0) / S : -1;
    bench_flops fl;
    s = bench_flops_count(hp, run->N, S, &fl);
    if (s == DRD_OK) {
      const double steps_flops = S * fl.step + fl.sas_steps * fl.sas;
      run->flops_per_step = steps_flops / S;
      run->tflops = (steps_flops + fl.round) / res.seconds_total * 1e-12;
    }
  }
  drd_gen_result_free(&res);
  free(elapsed);
  free(sorted);
  return s;
}

/* A warm-up on the profiling context, then a generation whose steps are profiled alone. */
static drd_status profile_one(drd_context *pctx, const drd_model *model, const options *o, bench_run *run) {
  drd_gen_params p = params_for(o, run->N);
  drd_gen_result res = {0};
  drd_status s = drd_generate(pctx, model, &p, &res);
  drd_gen_result_free(&res);
  if (s != DRD_OK) return s;
  step_clock clock = {.profile_ctx = pctx};
  p.progress = on_step;
  p.progress_user = &clock;
  drd_profile_reset(pctx);
  s = drd_generate(pctx, model, &p, &res);
  drd_gen_result_free(&res);
  drd_profile_reset(pctx); /* nothing left for DRDIFF_PROFILE's exit table to repeat */
  if (s != DRD_OK) {
    free(clock.ops);
    return s;
  }
  if (clock.n_ops) qsort(clock.ops, clock.n_ops, sizeof *clock.ops, by_time_desc);
  run->ops = clock.ops;
  run->n_ops = clock.n_ops;
  return DRD_OK;
}

/* ------------------------------------------------------------------ the command */

/* Writes the random model to a fresh temporary file; its path goes to out. */
static drd_status make_random_model(const options *o, char *out, size_t len) {
  drd_hparams hp;
  drd_status s = drd_random_model_config(o->config, &hp);
  if (s != DRD_OK) return s;
  const char *dir = getenv("TMPDIR");
  snprintf(out, len, "%s/drdiff-bench-XXXXXX", dir && *dir ? dir : "/tmp");
  int fd = mkstemp(out);
  if (fd < 0) {
    s = drd_fail(DRD_ERROR_IO, "cannot create a temporary file in %s", dir && *dir ? dir : "/tmp");
    out[0] = 0;
    return s;
  }
  close(fd);
  if (!o->json) fprintf(stderr, "drdiff bench: writing a random %s model to %s\n", o->config, out);
  return drd_random_model_write(&hp, o->seed, o->dtype, out);
}

int drdiff_cmd_bench(int argc, char **argv) {
  options o;
  int rc = parse(argc, argv, &o);
  if (rc == -1) {
    usage(stdout);
    return 0;
  }
  if (rc) return rc;

  char tmp[4096] = "", model_desc[256];
  drd_model *model = NULL;
  drd_model_file *mf = NULL;
  drd_context *ctx = NULL;
  bench_run *runs = calloc(o.n_ns, sizeof *runs);
  drd_status s = runs ? DRD_OK : drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  const char *path = o.model_path;
  if (s == DRD_OK && o.config) {
    s = make_random_model(&o, tmp, sizeof tmp);
    path = tmp;
  }
  /* the public model for generating; the file view for the hyperparameters the FLOP count needs */
  if (s == DRD_OK) s = drd_model_create(&(drd_model_desc){.path = path}, &model);
  if (s == DRD_OK) s = drd_model_file_open(path, &mf);
  if (tmp[0]) unlink(tmp); /* both hold a mapping: the data stays until they close */
  if (o.config)
    snprintf(model_desc, sizeof model_desc, "random %s (seed %llu, %s)", o.config, (unsigned long long)o.seed,
             o.dtype == DRD_DTYPE_F16 ? "f16" : o.dtype == DRD_DTYPE_F32 ? "f32" : o.dtype == DRD_DTYPE_BF16 ? "bf16" : "q8_0");
  if (s == DRD_OK)
    for (uint32_t i = 0; i < o.n_ns; i++)
      if (o.ns[i] > mf->hp.context_length)
        fprintf(stderr, "drdiff bench: note: N = %u is beyond the model's context_length %u (timings still hold)\n",
                o.ns[i], mf->hp.context_length);
  /* these switches act on every context, the timed one included */
  const char *slow[] = {"DRDIFF_PROFILE", "DRDIFF_VALIDATE"};
  for (size_t i = 0; i < sizeof slow / sizeof *slow; i++) {
    const char *e = getenv(slow[i]);
    if (e && *e && strcmp(e, "0"))
      fprintf(stderr, "drdiff bench: note: %s is set: the timed generations carry its overhead\n", slow[i]);
  }
  if (s == DRD_OK) s = drd_context_create(&(drd_context_desc){.device = o.device}, &ctx);
  if (s != DRD_OK) {
    fprintf(stderr, "drdiff bench: %s: %s\n", drd_status_string(s), drd_last_error());
    rc = 1;
    goto out;
  }

  bench_report rep = {.model = o.config ? model_desc : path, .steps = o.steps, .runs = runs, .n_runs = o.n_ns};
  char device[256] = "", driver[600] = "";
  const drd_device_caps *c = drd_context_caps(ctx);
  snprintf(device, sizeof device, "%s", c->name);
  snprintf(driver, sizeof driver, "%s (%s)", c->driver_name, c->driver_info);
  rep.device = device, rep.driver = driver;
  rep.params = drd_random_model_param_count(&mf->hp);
  rep.kmax = mf->hp.kmax;
  rep.profiled = o.profile && c->timestamps;
  rep.no_profile_why = !o.profile ? "--no-profile" : !c->timestamps ? "the device has no timestamps" : NULL;

  /* One N failing (out of device memory, say) leaves the others' results standing; after a
   * lost or hung device nothing more can run. */
  int stop = 0;
  for (uint32_t i = 0; i < o.n_ns; i++) {
    runs[i].N = o.ns[i];
    runs[i].setup_has_weights = i == 0;
    if (stop) {
      snprintf(runs[i].error, sizeof runs[i].error, "not run: the device was lost at an earlier N");
      continue;
    }
    if (!o.json) fprintf(stderr, "drdiff bench: N = %u ...\n", o.ns[i]);
    s = time_one(ctx, model, &mf->hp, &o, &runs[i]);
    if (s != DRD_OK) {
      snprintf(runs[i].error, sizeof runs[i].error, "%s: %s", drd_status_string(s), drd_last_error());
      fprintf(stderr, "drdiff bench: N = %u: %s\n", o.ns[i], runs[i].error);
      stop = s == DRD_ERROR_DEVICE_LOST || s == DRD_ERROR_TIMEOUT;
      rc = 1;
    }
  }
  /* the timed context carries no timestamps; the profiling one comes after it, so the device
   * holds one copy of the weights at a time */
  drd_context_destroy(ctx);
  ctx = NULL;
  if (rep.profiled && !stop) {
    s = drd_context_create(&(drd_context_desc){.device = o.device, .profile = 1}, &ctx);
    for (uint32_t i = 0; i < o.n_ns && s != DRD_ERROR_DEVICE_LOST && s != DRD_ERROR_TIMEOUT; i++) {
      if (runs[i].error[0]) continue;
      if (s == DRD_OK) s = profile_one(ctx, model, &o, &runs[i]);
      if (s != DRD_OK) {
        snprintf(runs[i].profile_error, sizeof runs[i].profile_error, "%s: %s", drd_status_string(s), drd_last_error());
        fprintf(stderr, "drdiff bench: N = %u: profiling: %s\n", o.ns[i], runs[i].profile_error);
        rc = 1;
        if (ctx) s = DRD_OK; /* the next N may still fit */
      }
    }
    drd_context_destroy(ctx);
  }
  if (o.json) bench_print_json(stdout, &rep);
  else bench_print_table(stdout, &rep);
out:
  for (uint32_t i = 0; runs && i < o.n_ns; i++) free(runs[i].step_s), free(runs[i].ops);
  free(runs);
  drd_model_file_close(mf);
  drd_model_destroy(model);
  return rc;
}
