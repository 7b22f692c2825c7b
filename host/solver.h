/* DPM-Solver++ (multistep, data prediction), orders 1-3, as SPEC section 8 defines it.
 *
 * The host computes, once per generation, a plan of per-step coefficients in f64. Every
 * update is written as one linear combination
 *     x <- cx * x + cd[0] * D_{i-1} + cd[1] * D_{i-2} + cd[2] * D_{i-3}
 * (the differences D1, D2 of SPEC expanded), so the CPU engine and the GPU kernel apply
 * exactly the same numbers: the GPU uploads the f32 copies cx_f32 / cd_f32. */
#ifndef DRD_SOLVER_H
#define DRD_SOLVER_H

#include <stddef.h>
#include <stdint.h>

#include "drdiff.h"
#include "model_file.h"

typedef struct drd_solver_step {
  double u_prev;   /* u_{i-1}: the model is evaluated here */
  double u;        /* u_i: the state after the step lives here */
  double h;        /* lambda(u_i) - lambda(u_{i-1}) */
  uint32_t order;  /* o after the min(order, i) and short-schedule rules */
  int sas;         /* 1: apply soft absorption to D (gamma > 0 and u_prev <= us) */
  double cx;       /* multiplies x */
  double cd[3];    /* multiply D_{i-1}, D_{i-2}, D_{i-3}; unused ones are 0 */
  float cx_f32;    /* the same rounded to f32, for the GPU */
  float cd_f32[3];
} drd_solver_step;

typedef struct drd_solver_plan {
  uint32_t steps;        /* S */
  uint32_t history;      /* D buffers the plan needs: max over steps of order (1..3) */
  double *u;             /* [S + 1] the time grid */
  drd_solver_step *step; /* [S], step[i-1] is SPEC's step i */
} drd_solver_plan;

/* Builds the plan. steps >= 1, order 1..3, grid TIME_UNIFORM / LOGSNR_UNIFORM (DEFAULT =
 * time uniform); SAS is flagged for steps with sas_gamma > 0 and u_{i-1} <= sas_start
 * (compared in f64). Free with drd_solver_plan_free (also after a failure). */
drd_status drd_solver_plan_make(drd_schedule schedule, drd_grid grid, uint32_t steps,
                                uint32_t order, float sas_gamma, float sas_start,
                                drd_solver_plan *out);
void drd_solver_plan_free(drd_solver_plan *plan);

/* One update on n elements: x <- cx*x + sum_k cd[k]*d[k] for k < st->order, evaluated in
 * f64 and rounded once to f32. d[0] = D_{i-1}, d[1] = D_{i-2}, d[2] = D_{i-3}: [n] f32 each
 * (entries past the step's order are not read and may be NULL). */
void drd_solver_apply(const drd_solver_step *st, float *x, const float *const d[3], size_t n);

#endif
