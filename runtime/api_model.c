/* drd_model: a loaded GGUF model file plus its tokenizer; immutable after creation, so one
 * model can serve many generations. */
#include <stdlib.h>

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
