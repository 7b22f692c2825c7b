/* The denoiser x0_hat = f(x, u) of SPEC section 4 on the CPU, in f32 storage with f64
 * accumulation: the oracle the Vulkan engine is checked against.
 *
 * drd_cpu_model holds the weights, dequantized once to f32 and packed for the GEMM;
 * drd_cpu_forward holds the activations and the HSA plan for one sequence length N. */
#ifndef DRD_FORWARD_H
#define DRD_FORWARD_H

#include <stdint.h>

#include "drdiff.h"
#include "model_file.h"
#include "ref_ops.h"

typedef struct drd_cpu_layer {
  float *attn_norm, *ffn_norm;   /* [d] f32 each */
  drd_ref_packed wq, wk, wv, wo; /* [d, d] */
  drd_ref_packed router;         /* [E, d] */
  drd_ref_packed *gate, *up;     /* E entries, [dff, d] each */
  drd_ref_packed *down;          /* E entries, [d, dff] each */
} drd_cpu_layer;

typedef struct drd_cpu_model {
  drd_hparams hp;
  uint32_t nthreads;             /* fixed at creation: per-thread scratch is sized by it */
  float *tok_embd;               /* [V, de] f32 (prompt clamp, SAS values) */
  drd_ref_packed tok_packed;     /* [V, de] (SAS and rounding logits) */
  drd_ref_packed in_proj;        /* [d, de] */
  float *in_proj_b;              /* [d] */
  drd_ref_packed time0, time2;   /* [d, dt], [d, d] */
  float *time0_b, *time2_b;      /* [d], [d] */
  drd_cpu_layer *layers;         /* [L] */
  float *out_norm;               /* [d] */
  drd_ref_packed out_proj;       /* [de, d] */
  float *out_proj_b;             /* [de] */
} drd_cpu_model;

/* Dequantizes and packs every weight (about 4 bytes per parameter). Threads: nthreads, or
 * drd_ref_threads() when 0. BAD_MODEL if hyperparameters or tensor sizes are inconsistent. */
drd_status drd_cpu_model_create(const drd_model_file *m, uint32_t nthreads, drd_cpu_model **out);
void drd_cpu_model_destroy(drd_cpu_model *cm);

typedef struct drd_cpu_forward drd_cpu_forward;

/* Activation buffers and the HSA plan for sequences of N tokens. */
drd_status drd_cpu_forward_create(const drd_cpu_model *cm, uint32_t N, drd_cpu_forward **out);
void drd_cpu_forward_destroy(drd_cpu_forward *fw);
/* out = f(x, u); x, out: [N, de] f32 (they may not alias). */
drd_status drd_cpu_forward_run(drd_cpu_forward *fw, const float *x, double u, float *out);

/* The sinusoidal time embedding input s of SPEC 4.1 for u: [dt] f32 (f64 math). */
void drd_cpu_time_features(uint32_t dt, double u, float Ts, float *s);

/* How many experts each token used in layer l during the last run: [N] values in 1..kmax
 * (for tests and statistics). NULL if l >= L. */
const uint8_t *drd_cpu_forward_route_counts(const drd_cpu_forward *fw, uint32_t l);

#endif
