/* drdiff bench, shared between its files: the measurement loop (drdiff_bench.c), the FLOP
 * count (drdiff_bench_flops.c) and the report (drdiff_bench_report.c). */
#ifndef DRDIFF_BENCH_H
#define DRDIFF_BENCH_H

#include <stdint.h>
#include <stdio.h>

#include "drdiff.h"
#include "model_file.h"

/* Analytic FLOPs of one generation of N tokens (no prompt); see bench_flops_count. */
typedef struct bench_flops {
  double step;        /* one denoiser evaluation f(x, u) */
  double sas;         /* what SAS absorption adds to a step where it is active */
  double round;       /* the final rounding, once per generation */
  uint32_t sas_steps; /* steps of the S-step generation with SAS active */
} bench_flops;

/* FLOPs for N tokens and an S-step generation with the model file's SAS settings (order 2,
 * time-uniform grid: what drdiff bench runs). OUT_OF_HOST_MEMORY when the HSA plan of N does
 * not fit. */
drd_status bench_flops_count(const drd_hparams *hp, uint32_t N, uint32_t steps, bench_flops *out);

/* Which of the steps of an S-step generation run SAS (flags[i] = 1; flags may be NULL) and how
 * many, from the solver plan the engine builds (order 2, time-uniform grid). */
drd_status bench_sas_steps(const drd_hparams *hp, uint32_t steps, uint8_t *flags, uint32_t *count);

/* What one N measured. */
typedef struct bench_run {
  uint32_t N;
  char error[512];         /* non-empty: this N failed and nothing else below holds */
  char profile_error[512]; /* non-empty: only the per-op breakdown failed */
  double setup_s;          /* the warm-up's seconds_setup */
  int setup_has_weights;   /* the first N's set-up also uploads weights and compiles pipelines */
  double *step_s;          /* [steps] wall seconds of every timed step */
  double step_ms_median;   /* median over the timed steps */
  double step_ms_plain;    /* median over the timed steps without SAS (all when none has it) */
  double step_ms_sas;      /* median over the timed steps with SAS absorption; 0 when none */
  uint32_t sas_steps_20;   /* steps of a 20-step generation with SAS */
  double gen_s;            /* the timed generation (steps denoising steps, no set-up) */
  double gen_s_20;         /* a 20-step generation: sas_steps_20 x step_ms_sas + the rest x
                            * step_ms_plain + the once-per-generation part of gen_s (with no
                            * SAS step timed, step_ms_plain for all 20: an underestimate) */
  double tokens_per_s;     /* N / gen_s_20 */
  double flops_per_step;   /* mean over the timed steps (SAS included where active) */
  double tflops;           /* FLOPs of the timed generation / gen_s, in 1e12 */
  uint64_t device_bytes;
  double host_cpu_ms_per_step; /* user + system time of this process from the end of the first
                                * timed step to the end of the last, / (steps - 1): the
                                * per-step cost alone (with one step: the whole generation) */
  double host_cpu_ms_once;     /* the rest of the generation's CPU time: what it costs once
                                * (the first step's submission, noise, rounding, read-back) */
  double host_thread_cpu_ms_per_step; /* host_cpu_ms_per_step of the generating thread alone
                                       * (submissions and waits, not the driver's threads);
                                       * -1 where unknown (one step, no RUSAGE_THREAD) */
  drd_profile_op *ops;     /* [n_ops] GPU time by op over the profiled steps, or NULL */
  uint32_t n_ops;
} bench_run;

typedef struct bench_report {
  const char *device, *driver, *model; /* model: path, or what random model was made */
  uint64_t params;         /* elements of every weight tensor (drd_random_model_param_count) */
  uint32_t steps;          /* timed (and profiled) steps per generation */
  uint32_t kmax;           /* experts per token the FLOP count assumes */
  int profiled;            /* 1: ops were measured */
  const char *no_profile_why; /* else why not */
  const bench_run *runs;
  uint32_t n_runs;
} bench_report;

void bench_print_table(FILE *f, const bench_report *r);
void bench_print_json(FILE *f, const bench_report *r);

#endif
