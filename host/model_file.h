/* A DrDiff model as read from a GGUF file (SPEC sections 2-3): hyperparameters, tokenizer
 * vocabulary and the weight tensors, which point into the read-only mapping of the file.
 * Everything here is validated at load time, so later code may trust every field. */
#ifndef DRD_MODEL_FILE_H
#define DRD_MODEL_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drdiff.h"

/* GGUF tensor type numbers (the subset SPEC allows). */
typedef enum drd_dtype {
  DRD_DTYPE_F32 = 0,
  DRD_DTYPE_F16 = 1,
  DRD_DTYPE_Q8_0 = 8,
  DRD_DTYPE_BF16 = 30,
} drd_dtype;

typedef enum drd_schedule {
  DRD_SCHEDULE_SQRT = 0,
  DRD_SCHEDULE_COSINE = 1,
  DRD_SCHEDULE_LINEAR_LOGSNR = 2,
} drd_schedule;

typedef struct drd_hparams {
  uint32_t V, de, d, L, H, dt, E, dff, kmax;
  float route_p, rope_theta, norm_eps;
  uint32_t context_length;
  drd_schedule schedule;
  float time_scale;                  /* Ts */
  uint32_t B, N1, N2, N3;            /* HSA block size and mode thresholds */
  uint32_t window[3], dilation[3], hops[3], global[3]; /* per mode 1..3 at index 0..2 */
  uint32_t steps;                    /* default solver steps */
  float sas_gamma, sas_temperature, sas_start;
} drd_hparams;

/* One tensor; shape in SPEC's logical row-major order (shape[0] = rows), not GGUF's ne. */
typedef struct drd_tensor_view {
  const char *name;
  drd_dtype type;
  uint32_t ndim;
  uint64_t shape[4];
  uint64_t n_elements;
  const void *data; /* inside the file mapping */
  size_t nbytes;
} drd_tensor_view;

typedef struct drd_layer_tensors {
  drd_tensor_view attn_norm;               /* [d] f32 */
  drd_tensor_view attn_q, attn_k, attn_v;  /* [d, d] */
  drd_tensor_view attn_output;             /* [d, d] */
  drd_tensor_view ffn_norm;                /* [d] f32 */
  drd_tensor_view ffn_gate_inp;            /* [E, d] router */
  drd_tensor_view ffn_gate_exps;           /* [E, dff, d] */
  drd_tensor_view ffn_up_exps;             /* [E, dff, d] */
  drd_tensor_view ffn_down_exps;           /* [E, d, dff] */
} drd_layer_tensors;

typedef struct drd_model_tensors {
  drd_tensor_view token_embd;                  /* [V, de] */
  drd_tensor_view in_proj_w, in_proj_b;        /* [d, de], [d] */
  drd_tensor_view time_mlp0_w, time_mlp0_b;    /* [d, dt], [d] */
  drd_tensor_view time_mlp2_w, time_mlp2_b;    /* [d, d], [d] */
  drd_layer_tensors *layers;                   /* L entries */
  drd_tensor_view output_norm;                 /* [d] f32 */
  drd_tensor_view out_proj_w, out_proj_b;      /* [de, d], [de] */
} drd_model_tensors;

typedef struct drd_vocab {
  uint32_t n_tokens;
  char **tokens;        /* n_tokens NUL-terminated strings (GPT-2 byte-to-unicode form) */
  uint32_t n_merges;
  char **merges;        /* "left right" pairs in priority order */
  int32_t bos_id, eos_id, pad_id; /* -1 when absent */
} drd_vocab;

typedef struct drd_model_file {
  drd_hparams hp;
  drd_model_tensors t;
  drd_vocab vocab;
  /* private: the mapping and the GGUF index */
  void *priv;
} drd_model_file;

/* Opens, maps and validates a GGUF model file. On failure returns DRD_ERROR_IO or
 * DRD_ERROR_BAD_MODEL with drd_last_error() naming the key or tensor and what is wrong. */
drd_status drd_model_file_open(const char *path, drd_model_file **out);
/* The same from a buffer in memory (the fuzzers use it); the buffer must outlive the model. */
drd_status drd_model_file_open_memory(const void *data, size_t size, drd_model_file **out);
void drd_model_file_close(drd_model_file *m);

/* Converts n elements starting at element `first` of a tensor to f32. For Q8_0, `first`
 * and n need not be block-aligned. */
void drd_tensor_to_f32(const drd_tensor_view *t, uint64_t first, uint64_t n, float *dst);
/* Whether every element of a tensor is finite and at most 65504 in magnitude once in f32, so
 * that rounding it to f16 (nearest even) gives a finite value (values past 65504 but below 65520
 * would round to 65504; they are refused too). */
bool drd_tensor_fits_f16(const drd_tensor_view *t);

#endif
