/* Random-weight DrDiff models written as GGUF files from C, so `drdiff bench` needs no
 * Python. The files have the keys, key order, tensor names, shapes, storage types and
 * initialisation scales of models/drdiff/random_model.py; the values differ (Philox here,
 * numpy's PCG64 there) and so does the vocabulary (byte pairs here, random merges there).
 * Both are valid models of the same configuration. */
#ifndef DRD_RANDOM_MODEL_H
#define DRD_RANDOM_MODEL_H

#include <stdint.h>

#include "drdiff.h"
#include "model_file.h"

/* The hyperparameters of a named configuration of SPEC section 10, as random_model.py's
 * CONFIGS sets them: "tiny" or "base-220m". INVALID_ARGUMENT, naming the choices, for any
 * other name. */
drd_status drd_random_model_config(const char *name, drd_hparams *hp);

/* Writes a model of hyperparameters hp with weights drawn from seed to path (created or
 * truncated). Matrices are stored as matrix_type (F32, F16, BF16 or Q8_0; Q8_0 falls back to
 * F16 for rows whose length is not a multiple of 32, as random_model.py does); norms and
 * biases are f32. Init as in Python: token_embd N(0, 1), other matrices N(0, 1/fan_in),
 * norm weights 1 + N(0, 0.01), biases N(0, 0.01). The same (hp, seed, type) gives the same
 * bytes. Needs 259 <= V <= 65795 (the vocabulary is 256 bytes, byte-pair merges and three
 * special tokens). On failure (IO, INVALID_ARGUMENT) the file may be left half written. */
drd_status drd_random_model_write(const drd_hparams *hp, uint64_t seed, drd_dtype matrix_type,
                                  const char *path);

/* Elements of every tensor of a model with these hyperparameters (SPEC section 3). */
uint64_t drd_random_model_param_count(const drd_hparams *hp);

#endif
