/* Kernel wrappers: each records one operation (possibly several dispatches, e.g. when a
 * tensor is larger than one descriptor may cover) into a drd_seq. Shapes are in elements;
 * every buffer's comment gives its shape and type. */
#ifndef DRD_OPS_H
#define DRD_OPS_H

#include "vk_internal.h"

/* Splits a 1-D dispatch of `groups` workgroups over x and y so neither exceeds the device's
 * limit; shaders rebuild the flat index as x + y * gl_NumWorkGroups.x * local_size. */
void drd_grid_1d(const drd_context *ctx, uint64_t groups, uint32_t *gx, uint32_t *gy);
/* The largest element count of `elem_size`-byte elements one binding may cover, a multiple
 * of `multiple` elements, with chunk offsets staying storage-aligned. */
uint64_t drd_chunk_elems(const drd_context *ctx, uint32_t elem_size, uint64_t multiple);

typedef enum drd_eltwise_op {
  DRD_ELT_ADD = 0,    /* out = a + b */
  DRD_ELT_MUL = 1,    /* out = a * b */
  DRD_ELT_SCALE = 2,  /* out = alpha * a */
  DRD_ELT_SILU = 3,   /* out = a * sigmoid(a) */
  DRD_ELT_SWIGLU = 4, /* out = silu(a) * b */
} drd_eltwise_op;

/* a, b, out: [n] f32 (b is ignored by scale and silu and may be NULL). out may alias a or b. */
drd_status drd_op_eltwise(drd_seq *s, drd_eltwise_op op, const drd_buffer *a, const drd_buffer *b,
                          const drd_buffer *out, uint64_t n, float alpha);

#endif
