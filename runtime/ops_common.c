/* Helpers every kernel wrapper uses: dispatch grids, chunking for binding limits, the CPU
 * devices' workgroup width. */
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

uint32_t drd_cpu_sg_wg(const drd_context *ctx) {
  const uint32_t ops = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_SHUFFLE_BIT;
  const drd_device_caps *c = &ctx->caps;
  const uint32_t sg = c->subgroup_size;
  if (c->type != DRD_DEVICE_CPU || sg < 1 || sg > 64 || sg > c->max_workgroup_invocations ||
      sg > c->max_workgroup_size[0])
    return 0;
  if ((c->subgroup_ops & ops) != ops || !(c->subgroup_stages & VK_SHADER_STAGE_COMPUTE_BIT)) return 0;
  return sg;
}

uint64_t drd_chunk_elems(const drd_context *ctx, uint32_t elem_size, uint64_t multiple) {
  /* chunk starts must stay aligned: make the chunk a multiple of the alignment in bytes */
  uint64_t align_elems = ctx->alloc.alignment / elem_size;
  uint64_t step = multiple;
  while (step % align_elems) step += multiple; /* lcm(multiple, align_elems) */
  uint64_t n = drd_max_bind_range(ctx) / elem_size / step * step;
  return n ? n : step;
}
