/* DPM-Solver++ plan (SPEC 8): the expanded per-step coefficients applied by
 * drd_solver_apply against SPEC's formulas written out literally (f64), over whole runs
 * with random D for every order, grid, schedule and a range of step counts; plus the
 * order schedule (warm-up, lower-order final steps when S < 10) and the SAS flags. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "schedule.h"
#include "solver.h"
#include "util_rand.h"

static int failures;

enum { NEL = 257 };

int main(void) {
  const uint64_t seed = drd_test_seed();
  drd_rng rng = {seed};
  const uint32_t steps_list[] = {1, 2, 3, 4, 5, 8, 9, 10, 12, 20};
  double worst = 0;
  for (int sch = 0; sch < 3; sch++)
    for (int grid = 1; grid <= 2; grid++)
      for (uint32_t order = 1; order <= 3; order++)
        for (size_t si = 0; si < sizeof steps_list / sizeof steps_list[0]; si++) {
          const uint32_t S = steps_list[si];
          drd_solver_plan plan;
          if (drd_solver_plan_make((drd_schedule)sch, (drd_grid)grid, S, order, 0.5f, 0.5f, &plan) != DRD_OK) {
            printf("FAIL plan sch=%d grid=%d order=%u S=%u\n", sch, grid, order, S);
            failures++;
            continue;
          }
          static float x[NEL], Dh[3][NEL];
          static double xr[NEL], Dr[3][NEL]; /* literal reference, f64 */
          drd_fill_uniform(&rng, x, NEL, -2, 2);
          for (int i = 0; i < NEL; i++) xr[i] = x[i];
          double hprev[2] = {0, 0};
          uint32_t max_o = 0;
          for (uint32_t i = 1; i <= S; i++) {
            const drd_solver_step *st = &plan.step[i - 1];
            /* expected order */
            uint32_t o = order < i ? order : i;
            if (S < 10 && o > S - i + 1) o = S - i + 1;
            if (st->order != o) {
              printf("FAIL order S=%u order=%u step %u: plan %u want %u\n", S, order, i, st->order, o);
              failures++;
            }
            if (o > max_o) max_o = o;
            const int want_sas = plan.u[i - 1] <= 0.5;
            if (st->sas != want_sas) {
              printf("FAIL SAS flag step %u u_prev=%g\n", i, plan.u[i - 1]);
              failures++;
            }
            /* new D: shift history, random values */
            for (int k = 2; k > 0; k--)
              for (int e = 0; e < NEL; e++) {
                Dh[k][e] = Dh[k - 1][e];
                Dr[k][e] = Dr[k - 1][e];
              }
            drd_fill_uniform(&rng, Dh[0], NEL, -1, 1);
            for (int e = 0; e < NEL; e++) Dr[0][e] = Dh[0][e];
            /* literal SPEC update */
            const drd_schedule s = (drd_schedule)sch;
            const double up = plan.u[i - 1], u = plan.u[i];
            const double h = drd_sched_lambda(s, u) - drd_sched_lambda(s, up);
            const double phi1 = expm1(-h), a = drd_sched_alpha(s, u);
            const double rho = drd_sched_sigma(s, u) / drd_sched_sigma(s, up);
            for (int e = 0; e < NEL; e++) {
              double nx;
              if (o == 1) {
                nx = rho * xr[e] - a * phi1 * Dr[0][e];
              } else if (o == 2) {
                const double r0 = hprev[0] / h;
                const double D1 = (Dr[0][e] - Dr[1][e]) / r0;
                nx = rho * xr[e] - a * phi1 * Dr[0][e] - 0.5 * a * phi1 * D1;
              } else {
                const double r0 = hprev[0] / h, r1 = hprev[1] / h;
                const double D10 = (Dr[0][e] - Dr[1][e]) / r0, D11 = (Dr[1][e] - Dr[2][e]) / r1;
                const double D1 = D10 + r0 / (r0 + r1) * (D10 - D11), D2 = (D10 - D11) / (r0 + r1);
                const double phi2 = phi1 / h + 1, phi3 = phi2 / h - 0.5;
                nx = rho * xr[e] - a * phi1 * Dr[0][e] + a * phi2 * D1 - a * phi3 * D2;
              }
              xr[e] = nx;
            }
            hprev[1] = hprev[0];
            hprev[0] = h;
            const float *const d[3] = {Dh[0], Dh[1], Dh[2]};
            drd_solver_apply(st, x, d, NEL);
          }
          if (plan.history != max_o) {
            printf("FAIL history %u, max order used %u (S=%u order=%u)\n", plan.history, max_o, S, order);
            failures++;
          }
          double num = 0, den = 1e-30;
          for (int e = 0; e < NEL; e++) {
            num = fmax(num, fabs(x[e] - xr[e]));
            den = fmax(den, fabs(xr[e]));
          }
          const double rel = num / den;
          if (!(rel < 1e-5)) {
            printf("FAIL sch=%d grid=%d order=%u S=%u: rel error %.3g vs the literal formulas\n", sch, grid, order, S, rel);
            failures++;
          }
          if (rel > worst) worst = rel;
          drd_solver_plan_free(&plan);
        }
  drd_solver_plan plan;
  if (drd_solver_plan_make(DRD_SCHEDULE_SQRT, DRD_GRID_TIME_UNIFORM, 0, 2, 0, 0, &plan) != DRD_ERROR_INVALID_ARGUMENT ||
      drd_solver_plan_make(DRD_SCHEDULE_SQRT, DRD_GRID_TIME_UNIFORM, 5, 4, 0, 0, &plan) != DRD_ERROR_INVALID_ARGUMENT ||
      drd_solver_plan_make(DRD_SCHEDULE_SQRT, DRD_GRID_TIME_UNIFORM, 5, 0, 0, 0, &plan) != DRD_ERROR_INVALID_ARGUMENT) {
    printf("FAIL bad steps / order accepted\n");
    failures++;
  }
  /* gamma = 0: never SAS */
  drd_solver_plan_make(DRD_SCHEDULE_SQRT, DRD_GRID_TIME_UNIFORM, 8, 2, 0.0f, 1.0f, &plan);
  for (uint32_t i = 0; i < 8; i++)
    if (plan.step[i].sas) {
      printf("FAIL SAS flagged with gamma 0\n");
      failures++;
    }
  drd_solver_plan_free(&plan);
  if (failures) {
    printf("test_host_solver: %d failure(s), seed %llu\n", failures, (unsigned long long)seed);
    return 1;
  }
  printf("test_host_solver: ok (worst rel error vs literal SPEC formulas %.2e)\n", worst);
  return 0;
}
