/* libFuzzer target for the GGUF reader and model loader (host/gguf.c, host/model_file.c).
 * The input is a whole file. A file that loads must be usable: every tensor converts to f32
 * and every vocabulary string is a C string, so the fuzzer also checks what the loader
 * promises to later code, not only that it does not crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "model_file.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(drd_log_level level, const char *msg, void *user) {
  (void)level, (void)msg, (void)user;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  drd_log_set(quiet, NULL, DRD_LOG_ERROR); /* almost every input fails; keep the output clean */
  return 0;
}

static void touch(const drd_tensor_view *v) {
  float buf[256];
  /* the first and the last elements: the view must lie inside the input */
  uint64_t n = v->n_elements < 256 ? v->n_elements : 256;
  drd_tensor_to_f32(v, 0, n, buf);
  drd_tensor_to_f32(v, v->n_elements - n, n, buf);
  if (v->ndim < 1 || v->ndim > 4 || !v->name) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  drd_model_file *m = NULL;
  drd_status st = drd_model_file_open_memory(data, size, &m);
  if (st != DRD_OK) {
    if (m || !*drd_last_error()) abort(); /* a failure must say why and return nothing */
    return 0;
  }
  const drd_model_tensors *t = &m->t;
  touch(&t->token_embd);
  touch(&t->in_proj_w), touch(&t->in_proj_b);
  touch(&t->time_mlp0_w), touch(&t->time_mlp0_b);
  touch(&t->time_mlp2_w), touch(&t->time_mlp2_b);
  touch(&t->output_norm), touch(&t->out_proj_w), touch(&t->out_proj_b);
  for (uint32_t l = 0; l < m->hp.L; l++) {
    const drd_layer_tensors *ly = &t->layers[l];
    touch(&ly->attn_norm), touch(&ly->attn_q), touch(&ly->attn_k), touch(&ly->attn_v);
    touch(&ly->attn_output), touch(&ly->ffn_norm), touch(&ly->ffn_gate_inp);
    touch(&ly->ffn_gate_exps), touch(&ly->ffn_up_exps), touch(&ly->ffn_down_exps);
  }
  /* the promises of model_file.h that later code relies on */
  const drd_hparams *hp = &m->hp;
  if (hp->d % hp->H || hp->kmax < 1 || hp->kmax > hp->E || m->vocab.n_tokens != hp->V) abort();
  size_t total = 0;
  for (uint32_t i = 0; i < m->vocab.n_tokens; i++) total += strlen(m->vocab.tokens[i]);
  for (uint32_t i = 0; i < m->vocab.n_merges; i++) total += strlen(m->vocab.merges[i]);
  if (total > size) abort();
  if (m->vocab.bos_id >= (int32_t)hp->V || m->vocab.eos_id >= (int32_t)hp->V) abort();
  drd_model_file_close(m);
  return 0;
}
