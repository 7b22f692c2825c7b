/* Hierarchical Sparse Attention plan (SPEC section 5): which key blocks each query block
 * sees, for one sequence length N. The same for every layer and head, so it is built once
 * per N; the CPU engine walks it and the GPU engine uploads exactly these arrays. */
#ifndef DRD_HSA_PLAN_H
#define DRD_HSA_PLAN_H

#include <stdint.h>

#include "drdiff.h"
#include "model_file.h"

typedef struct drd_hsa_plan {
  uint32_t N;         /* sequence length */
  uint32_t B;         /* block size in tokens */
  uint32_t nb;        /* ceil(N / B) blocks */
  uint32_t mode;      /* 0 dense, else 1..3 */
  uint32_t w, dilation, hops, g; /* the mode's parameters (all 0 when dense) */
  /* CSR: query block a sees key blocks col[row[a] .. row[a+1]), strictly ascending. */
  uint32_t *row;      /* [nb + 1] */
  uint32_t *col;      /* [nnz] */
  uint64_t nnz;
  /* Global blocks (SPEC's G), ascending; they are also the query blocks that see all nb key
   * blocks. Empty when dense (there every block sees everything anyway). */
  uint32_t n_global;
  uint32_t *global;   /* [n_global] */
  uint32_t max_row_ordinary; /* most key blocks of one non-global query block */
} drd_hsa_plan;

/* Builds the plan for N >= 1 tokens. INVALID_ARGUMENT for N == 0, BAD_MODEL for B == 0 or a
 * dilation of 0 in the chosen mode, OUT_OF_HOST_MEMORY when the plan would not fit (a dense
 * plan has nb^2 entries). Free with drd_hsa_plan_free (safe after a failure). */
drd_status drd_hsa_plan_make(const drd_hparams *hp, uint32_t N, drd_hsa_plan *out);
void drd_hsa_plan_free(drd_hsa_plan *plan);

/* The attention mode for N: 0 dense, else 1..3 (SPEC section 5). */
uint32_t drd_hsa_mode(const drd_hparams *hp, uint32_t N);

#endif
