/* HSA block plan: CSR lists of visible key blocks per query block. */
#include "hsa_plan.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

uint32_t drd_hsa_mode(const drd_hparams *hp, uint32_t N) {
  if (N <= hp->N1) return 0;
  if (N <= hp->N2) return 1;
  if (N <= hp->N3) return 2;
  return 3;
}

void drd_hsa_plan_free(drd_hsa_plan *plan) {
  if (!plan) return;
  free(plan->row);
  free(plan->col);
  free(plan->global);
  memset(plan, 0, sizeof *plan);
}

static int cmp_u32(const void *a, const void *b) {
  const uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* Writes the sorted, distinct key blocks an ordinary (non-global) query block a sees into
 * dst (room for (2w+1) + 2*hops + g entries) and returns how many. */
static uint32_t ordinary_row(const drd_hsa_plan *p, uint32_t a, uint32_t *dst) {
  uint32_t n = 0;
  const uint64_t lo = a > p->w ? (uint64_t)a - p->w : 0;
  const uint64_t hi = (uint64_t)a + p->w < p->nb - 1 ? (uint64_t)a + p->w : p->nb - 1;
  for (uint64_t b = lo; b <= hi; b++) dst[n++] = (uint32_t)b;
  /* dilated: |a - b| = k * dilation for k = 1..hops (k = 0 is a itself, already local) */
  for (uint64_t k = 1; k <= p->hops; k++) {
    const uint64_t off = k * p->dilation;
    if (off >= p->nb) break;   /* every further hop lands outside the sequence */
    if (off <= p->w) continue; /* inside the local window */
    if (off <= a) dst[n++] = (uint32_t)(a - off);
    if ((uint64_t)a + off < p->nb) dst[n++] = (uint32_t)(a + off);
  }
  for (uint32_t i = 0; i < p->n_global; i++) dst[n++] = p->global[i];
  qsort(dst, n, sizeof *dst, cmp_u32);
  uint32_t m = 0;
  for (uint32_t i = 0; i < n; i++)
    if (m == 0 || dst[i] != dst[m - 1]) dst[m++] = dst[i];
  return m;
}

drd_status drd_hsa_plan_make(const drd_hparams *hp, uint32_t N, drd_hsa_plan *out) {
  memset(out, 0, sizeof *out);
  if (N == 0) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "HSA plan: N must be >= 1");
  if (hp->B == 0) return drd_fail(DRD_ERROR_BAD_MODEL, "HSA plan: block size 0");
  drd_hsa_plan *p = out;
  p->N = N;
  p->B = hp->B;
  p->nb = (uint32_t)(((uint64_t)N + hp->B - 1) / hp->B);
  p->mode = drd_hsa_mode(hp, N);
  const uint32_t nb = p->nb;
  uint32_t *scratch = NULL;
  drd_status st = DRD_OK;

  p->row = malloc(sizeof(uint32_t) * ((size_t)nb + 1));
  if (!p->row) goto oom;

  if (p->mode == 0) {
    /* Dense: every query block sees every key block. */
    const uint64_t nnz = (uint64_t)nb * nb;
    if (nnz > UINT32_MAX) {
      st = drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY,
                    "HSA plan: dense attention over %u blocks needs %llu entries (max 2^32-1)",
                    nb, (unsigned long long)nnz);
      goto fail;
    }
    p->nnz = nnz;
    p->col = malloc(sizeof(uint32_t) * (size_t)(nnz ? nnz : 1));
    if (!p->col) goto oom;
    for (uint32_t a = 0; a <= nb; a++) p->row[a] = a * nb;
    for (uint32_t a = 0; a < nb; a++)
      for (uint32_t b = 0; b < nb; b++) p->col[(size_t)a * nb + b] = b;
    p->max_row_ordinary = nb;
    return DRD_OK;
  }

  const uint32_t m = p->mode - 1;
  p->w = hp->window[m];
  p->dilation = hp->dilation[m];
  p->hops = hp->hops[m];
  p->g = hp->global[m];
  if (p->dilation == 0) {
    st = drd_fail(DRD_ERROR_BAD_MODEL, "HSA plan: dilation of mode %u is 0 (must be >= 1)", p->mode);
    goto fail;
  }

  /* G = { floor(i * nb / g) : i < g } as a set: ascending in i, so dedupe adjacent. */
  p->global = malloc(sizeof(uint32_t) * (size_t)(p->g ? p->g : 1));
  if (!p->global) goto oom;
  for (uint32_t i = 0; i < p->g; i++) {
    const uint32_t b = (uint32_t)((uint64_t)i * nb / p->g);
    if (p->n_global == 0 || p->global[p->n_global - 1] != b) p->global[p->n_global++] = b;
  }

  /* A global query block sees everything; an ordinary one at most (2w+1) + 2 hops + g. */
  /* ordinary_row's room before deduplication: window + dilated hops inside the sequence
   * + global blocks, each part capped by nb. */
  const uint64_t win = 2 * (uint64_t)p->w + 1, dil = 2 * (uint64_t)p->hops;
  const uint64_t cap = (win < nb ? win : nb) + (dil < 2 * (uint64_t)nb ? dil : 2 * (uint64_t)nb) + p->n_global;
  scratch = malloc(sizeof(uint32_t) * (size_t)cap);
  uint8_t *is_global = calloc(nb, 1);
  if (!scratch || !is_global) {
    free(is_global);
    goto oom;
  }
  for (uint32_t i = 0; i < p->n_global; i++) is_global[p->global[i]] = 1;

  /* Pass 1: row lengths; pass 2: fill. */
  uint64_t nnz = 0;
  for (uint32_t a = 0; a < nb; a++) {
    if (nnz > UINT32_MAX) break;
    p->row[a] = (uint32_t)nnz;
    uint32_t len = is_global[a] ? nb : ordinary_row(p, a, scratch);
    if (!is_global[a] && len > p->max_row_ordinary) p->max_row_ordinary = len;
    nnz += len;
  }
  if (nnz > UINT32_MAX) {
    free(is_global);
    st = drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "HSA plan: more than 2^32-1 block pairs for N=%u", N);
    goto fail;
  }
  p->row[nb] = (uint32_t)nnz;
  p->nnz = nnz;
  p->col = malloc(sizeof(uint32_t) * (size_t)(nnz ? nnz : 1));
  if (!p->col) {
    free(is_global);
    goto oom;
  }
  for (uint32_t a = 0; a < nb; a++) {
    uint32_t *dst = p->col + p->row[a];
    if (is_global[a]) {
      for (uint32_t b = 0; b < nb; b++) dst[b] = b;
    } else {
      uint32_t len = ordinary_row(p, a, scratch);
      memcpy(dst, scratch, sizeof(uint32_t) * len);
    }
  }
  free(is_global);
  free(scratch);
  return DRD_OK;

oom:
  st = drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "HSA plan: out of memory for N=%u", N);
fail:
  free(scratch);
  drd_hsa_plan_free(out);
  return st;
}
