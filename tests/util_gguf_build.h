/* Test helper: an in-memory GGUF v3 writer, and valid DrDiff model files built from it (random
 * weights, a small valid GPT-2-style byte-level BPE vocabulary). Tests that need malformed
 * files edit a builder (replace or remove keys and tensors) and then patch the bytes at the
 * offsets the builder reports for every field it wrote. */
#ifndef DRD_UTIL_GGUF_BUILD_H
#define DRD_UTIL_GGUF_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "model_file.h"

typedef struct drd_gguf_builder drd_gguf_builder;

drd_gguf_builder *drd_gguf_builder_create(void);
void drd_gguf_builder_destroy(drd_gguf_builder *b);

/* Key/values. A set_* of an existing key replaces its value in place (the key keeps its
 * position); otherwise it is appended. All return 0, or -1 when out of memory (the builder
 * then stays failed and drd_gguf_builder_write fails too). */
int drd_gguf_set_u32(drd_gguf_builder *b, const char *key, uint32_t v);
int drd_gguf_set_i32(drd_gguf_builder *b, const char *key, int32_t v);
int drd_gguf_set_u64(drd_gguf_builder *b, const char *key, uint64_t v);
int drd_gguf_set_f32(drd_gguf_builder *b, const char *key, float v);
int drd_gguf_set_bool(drd_gguf_builder *b, const char *key, int v);
int drd_gguf_set_str(drd_gguf_builder *b, const char *key, const char *s);
int drd_gguf_set_u32_array(drd_gguf_builder *b, const char *key, const uint32_t *v, size_t n);
int drd_gguf_set_f32_array(drd_gguf_builder *b, const char *key, const float *v, size_t n);
int drd_gguf_set_str_array(drd_gguf_builder *b, const char *key, const char *const *v, size_t n);
/* Any value type with the value bytes already encoded (everything after the u32 type). */
int drd_gguf_set_raw(drd_gguf_builder *b, const char *key, uint32_t type, const void *value,
                     size_t nbytes);
/* Removes the key or tensor of that name; 0 if there was one, -1 if not. */
int drd_gguf_remove_kv(drd_gguf_builder *b, const char *key);
int drd_gguf_remove_tensor(drd_gguf_builder *b, const char *name);

/* Tensors, appended in call order (an existing name is replaced in place). The raw form takes
 * GGUF's ne (fastest-first) and encoded bytes, unchecked, so tests can write nonsense. */
int drd_gguf_add_tensor_raw(drd_gguf_builder *b, const char *name, uint32_t type, uint32_t n_dims,
                            const uint64_t *ne, const void *data, size_t nbytes);
/* The checked form takes SPEC's logical shape (rows first) and f32 values, which it converts
 * to type (f16/bf16 round to nearest even; q8_0 needs the last dimension a multiple of 32). */
int drd_gguf_add_tensor_f32(drd_gguf_builder *b, const char *name, drd_dtype type, uint32_t ndim,
                            const uint64_t *shape, const float *values);
/* The encoded bytes of a tensor as it will be written, and for tensors added with
 * drd_gguf_add_tensor_f32 the f32 values they came from (else NULL). */
const void *drd_gguf_tensor_bytes(const drd_gguf_builder *b, const char *name, size_t *nbytes);
const float *drd_gguf_tensor_source(const drd_gguf_builder *b, const char *name);

/* Serializes: header, key/values and tensor infos in insertion order, then the data section,
 * every tensor aligned to general.alignment (if set as a u32 power of two, else 32). *out is
 * malloc'd; free() it. Returns 0, or -1 when out of memory. */
int drd_gguf_builder_write(drd_gguf_builder *b, uint8_t **out, size_t *size);

/* Where the last drd_gguf_builder_write put each field (byte offsets into its output). */
typedef struct drd_gguf_kv_layout {
  size_t key_len;   /* u64 key length, then the key bytes */
  size_t type;      /* u32 value type */
  size_t value;     /* the value (for arrays: u32 element type, u64 count, elements) */
  size_t end;       /* first byte after the value */
} drd_gguf_kv_layout;
typedef struct drd_gguf_tensor_layout {
  size_t name_len;  /* u64 name length, then the name bytes */
  size_t n_dims;    /* u32 */
  size_t ne;        /* n_dims u64 */
  size_t type;      /* u32 */
  size_t offset;    /* u64, relative to the data section */
  size_t data;      /* absolute offset of the tensor's bytes */
} drd_gguf_tensor_layout;
#define DRD_GGUF_HDR_TENSOR_COUNT 8 /* u64 */
#define DRD_GGUF_HDR_KV_COUNT 16    /* u64 */
int drd_gguf_builder_kv_layout(const drd_gguf_builder *b, const char *key, drd_gguf_kv_layout *l);
int drd_gguf_builder_tensor_layout(const drd_gguf_builder *b, const char *name,
                                   drd_gguf_tensor_layout *l);
size_t drd_gguf_builder_data_start(const drd_gguf_builder *b);
size_t drd_gguf_builder_kv_count(const drd_gguf_builder *b);
size_t drd_gguf_builder_tensor_count(const drd_gguf_builder *b);

/* ------------------------------------------------------------------ DrDiff test models */

/* SPEC section 10's `tiny` configuration. */
void drd_test_tiny_hparams(drd_hparams *hp);
/* A smaller valid configuration (V = 260, d = 16, one layer, two experts) whose file is a
 * few KiB: for exhaustive truncation tests and fuzz seeds. */
void drd_test_small_hparams(drd_hparams *hp);

typedef struct drd_test_model_desc {
  const drd_hparams *hp; /* NULL: tiny. Not validated: tests build inconsistent files too. */
  uint64_t seed;         /* weights (the vocabulary does not depend on it) */
  /* Type of every matrix (norms and biases are always f32). F32 by default; for Q8_0, a
   * matrix whose rows are not a multiple of 32 long is written as F16 instead. */
  drd_dtype matrix_type;
  int mixed_types;       /* non-zero: cycle f32, f16, q8_0, bf16 over the matrices */
  int no_special_tokens; /* non-zero: no bos/eos/padding keys */
} drd_test_model_desc;

/* A builder holding a complete, valid (for valid hparams) model: every key of SPEC section 2,
 * the tokenizer keys and every tensor of section 3 with random values (embeddings in
 * [-1, 1], matrices in +-1/sqrt(fan_in), norms near 1, biases near 0). NULL on failure. */
drd_gguf_builder *drd_test_model_builder(const drd_test_model_desc *desc);
/* Convenience: builds and serializes (free() *out), or writes a file. 0 on success. */
int drd_test_model_bytes(const drd_test_model_desc *desc, uint8_t **out, size_t *size);
int drd_test_model_write_file(const drd_test_model_desc *desc, const char *path);
/* Writes the model to a new file /tmp/drdiff-<tag>-XXXXXX (its name into path, len bytes);
 * 0 on success, else -1 with a message on stderr. The caller removes the file. */
int drd_test_model_temp_file(const drd_test_model_desc *desc, const char *tag, char *path, size_t len);

/* The test vocabulary of V tokens (NULL beyond what it can make: about 37000).
 * For V >= 259: ids 0..255 are GPT-2's byte symbols in byte order (byte 32 is "Ġ"), then
 * V - 259 tokens made by *n_merges merges ("Ġt he" style, common English pieces first),
 * then "<|bos|>", "<|endoftext|>" (eos) and "<|pad|>" as the last three ids. For V < 259:
 * the first V byte symbols, no merges, no special tokens. Free with drd_test_vocab_free. */
typedef struct drd_test_vocab {
  uint32_t n_tokens, n_merges;
  char **tokens, **merges;
  int32_t bos_id, eos_id, pad_id; /* -1 when absent */
} drd_test_vocab;
drd_test_vocab *drd_test_vocab_create(uint32_t V);
void drd_test_vocab_free(drd_test_vocab *v);

#endif
