/* Noise schedules (SPEC section 7) and sampling time grids (SPEC section 8), in f64.
 * Scalar work done once per step on the host: f64 keeps schedule rounding out of the
 * solver coefficients. Formulas are written op for op like models/drdiff/schedule.py. */
#ifndef DRD_SCHEDULE_H
#define DRD_SCHEDULE_H

#include <stdint.h>

#include "drdiff.h"
#include "model_file.h"

#define DRD_U_MAX 1.0
#define DRD_U_MIN 1e-3

double drd_sched_alpha_bar(drd_schedule s, double u); /* clamped to [1e-6, 1-1e-6] for sqrt/cosine */
double drd_sched_alpha(drd_schedule s, double u);     /* sqrt(alpha_bar) */
double drd_sched_sigma(drd_schedule s, double u);     /* sqrt(1 - alpha_bar) */
double drd_sched_lambda(drd_schedule s, double u);    /* ln alpha - ln sigma */
/* Closed-form inverse of drd_sched_lambda on the unclamped part of the schedule (the
 * clamped ends are flat and have no inverse; the result is not clamped to [0, 1]). */
double drd_sched_lambda_inv(drd_schedule s, double lambda);

/* u[0..steps]: u[0] = u_max > ... > u[steps] = u_min, both end points exact. DRD_GRID_DEFAULT
 * means time_uniform; logsnr_uniform inverts lambda (closed form) for the interior points.
 * Fails (INVALID_ARGUMENT) for steps == 0, an unknown grid or schedule. */
drd_status drd_sched_grid(drd_schedule s, drd_grid grid, uint32_t steps, double u_max,
                          double u_min, double *u);

#endif
