/* drd_model: a loaded GGUF model file plus its tokenizer; immutable after creation, so one
 * model can serve many generations. Also what callers may read of it: its hyperparameters
 * and parameter count, and its tokenizer in both directions. */
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

drd_status drd_model_create(const drd_model_desc *desc, drd_model **out) {
  if (!out) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "drd_model_create: out is NULL");
  *out = NULL;
  if (!desc || !desc->path || !*desc->path)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "drd_model_create: no model path given");
  drd_model *m = calloc(1, sizeof *m);
  if (!m) return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  drd_status s = drd_model_file_open(desc->path, &m->file);
  if (s == DRD_OK) s = drd_tokenizer_create(&m->file->vocab, &m->tokenizer);
  if (s != DRD_OK) {
    drd_model_destroy(m);
    return s;
  }
  *out = m;
  return DRD_OK;
}

void drd_model_destroy(drd_model *m) {
  if (!m) return;
  drd_tokenizer_destroy(m->tokenizer);
  drd_model_file_close(m->file);
  free(m);
}

const drd_model_file *drd_model_file_of(const drd_model *m) { return m ? m->file : NULL; }

static uint64_t elements(const drd_tensor_view *t) { return t->n_elements; }

drd_status drd_model_get_info(const drd_model *m, drd_model_info *out) {
  if (!m || !out) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "drd_model_get_info: model or out is NULL");
  const drd_hparams *hp = &m->file->hp;
  const drd_model_tensors *t = &m->file->t;
  uint64_t params = elements(&t->token_embd) + elements(&t->in_proj_w) + elements(&t->in_proj_b) +
                    elements(&t->time_mlp0_w) + elements(&t->time_mlp0_b) + elements(&t->time_mlp2_w) +
                    elements(&t->time_mlp2_b) + elements(&t->output_norm) + elements(&t->out_proj_w) +
                    elements(&t->out_proj_b);
  for (uint32_t l = 0; l < hp->L; l++) {
    const drd_layer_tensors *y = &t->layers[l];
    params += elements(&y->attn_norm) + elements(&y->attn_q) + elements(&y->attn_k) + elements(&y->attn_v) +
              elements(&y->attn_output) + elements(&y->ffn_norm) + elements(&y->ffn_gate_inp) +
              elements(&y->ffn_gate_exps) + elements(&y->ffn_up_exps) + elements(&y->ffn_down_exps);
  }
  *out = (drd_model_info){.vocab_size = hp->V, .embed_dim = hp->de, .model_dim = hp->d, .layers = hp->L,
                          .heads = hp->H, .experts = hp->E, .experts_max = hp->kmax,
                          .context_length = hp->context_length, .max_tokens = DRD_MAX_TOKENS,
                          .default_steps = hp->steps, .parameters = params, .bos_id = m->file->vocab.bos_id,
                          .eos_id = m->file->vocab.eos_id, .pad_id = m->file->vocab.pad_id};
  return DRD_OK;
}

drd_status drd_tokenize(const drd_model *m, const char *text, size_t len, int32_t *ids, uint32_t max_ids,
                        uint32_t *n_ids) {
  if (!m || !n_ids || (len && !text) || (max_ids && !ids))
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "drd_tokenize: model, n_ids, text (len %zu) or ids (max %u) is NULL",
                    len, max_ids);
  *n_ids = 0;
  int32_t *all = NULL;
  size_t n = 0;
  drd_status s = drd_tokenizer_encode(m->tokenizer, len ? text : "", len, &all, &n);
  if (s != DRD_OK) return s;
  if (n > UINT32_MAX) {
    free(all);
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "drd_tokenize: %zu bytes make %zu tokens, more than a count holds",
                    len, n);
  }
  if (max_ids) memcpy(ids, all, (n < max_ids ? n : max_ids) * sizeof *all);
  free(all);
  *n_ids = (uint32_t)n;
  return DRD_OK;
}

drd_status drd_detokenize(const drd_model *m, const int32_t *ids, uint32_t n_ids, char *text, size_t max_bytes,
                          size_t *n_bytes) {
  if (!m || !n_bytes || (n_ids && !ids) || (max_bytes && !text))
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT,
                    "drd_detokenize: model, n_bytes, ids (%u of them) or text (max %zu bytes) is NULL", n_ids,
                    max_bytes);
  *n_bytes = 0;
  char *all = NULL;
  size_t n = 0;
  drd_status s = drd_tokenizer_decode(m->tokenizer, ids, n_ids, &all, &n);
  if (s != DRD_OK) return s;
  if (max_bytes) {
    size_t k = n < max_bytes - 1 ? n : max_bytes - 1;
    memcpy(text, all, k);
    text[k] = '\0';
  }
  free(all);
  *n_bytes = n;
  return DRD_OK;
}
