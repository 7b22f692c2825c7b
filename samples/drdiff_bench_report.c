/* drdiff bench: the results as a table for people or as one JSON object for scripts. */
#include "drdiff_bench.h"

#include "drdiff_cli.h"

static double ops_total_ns(const bench_run *r) {
  double all = 0;
  for (uint32_t i = 0; i < r->n_ops; i++) all += r->ops[i].total_ns;
  return all;
}

void bench_print_table(FILE *f, const bench_report *r) {
  fprintf(f, "device: %s, driver %s\n", r->device, r->driver);
  fprintf(f, "model: %s, %.2f M parameters; %u timed step%s per generation\n", r->model, r->params / 1e6, r->steps,
          r->steps == 1 ? "" : "s");
  fprintf(f, "FLOPs: GEMMs, attention over the visited HSA pairs, SAS; experts at kmax = %u per token (upper bound)\n\n",
          r->kmax);
  fprintf(f, "%8s %9s %9s %9s %10s %10s %10s %11s %8s %10s %11s %11s %11s\n", "N", "setup s", "step ms", "SAS ms",
          "gen s", "gen s 20", "tok/s", "GFLOP/step", "TFLOP/s", "device MiB", "CPU ms/step", "CPU ms once",
          "thread ms");
  for (uint32_t i = 0; i < r->n_runs; i++) {
    const bench_run *x = &r->runs[i];
    if (x->error[0]) {
      fprintf(f, "%8u  failed: %s\n", x->N, x->error);
      continue;
    }
    fprintf(f, "%8u %9.3f %9.3f %9.3f %10.4f %10.4f %10.1f %11.3f %8.4f %10.1f %11.2f %11.2f %11.3f\n", x->N,
            x->setup_s, x->step_ms_plain, x->step_ms_sas, x->gen_s, x->gen_s_20, x->tokens_per_s,
            x->flops_per_step * 1e-9, x->tflops, x->device_bytes / 1048576.0, x->host_cpu_ms_per_step,
            x->host_cpu_ms_once, x->host_thread_cpu_ms_per_step);
  }
  fprintf(f,
          "\nsetup s: the warm-up's set-up (the first N also uploads the weights and compiles pipelines);\n"
          "step ms: median of the %u timed steps without SAS; SAS ms: of those with SAS absorption (0: none\n"
          "timed); gen s: the timed generation; gen s 20: a 20-step generation from those two (as many SAS\n"
          "steps as its schedule has) + its once-per-generation part (noise, rounding, read-back); tok/s:\n"
          "N / gen s 20; CPU ms/step: user + system time of this process per step, from the timed\n"
          "generation's start to its last step's end; CPU ms once: the rest of it (on a CPU device\n"
          "both include the device's own work); thread ms: CPU ms/step of the thread that submits and\n"
          "waits alone (the rest is the driver's threads; -1: unknown).\n",
          r->steps);
  if (!r->profiled) {
    fprintf(f, "\nno per-op breakdown: %s\n", r->no_profile_why ? r->no_profile_why : "not measured");
    return;
  }
  for (uint32_t i = 0; i < r->n_runs; i++) {
    const bench_run *x = &r->runs[i];
    const double all = ops_total_ns(x);
    if (x->error[0]) continue;
    if (x->profile_error[0]) {
      fprintf(f, "\nGPU time per op, N = %u: not measured: %s\n", x->N, x->profile_error);
      continue;
    }
    fprintf(f, "\nGPU time per op, N = %u (timestamps over %u steps):\n  %-34s %10s %7s\n", x->N, r->steps, "op",
            "ms/step", "share");
    for (uint32_t k = 0; k < x->n_ops; k++)
      fprintf(f, "  %-34s %10.4f %6.1f%%\n", x->ops[k].name, x->ops[k].total_ns * 1e-6 / r->steps,
              all > 0 ? 100 * x->ops[k].total_ns / all : 0.0);
  }
}

void bench_print_json(FILE *f, const bench_report *r) {
  fprintf(f, "{\"device\": ");
  drdiff_json_string(f, r->device);
  fprintf(f, ", \"driver\": ");
  drdiff_json_string(f, r->driver);
  fprintf(f, ", \"model\": ");
  drdiff_json_string(f, r->model);
  fprintf(f, ", \"params\": %llu, \"steps\": %u, \"flops_experts_per_token\": %u, \"profiled\": %s, \"runs\": [",
          (unsigned long long)r->params, r->steps, r->kmax, r->profiled ? "true" : "false");
  for (uint32_t i = 0; i < r->n_runs; i++) {
    const bench_run *x = &r->runs[i];
    if (x->error[0]) {
      fprintf(f, "%s{\"N\": %u, \"error\": ", i ? ", " : "", x->N);
      drdiff_json_string(f, x->error);
      fprintf(f, "}");
      continue;
    }
    fprintf(f,
            "%s{\"N\": %u, \"setup_s\": %.6f, \"setup_includes_weights\": %s, \"step_ms_median\": %.6f, "
            "\"step_ms_all\": [",
            i ? ", " : "", x->N, x->setup_s, x->setup_has_weights ? "true" : "false", x->step_ms_median);
    for (uint32_t k = 0; k < r->steps; k++) fprintf(f, "%s%.6f", k ? ", " : "", 1e3 * x->step_s[k]);
    fprintf(f,
            "], \"step_ms_plain\": %.6f, \"step_ms_sas\": %.6f, \"sas_steps_20\": %u, \"gen_s\": %.6f, "
            "\"gen_s_20\": %.6f, \"tokens_per_s\": %.3f, \"flops_per_step\": %.6e, \"tflops\": %.6e, "
            "\"device_bytes\": %llu, \"host_cpu_ms_per_step\": %.4f, \"host_cpu_ms_once\": %.4f, "
            "\"host_thread_cpu_ms_per_step\": %.4f, \"ops\": [",
            x->step_ms_plain, x->step_ms_sas, x->sas_steps_20, x->gen_s, x->gen_s_20, x->tokens_per_s,
            x->flops_per_step, x->tflops, (unsigned long long)x->device_bytes, x->host_cpu_ms_per_step,
            x->host_cpu_ms_once, x->host_thread_cpu_ms_per_step);
    const double all = ops_total_ns(x);
    for (uint32_t k = 0; k < x->n_ops; k++) {
      fprintf(f, "%s{\"name\": ", k ? ", " : "");
      drdiff_json_string(f, x->ops[k].name);
      fprintf(f, ", \"count\": %llu, \"ms_per_step\": %.6f, \"share\": %.6f}", (unsigned long long)x->ops[k].count,
              x->ops[k].total_ns * 1e-6 / r->steps, all > 0 ? x->ops[k].total_ns / all : 0.0);
    }
    fprintf(f, "]");
    if (x->profile_error[0]) {
      fprintf(f, ", \"profile_error\": ");
      drdiff_json_string(f, x->profile_error);
    }
    fprintf(f, "}");
  }
  fprintf(f, "]}\n");
}
