/* drd_generate: resolves parameters against the model file's defaults, checks them,
 * tokenizes the prompt, runs the chosen backend and decodes the result. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "api_internal.h"
#include "vk_internal.h"
#include "cpu_engine.h"
#include "forward.h"
#include "engine.h"

void drd_gen_params_default(drd_gen_params *p) {
  memset(p, 0, sizeof *p);
  p->sas_gamma = -1.0f;
  p->sas_start = -1.0f;
}

/* Fills every "default" field from the model file and rejects impossible requests. */
static drd_status resolve(const drd_hparams *hp, const drd_gen_params *in, drd_gen_params *p) {
  *p = *in;
  if (!p->steps) p->steps = hp->steps;
  if (!p->order) p->order = 2;
  if (p->grid == DRD_GRID_DEFAULT) p->grid = DRD_GRID_TIME_UNIFORM;
  if (p->sas_gamma < 0) p->sas_gamma = hp->sas_gamma;
  if (p->sas_temperature <= 0) p->sas_temperature = hp->sas_temperature;
  if (p->sas_start < 0) p->sas_start = hp->sas_start;
  if (p->order > 3) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "solver order %u: must be 1, 2 or 3", p->order);
  if (p->grid != DRD_GRID_TIME_UNIFORM && p->grid != DRD_GRID_LOGSNR_UNIFORM)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "unknown grid %d", (int)p->grid);
  if (p->steps > 10000) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "%u steps: at most 10000", p->steps);
  if (!(p->sas_gamma >= 0 && p->sas_gamma <= 1))
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "SAS gamma %g: must be in [0, 1]", p->sas_gamma);
  if (!(p->sas_temperature > 0) || isinf(p->sas_temperature))
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "SAS temperature %g: must be > 0", p->sas_temperature);
  if (!(p->sas_start >= 0 && p->sas_start <= 1))
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "SAS start %g: must be in [0, 1]", p->sas_start);
  return DRD_OK;
}

/* Decoded text of the generated ids: stops at the first EOS; the tokenizer drops padding. */
static drd_status decode(const drd_model *m, const int32_t *ids, uint32_t n, char **text) {
  uint32_t len = n;
  int32_t eos = m->file->vocab.eos_id;
  for (uint32_t i = 0; i < n && eos >= 0; i++)
    if (ids[i] == eos) {
      len = i;
      break;
    }
  size_t bytes;
  return drd_tokenizer_decode(m->tokenizer, ids, len, text, &bytes);
}

drd_status drd_generate(drd_context *ctx, const drd_model *model, const drd_gen_params *params,
                        drd_gen_result *result) {
  if (!model || !params || !result) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "drd_generate: NULL argument");
  memset(result, 0, sizeof *result);
  const drd_hparams *hp = &model->file->hp;
  drd_gen_params p;
  /* the switches again: the CPU engine reads DRDIFF_THREADS, and needs no context that checked them */
  drd_status s = drd_env_check();
  if (s == DRD_OK) s = resolve(hp, params, &p);
  if (s != DRD_OK) return s;

  int32_t *prompt = NULL;
  size_t P = 0;
  if (p.prompt_ids) {
    P = p.prompt_len;
    for (size_t i = 0; i < P; i++)
      if (p.prompt_ids[i] < 0 || (uint32_t)p.prompt_ids[i] >= hp->V)
        return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "prompt id %d at position %zu is outside the vocabulary [0, %u)",
                        p.prompt_ids[i], i, hp->V);
  } else if (p.prompt_text && *p.prompt_text) {
    s = drd_tokenizer_encode(model->tokenizer, p.prompt_text, strlen(p.prompt_text), &prompt, &P);
    if (s != DRD_OK) return s;
  }
  const int32_t *prompt_ids = p.prompt_ids ? p.prompt_ids : prompt;
  if (p.new_tokens == 0) {
    s = drd_fail(DRD_ERROR_INVALID_ARGUMENT, "nothing to generate: 0 new tokens");
    goto done;
  }
  if ((uint64_t)P + p.new_tokens > DRD_MAX_TOKENS) {
    s = drd_fail(DRD_ERROR_INVALID_ARGUMENT, "%zu prompt + %u new tokens: the engine addresses at most %u", P,
                 p.new_tokens, DRD_MAX_TOKENS);
    goto done;
  }
  drd_backend backend = p.backend == DRD_BACKEND_DEFAULT ? (ctx ? DRD_BACKEND_VULKAN : DRD_BACKEND_CPU) : p.backend;
  if (backend == DRD_BACKEND_VULKAN && !ctx) {
    s = drd_fail(DRD_ERROR_INVALID_ARGUMENT, "the Vulkan backend needs a drd_context");
    goto done;
  }
  result->tokens = malloc((size_t)p.new_tokens * sizeof *result->tokens);
  if (!result->tokens) {
    s = drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    goto done;
  }
  double t0 = drd_now_s();
  if (backend == DRD_BACKEND_VULKAN) {
    drd_gpu_shape shape = {.P = (uint32_t)P, .G = p.new_tokens, .steps = p.steps, .order = p.order, .grid = p.grid,
                           .sas_gamma = p.sas_gamma, .sas_temperature = p.sas_temperature, .sas_start = p.sas_start,
                           .layers_per_submit = p.layers_per_submit};
    drd_gpu_session *session;
    ctx->cancel = 0;
    s = drd_engine_prepare(ctx, model, &shape, &session);
    double t1 = drd_now_s();
    if (s == DRD_OK) {
      s = drd_gpu_session_run(session, prompt_ids, p.seed, p.progress, p.progress_user, &ctx->cancel, result->tokens);
      if (s == DRD_OK && p.state_out) s = drd_gpu_session_state(session, p.state_out);
      result->device_bytes = drd_gpu_session_device_bytes(session);
    }
    result->seconds_setup = t1 - t0;
    result->seconds_per_step = (drd_now_s() - t1) / p.steps;
  } else {
    drd_cpu_model *cm = NULL;
    s = drd_cpu_model_create(model->file, 0, &cm);
    if (s == DRD_OK)
      s = drd_cpu_generate_model(cm, &p, prompt_ids, (uint32_t)P, p.new_tokens, result->tokens, p.state_out);
    drd_cpu_model_destroy(cm);
    result->seconds_per_step = (drd_now_s() - t0) / p.steps;
  }
  result->seconds_total = drd_now_s() - t0;
  if (s == DRD_OK) {
    result->n_tokens = p.new_tokens;
    s = decode(model, result->tokens, result->n_tokens, &result->text);
  }
done:
  free(prompt);
  if (s != DRD_OK) drd_gen_result_free(result);
  return s;
}

void drd_gen_result_free(drd_gen_result *r) {
  if (!r) return;
  free(r->tokens);
  free(r->text);
  memset(r, 0, sizeof *r);
}

size_t drd_gen_state_size(const drd_model *model, const drd_gen_params *params) {
  if (!model || !params) return 0;
  size_t P = 0;
  if (params->prompt_ids) P = params->prompt_len;
  else if (params->prompt_text && *params->prompt_text) {
    int32_t *ids = NULL;
    if (drd_tokenizer_encode(model->tokenizer, params->prompt_text, strlen(params->prompt_text), &ids, &P) != DRD_OK)
      return 0;
    free(ids);
  }
  return (P + params->new_tokens) * (size_t)model->file->hp.de;
}
