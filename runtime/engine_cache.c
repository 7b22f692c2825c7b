/* Per-context reuse of uploaded weights and recorded sessions (see engine.h). */
#include <stdlib.h>
#include <string.h>

#include "engine.h"

struct drd_engine_cache {
  const drd_model *model;  /* whose weights gm holds */
  drd_gpu_model *gm;
  drd_gpu_shape shape;     /* what session was recorded for */
  drd_gpu_session *session;
};

void drd_engine_release(drd_context *ctx) {
  struct drd_engine_cache *c = ctx->engine;
  if (!c) return;
  drd_gpu_session_destroy(c->session);
  drd_gpu_model_destroy(c->gm);
  free(c);
  ctx->engine = NULL;
}

static bool same_shape(const drd_gpu_shape *a, const drd_gpu_shape *b) {
  return a->P == b->P && a->G == b->G && a->steps == b->steps && a->order == b->order && a->grid == b->grid &&
         a->sas_gamma == b->sas_gamma && a->sas_temperature == b->sas_temperature && a->sas_start == b->sas_start &&
         a->layers_per_submit == b->layers_per_submit;
}

drd_status drd_engine_prepare(drd_context *ctx, const drd_model *model, const drd_gpu_shape *shape,
                              drd_gpu_session **out) {
  *out = NULL;
  struct drd_engine_cache *c = ctx->engine;
  if (c && c->model != model) {
    drd_engine_release(ctx);
    c = NULL;
  }
  if (!c) {
    c = calloc(1, sizeof *c);
    if (!c) return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    drd_status s = drd_gpu_model_create(ctx, drd_model_file_of(model), &c->gm);
    if (s != DRD_OK) {
      free(c);
      return s;
    }
    c->model = model;
    ctx->engine = c;
  }
  if (c->session && same_shape(&c->shape, shape)) {
    *out = c->session;
    return DRD_OK;
  }
  /* free the old session first: the new one may only fit without it */
  drd_gpu_session_destroy(c->session);
  c->session = NULL;
  drd_status s = drd_gpu_session_create(c->gm, shape, &c->session);
  if (s != DRD_OK) return s;
  c->shape = *shape;
  *out = c->session;
  return DRD_OK;
}
