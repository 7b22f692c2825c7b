/* What the public API objects hold (runtime/api_*.c). */
#ifndef DRD_API_INTERNAL_H
#define DRD_API_INTERNAL_H

#include "drdiff.h"
#include "log.h"
#include "model_file.h"
#include "tokenizer.h"

struct drd_model {
  drd_model_file *file;
  drd_tokenizer *tokenizer;
};

const drd_model_file *drd_model_file_of(const drd_model *m);

/* The longest sequence (prompt + new tokens) any backend accepts: positions are 32-bit in
 * the kernels, and beyond this even the O(N) buffers stop fitting any device we target. */
#define DRD_MAX_TOKENS (1u << 24)

#endif
