/* Byte-level BPE tokenizer (SPEC section 2), bit-identical to models/drdiff/tokenizer.py.
 * The rules (byte classes, pre-tokenizer, merge order, special tokens) are written down in
 * docs/tokenizer.md. A tokenizer is immutable after creation, so several threads may encode
 * and decode with one tokenizer at the same time. */
#ifndef DRD_TOKENIZER_H
#define DRD_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "drdiff.h"
#include "model_file.h"

typedef struct drd_tokenizer drd_tokenizer;

/* Builds the lookup tables from a vocabulary (copied: v may be freed afterwards). Rejects with
 * DRD_ERROR_BAD_MODEL, naming the token or merge: an empty, duplicate or non byte-unicode token,
 * a missing single-byte token, a special id out of range or equal to a byte token, a merge
 * that is not "left right", names an unknown or special token, repeats an earlier pair, or
 * whose result is not a (non-special) token. */
drd_status drd_tokenizer_create(const drd_vocab *v, drd_tokenizer **out);
/* NULL is a no-op. */
void drd_tokenizer_destroy(drd_tokenizer *t);

/* Encodes len raw bytes (any bytes, not only UTF-8). On success *ids is a malloc'd array of
 * *n_ids ids (never NULL, even for empty input; caller frees it with free()). Never produces
 * a special token. A single pre-tokenizer piece longer than 2^30 bytes is refused with
 * DRD_ERROR_INVALID_ARGUMENT. */
drd_status drd_tokenizer_encode(const drd_tokenizer *t, const char *bytes, size_t len,
                                int32_t **ids, size_t *n_ids);
/* Concatenates the raw bytes of the tokens; special tokens (bos, eos, pad) contribute nothing.
 * *bytes is malloc'd, NUL-terminated (not counted in *len); caller frees it with free().
 * An id outside [0, V) gives DRD_ERROR_INVALID_ARGUMENT. */
drd_status drd_tokenizer_decode(const drd_tokenizer *t, const int32_t *ids, size_t n,
                                char **bytes, size_t *len);

/* Number of tokens (V). */
uint32_t drd_tokenizer_vocab_size(const drd_tokenizer *t);

#endif
