/* DPM-Solver++ coefficient plan and update. */
#include "solver.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "schedule.h"

void drd_solver_plan_free(drd_solver_plan *plan) {
  if (!plan) return;
  free(plan->u);
  free(plan->step);
  memset(plan, 0, sizeof *plan);
}

drd_status drd_solver_plan_make(drd_schedule schedule, drd_grid grid, uint32_t steps,
                                uint32_t order, float sas_gamma, float sas_start,
                                drd_solver_plan *out) {
  memset(out, 0, sizeof *out);
  if (steps == 0) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "solver: steps must be >= 1");
  if (order < 1 || order > 3)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "solver: order must be 1, 2 or 3 (got %u)", order);
  out->u = malloc(sizeof(double) * ((size_t)steps + 1));
  out->step = calloc(steps, sizeof(drd_solver_step));
  if (!out->u || !out->step) {
    drd_solver_plan_free(out);
    return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "solver: plan for %u steps", steps);
  }
  out->steps = steps;
  drd_status st = drd_sched_grid(schedule, grid, steps, DRD_U_MAX, DRD_U_MIN, out->u);
  if (st != DRD_OK) {
    drd_solver_plan_free(out);
    return st;
  }
  double h_prev[2] = {0, 0}; /* h_{i-1}, h_{i-2} */
  out->history = 1;
  for (uint32_t i = 1; i <= steps; i++) {
    drd_solver_step *s = &out->step[i - 1];
    const double up = out->u[i - 1], u = out->u[i];
    const double h = drd_sched_lambda(schedule, u) - drd_sched_lambda(schedule, up);
    const double phi1 = expm1(-h);
    const double a = drd_sched_alpha(schedule, u);
    const double rho = drd_sched_sigma(schedule, u) / drd_sched_sigma(schedule, up);
    uint32_t o = order < i ? order : i;
    if (steps < 10 && o > steps - i + 1) o = steps - i + 1; /* lower-order final steps */
    s->u_prev = up;
    s->u = u;
    s->h = h;
    s->order = o;
    s->sas = sas_gamma > 0.0f && up <= (double)sas_start;
    s->cx = rho;
    if (o == 1) {
      /* x <- rho x - a phi1 D0 */
      s->cd[0] = -a * phi1;
    } else if (o == 2) {
      /* D1 = (D0 - D1')/r0; x <- rho x - a phi1 D0 - 0.5 a phi1 D1 */
      const double r0 = h_prev[0] / h;
      const double c = 0.5 * a * phi1 / r0;
      s->cd[0] = -a * phi1 - c;
      s->cd[1] = c;
    } else {
      /* With A = D_{i-1}, B = D_{i-2}, C = D_{i-3}:
       *   D1_0 = (A - B)/r0, D1_1 = (B - C)/r1,
       *   D1 = D1_0 + r0/(r0+r1) (D1_0 - D1_1), D2 = (D1_0 - D1_1)/(r0+r1),
       *   x <- rho x - a phi1 A + a phi2 D1 - a phi3 D2.
       * D1 and D2 are linear in (A, B, C); collect each one's coefficient. */
      const double r0 = h_prev[0] / h, r1 = h_prev[1] / h;
      const double phi2 = phi1 / h + 1.0, phi3 = phi2 / h - 0.5;
      const double k = r0 / (r0 + r1), q = 1.0 / (r0 + r1);
      /* D1_0 = (A - B)/r0; D1_1 = (B - C)/r1 */
      const double d10[3] = {1.0 / r0, -1.0 / r0, 0.0};
      const double d11[3] = {0.0, 1.0 / r1, -1.0 / r1};
      for (int j = 0; j < 3; j++) {
        const double diff = d10[j] - d11[j];
        const double D1 = d10[j] + k * diff;
        const double D2 = q * diff;
        s->cd[j] = (j == 0 ? -a * phi1 : 0.0) + a * phi2 * D1 - a * phi3 * D2;
      }
    }
    s->cx_f32 = (float)s->cx;
    for (int j = 0; j < 3; j++) s->cd_f32[j] = (float)s->cd[j];
    if (o > out->history) out->history = o;
    h_prev[1] = h_prev[0];
    h_prev[0] = h;
  }
  return DRD_OK;
}

void drd_solver_apply(const drd_solver_step *st, float *x, const float *const d[3], size_t n) {
  const double cx = st->cx, c0 = st->cd[0], c1 = st->cd[1], c2 = st->cd[2];
  switch (st->order) {
  case 1:
    for (size_t i = 0; i < n; i++) x[i] = (float)(cx * x[i] + c0 * d[0][i]);
    break;
  case 2:
    for (size_t i = 0; i < n; i++) x[i] = (float)(cx * x[i] + c0 * d[0][i] + c1 * d[1][i]);
    break;
  default:
    for (size_t i = 0; i < n; i++)
      x[i] = (float)(cx * x[i] + c0 * d[0][i] + c1 * d[1][i] + c2 * d[2][i]);
    break;
  }
}
