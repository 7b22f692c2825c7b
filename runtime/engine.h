/* The Vulkan generation engine: a model's weights on one device (drd_gpu_model) and, for one
 * generation shape, the activations, the HSA plan and the recorded command buffers of every
 * denoising step (drd_gpu_session). The whole loop runs on the GPU; the host only submits
 * steps, reports progress and reads back the final token ids. */
#ifndef DRD_ENGINE_H
#define DRD_ENGINE_H

#include "api_internal.h"
#include "ops.h"
#include "ops_attention.h"
#include "ops_des.h"
#include "ops_sampler.h"
#include "solver.h"

/* A weight tensor on the device: f32, or f16 when the file stores f16, or Q8_0 / bf16 as stored
 * for the layers' matrices when all of them are of that type (widened, to f16 or f32, at the
 * start of each layer);
 * other stored types are widened to f32 at upload, which is exact (engine_weights.c). */
typedef struct drd_gpu_tensor {
  drd_buffer buf;
  drd_dtype type; /* DRD_DTYPE_F32, DRD_DTYPE_F16, DRD_DTYPE_Q8_0 or DRD_DTYPE_BF16 */
} drd_gpu_tensor;

typedef struct drd_gpu_layer {
  drd_gpu_tensor attn_norm, ffn_norm;     /* [d] f32 */
  drd_gpu_tensor wq, wk, wv, wo;          /* [d, d] */
  drd_gpu_tensor router;                  /* [E, d] */
  drd_gpu_tensor gate, up;                /* [E, dff, d] */
  drd_gpu_tensor down;                    /* [E, d, dff] */
  drd_des_weights des;                    /* views of router/gate/up/down for the DES op */
} drd_gpu_layer;

typedef struct drd_gpu_model {
  drd_context *ctx;
  drd_hparams hp;
  drd_gpu_tensor tok_embd;                /* [V, de] */
  drd_gpu_tensor in_proj_w, in_proj_b;    /* [d, de], [d] f32 */
  drd_gpu_tensor time0_w, time0_b;        /* [d, dt], [d] */
  drd_gpu_tensor time2_w, time2_b;        /* [d, d], [d] */
  drd_gpu_layer *layers;                  /* [L] */
  drd_gpu_tensor out_norm;                /* [d] f32 */
  drd_gpu_tensor out_proj_w, out_proj_b;  /* [de, d], [de] f32 */
  uint64_t bytes;                         /* device bytes of the weights, as the allocator counts them */
  bool f16_products;                      /* the layers' products in f16 (the f16 engine): f16 matrices, or
                                           * Q8_0 / bf16 ones widened to f16 (engine_weights.c) */
} drd_gpu_model;

/* Fails with DRD_ERROR_OUT_OF_DEVICE_MEMORY before uploading anything where the weights would
 * pass the device's budget or the context's limit (drd_alloc_budget). */
drd_status drd_gpu_model_create(drd_context *ctx, const drd_model_file *m, drd_gpu_model **out);
void drd_gpu_model_destroy(drd_gpu_model *gm);

/* What a session is recorded for: changing any of these needs a new session; the seed and
 * the prompt's ids (same length) do not. */
typedef struct drd_gpu_shape {
  uint32_t P, G;            /* prompt and new tokens; N = P + G */
  uint32_t steps, order;
  drd_grid grid;
  float sas_gamma, sas_temperature, sas_start;
  uint32_t layers_per_submit; /* 0: one submission per step; k: at most k layers per submission */
} drd_gpu_shape;

typedef struct drd_gpu_session drd_gpu_session;

/* Fails with DRD_ERROR_OUT_OF_DEVICE_MEMORY, holding nothing, where the session's buffers
 * would pass the device's budget or the context's limit (drd_alloc_budget). */
drd_status drd_gpu_session_create(drd_gpu_model *gm, const drd_gpu_shape *shape, drd_gpu_session **out);
void drd_gpu_session_destroy(drd_gpu_session *s);
/* Runs one generation: prompt [P] ids, seed; writes G token ids. progress as in
 * drd_gen_params (non-zero return cancels); *cancel (may be NULL) is polled between steps. */
drd_status drd_gpu_session_run(drd_gpu_session *s, const int32_t *prompt, uint64_t seed,
                               int (*progress)(uint32_t, uint32_t, double, void *), void *user,
                               volatile int *cancel, int32_t *tokens_out);

/* One denoiser evaluation out = f(x, u) on the session's N rows (tests): x, out [N, de] f32.
 * Leaves the session ready for further runs. */
drd_status drd_gpu_session_forward(drd_gpu_session *s, const float *x, double u, float *out);

/* Downloads the state x of the last run (before rounding): [N, de] f32. */
drd_status drd_gpu_session_state(drd_gpu_session *s, float *out);

/* Device bytes of a session plus its model's weights. */
uint64_t drd_gpu_session_device_bytes(const drd_gpu_session *s);

/* The context keeps the weights of the last model it ran and the session of the last shape,
 * so repeated generations reuse both; a new model or shape replaces them (and frees the old
 * ones, so memory follows the current request, not the largest one seen). */
drd_status drd_engine_prepare(drd_context *ctx, const drd_model *model, const drd_gpu_shape *shape,
                              drd_gpu_session **out);
void drd_engine_release(drd_context *ctx);

#endif
