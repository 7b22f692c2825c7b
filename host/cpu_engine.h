/* The whole generation (SPEC section 8) on the CPU: noise, prompt clamp, S denoiser
 * evaluations with SAS, DPM-Solver++ updates, rounding. The reference the Vulkan engine's
 * generations are compared with, token for token. */
#ifndef DRD_CPU_ENGINE_H
#define DRD_CPU_ENGINE_H

#include <stdint.h>

#include "drdiff.h"
#include "forward.h"
#include "model_file.h"

/* Runs a whole generation (SPEC 8). prompt ids [P], G new tokens; params fully resolved by the caller
   (steps >= 1, order 1..3, grid TIME_UNIFORM or LOGSNR_UNIFORM, sas_* set); writes G token ids.
   Dequantizes the weights for this call; use drd_cpu_generate_model to reuse them. p->progress
   is called after every step; its non-zero return stops with DRD_ERROR_CANCELLED. */
drd_status drd_cpu_generate(const drd_model_file *m, const drd_gen_params *p, const int32_t *prompt, uint32_t P, uint32_t G, int32_t *tokens_out);

/* The same with weights already loaded by drd_cpu_model_create. When x_out is not NULL it
 * receives the final state x before rounding, [P + G, de] f32 (for tests). */
drd_status drd_cpu_generate_model(const drd_cpu_model *cm, const drd_gen_params *p,
                                  const int32_t *prompt, uint32_t P, uint32_t G,
                                  int32_t *tokens_out, float *x_out);

#endif
