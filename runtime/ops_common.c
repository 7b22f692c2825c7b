/* Helpers every kernel wrapper uses: dispatch grids and chunking for binding limits. */
#include "ops.h"

void drd_grid_1d(const drd_context *ctx, uint64_t groups, uint32_t *gx, uint32_t *gy) {
  uint64_t maxx = ctx->caps.max_workgroup_count[0];
  if (groups <= maxx) {
    *gx = (uint32_t)groups;
    *gy = 1;
    return;
  }
  *gx = (uint32_t)maxx;
  *gy = (uint32_t)((groups + maxx - 1) / maxx);
}

uint64_t drd_chunk_elems(const drd_context *ctx, uint32_t elem_size, uint64_t multiple) {
  /* chunk starts must stay aligned: make the chunk a multiple of the alignment in bytes */
  uint64_t align_elems = ctx->alloc.alignment / elem_size;
  uint64_t step = multiple;
  while (step % align_elems) step += multiple; /* lcm(multiple, align_elems) */
  uint64_t n = drd_max_bind_range(ctx) / elem_size / step * step;
  return n ? n : step;
}
