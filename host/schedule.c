/* Noise schedules and time grids. */
#include "schedule.h"

#include <math.h>

#include "log.h"

#define CLAMP_LO 1e-6
#define CLAMP_HI (1.0 - 1e-6)
#define COS_S 0.008
#define PI 3.14159265358979323846

static double clampd(double v, double lo, double hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* c(u) = cos^2(pi/2 * (u + s) / (1 + s)) */
static double cos_c(double u) {
  const double c = cos(PI / 2 * (u + COS_S) / (1 + COS_S));
  return c * c;
}

double drd_sched_alpha_bar(drd_schedule s, double u) {
  switch (s) {
  case DRD_SCHEDULE_SQRT: return clampd(1.0 - sqrt(u + 1e-4), CLAMP_LO, CLAMP_HI);
  case DRD_SCHEDULE_COSINE: return clampd(cos_c(u) / cos_c(0.0), CLAMP_LO, CLAMP_HI);
  case DRD_SCHEDULE_LINEAR_LOGSNR: return 1.0 / (1.0 + exp(-(10.0 - 20.0 * u)));
  }
  return NAN;
}

double drd_sched_alpha(drd_schedule s, double u) { return sqrt(drd_sched_alpha_bar(s, u)); }

double drd_sched_sigma(drd_schedule s, double u) { return sqrt(1.0 - drd_sched_alpha_bar(s, u)); }

double drd_sched_lambda(drd_schedule s, double u) {
  const double ab = drd_sched_alpha_bar(s, u);
  return 0.5 * (log(ab) - log1p(-ab)); /* log1p: 1 - ab without cancellation near ab = 0 */
}

double drd_sched_lambda_inv(drd_schedule s, double lambda) {
  /* sigma^2 = 1 - alpha_bar = 1 / (1 + e^{2 lambda}), computed without cancellation */
  const double sigma2 = 1.0 / (1.0 + exp(2.0 * lambda));
  switch (s) {
  case DRD_SCHEDULE_SQRT: return sigma2 * sigma2 - 1e-4; /* 1 - ab = sqrt(u + 1e-4) */
  case DRD_SCHEDULE_COSINE: {
    const double c = sqrt((1.0 - sigma2) * cos_c(0.0));
    return acos(c) * 2 / PI * (1 + COS_S) - COS_S;
  }
  case DRD_SCHEDULE_LINEAR_LOGSNR: return (10.0 - 2.0 * lambda) / 20.0;
  }
  return NAN;
}

drd_status drd_sched_grid(drd_schedule s, drd_grid grid, uint32_t steps, double u_max,
                          double u_min, double *u) {
  if (steps == 0) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "time grid: steps must be >= 1");
  if (s != DRD_SCHEDULE_SQRT && s != DRD_SCHEDULE_COSINE && s != DRD_SCHEDULE_LINEAR_LOGSNR)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "time grid: unknown schedule %d", (int)s);
  /* Both grids pin the end points exactly: the clamped schedules are flat at their ends, so
   * inverting lambda would not give back u_max / u_min, and time_uniform's formula at i = S
   * is only u_min up to rounding. Interior points as models/drdiff/schedule.py. */
  if (grid == DRD_GRID_DEFAULT || grid == DRD_GRID_TIME_UNIFORM) {
    for (uint32_t i = 1; i < steps; i++) u[i] = u_max + (u_min - u_max) * i / steps;
  } else if (grid == DRD_GRID_LOGSNR_UNIFORM) {
    const double l0 = drd_sched_lambda(s, u_max), l1 = drd_sched_lambda(s, u_min);
    for (uint32_t i = 1; i < steps; i++) u[i] = drd_sched_lambda_inv(s, l0 + (l1 - l0) * i / steps);
  } else {
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "time grid: unknown grid %d", (int)grid);
  }
  u[0] = u_max;
  u[steps] = u_min;
  return DRD_OK;
}
