/* CPU generation loop: DPM-Solver++ with prompt clamp and soft absorption. */
#include "clock.h"
#include "cpu_engine.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "philox.h"
#include "sas.h"
#include "solver.h"

static drd_status check_params(const drd_hparams *hp, const drd_gen_params *p,
                               const int32_t *prompt, uint32_t P, uint32_t G,
                               const int32_t *tokens_out) {
  if (!p) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "CPU generate: no parameters");
  if ((uint64_t)P + G == 0)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "CPU generate: prompt + new tokens must be >= 1 (got P=0, G=0)");
  if ((uint64_t)P + G > UINT32_MAX)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "CPU generate: P=%u + G=%u tokens is too long", P, G);
  if (P && !prompt) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "CPU generate: P=%u but no prompt ids", P);
  if (G && !tokens_out) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "CPU generate: no output array for %u tokens", G);
  for (uint32_t i = 0; i < P; i++)
    if (prompt[i] < 0 || (uint32_t)prompt[i] >= hp->V)
      return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "CPU generate: prompt id %d at position %u is outside the vocabulary [0, %u)",
                      prompt[i], i, hp->V);
  if (p->steps < 1) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "CPU generate: steps must be >= 1 (resolve defaults first)");
  if (p->order < 1 || p->order > 3)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "CPU generate: solver order %u (must be 1, 2 or 3)", p->order);
  if (p->grid != DRD_GRID_DEFAULT && p->grid != DRD_GRID_TIME_UNIFORM && p->grid != DRD_GRID_LOGSNR_UNIFORM)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "CPU generate: unknown time grid %d", (int)p->grid);
  if (!(p->sas_gamma >= 0.0f && p->sas_gamma <= 1.0f))
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "CPU generate: SAS gamma %g not in [0, 1]", (double)p->sas_gamma);
  if (p->sas_gamma > 0.0f && !(p->sas_temperature > 0.0f && isfinite(p->sas_temperature)))
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "CPU generate: SAS temperature %g must be > 0", (double)p->sas_temperature);
  if (isnan(p->sas_start)) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "CPU generate: SAS start is NaN");
  return DRD_OK;
}

/* DRDIFF_DUMP_STEPS=DIR (for the GPU parity test): the state each denoiser evaluation reads,
 * as DIR/step-NN.f32 (raw little-endian f32 [N, de]), and "NN u" lines in DIR/steps.txt. Two
 * engines that agree to f32 rounding can still part where a token's top-p expert choice is
 * within rounding of flipping at some step (then later steps pull the two far apart); with
 * the trajectory the test can tell such a near-tie from a bug. */
static drd_status dump_step(const char *dir, uint32_t i, double u, const float *x, size_t n_el) {
  char path[4096];
  snprintf(path, sizeof path, "%s/step-%02u.f32", dir, i);
  FILE *f = fopen(path, "wb");
  bool ok = f && fwrite(x, sizeof(float), n_el, f) == n_el;
  if (f && fclose(f) != 0) ok = false;
  snprintf(path, sizeof path, "%s/steps.txt", dir);
  FILE *t = ok ? fopen(path, i == 1 ? "w" : "a") : NULL;
  ok = t && fprintf(t, "%02u %.17g\n", i, u) > 0;
  if (t && fclose(t) != 0) ok = false;
  return ok ? DRD_OK : drd_fail(DRD_ERROR_IO, "DRDIFF_DUMP_STEPS: cannot write step %u into %s", i, dir);
}

drd_status drd_cpu_generate_model(const drd_cpu_model *cm, const drd_gen_params *p,
                                  const int32_t *prompt, uint32_t P, uint32_t G,
                                  int32_t *tokens_out, float *x_out) {
  if (!cm) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "CPU generate: no model");
  const drd_hparams *hp = &cm->hp;
  drd_status st = check_params(hp, p, prompt, P, G, tokens_out);
  if (st != DRD_OK) return st;
  /* Nothing to generate: no model evaluations (the prompt comes back unchanged). */
  if (G == 0) return DRD_OK;
  const uint32_t N = P + G;
  const size_t de = hp->de, n_el = (size_t)N * de;
  const double t0 = drd_now_s();

  drd_solver_plan plan;
  st = drd_solver_plan_make(hp->schedule, p->grid, p->steps, p->order, p->sas_gamma, p->sas_start, &plan);
  if (st != DRD_OK) return st;
  drd_cpu_forward *fw = NULL;
  float *x = malloc(sizeof(float) * n_el);         // [N, de] solver state
  float *hist[3] = {NULL, NULL, NULL};             // [N, de] each: D_{i-1}, D_{i-2}, D_{i-3}
  for (uint32_t k = 0; k < plan.history; k++) hist[k] = malloc(sizeof(float) * n_el);
  if (!x || !hist[0] || (plan.history > 1 && !hist[1]) || (plan.history > 2 && !hist[2])) {
    st = drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "CPU generate: state for N=%u", N);
    goto done;
  }
  if ((st = drd_cpu_forward_create(cm, N, &fw)) != DRD_OK) goto done;

  const char *dump_dir = getenv("DRDIFF_DUMP_STEPS");
  if (dump_dir && !*dump_dir) dump_dir = NULL;
  drd_philox_fill_normal(p->seed, 0, x, n_el);
  for (uint32_t i = 1; i <= plan.steps; i++) {
    const drd_solver_step *s = &plan.step[i - 1];
    /* The newest D goes to hist[0]; rotate the ring so the oldest buffer is reused. */
    float *d_new = hist[plan.history - 1];
    for (uint32_t k = plan.history - 1; k > 0; k--) hist[k] = hist[k - 1];
    hist[0] = d_new;

    for (uint32_t n = 0; n < P; n++) memcpy(x + n * de, cm->tok_embd + (size_t)prompt[n] * de, sizeof(float) * de);
    if (dump_dir && (st = dump_step(dump_dir, i, s->u_prev, x, n_el)) != DRD_OK) goto done;
    if ((st = drd_cpu_forward_run(fw, x, s->u_prev, d_new)) != DRD_OK) goto done;
    for (uint32_t n = 0; n < P; n++) memcpy(d_new + n * de, cm->tok_embd + (size_t)prompt[n] * de, sizeof(float) * de);
    if (s->sas && G > 0 &&
        (st = drd_sas_absorb(cm->tok_embd, &cm->tok_packed, hp->V, hp->de, d_new + (size_t)P * de, G,
                             p->sas_gamma, p->sas_temperature, cm->nthreads)) != DRD_OK)
      goto done;
    const float *const d[3] = {hist[0], hist[1], hist[2]};
    drd_solver_apply(s, x, d, n_el);
    if (p->progress && p->progress(i, plan.steps, drd_now_s() - t0, p->progress_user)) {
      st = drd_fail(DRD_ERROR_CANCELLED, "CPU generate: cancelled by the progress callback after step %u of %u",
                          i, plan.steps);
      goto done;
    }
  }
  if (G > 0 && (st = drd_sas_round(cm->tok_embd, &cm->tok_packed, hp->V, hp->de, x + (size_t)P * de, G,
                                   tokens_out, cm->nthreads)) != DRD_OK)
    goto done;
  if (x_out) memcpy(x_out, x, sizeof(float) * n_el);

done:
  drd_cpu_forward_destroy(fw);
  free(x);
  for (int k = 0; k < 3; k++) free(hist[k]);
  drd_solver_plan_free(&plan);
  return st;
}

drd_status drd_cpu_generate(const drd_model_file *m, const drd_gen_params *p, const int32_t *prompt,
                            uint32_t P, uint32_t G, int32_t *tokens_out) {
  if (!m) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "CPU generate: no model");
  drd_status st = check_params(&m->hp, p, prompt, P, G, tokens_out);
  if (st != DRD_OK) return st;
  drd_cpu_model *cm = NULL;
  if ((st = drd_cpu_model_create(m, 0, &cm)) != DRD_OK) return st;
  st = drd_cpu_generate_model(cm, p, prompt, P, G, tokens_out, NULL);
  drd_cpu_model_destroy(cm);
  return st;
}
