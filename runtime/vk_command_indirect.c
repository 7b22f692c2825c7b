/* Indirect dispatches: the workgroup counts come from a buffer the GPU wrote earlier in the
 * same sequence (e.g. the number of expert tiles after routing), so a step whose work size
 * depends on data is still recorded once and replayed without a host round trip. */
#include "vk_internal.h"

drd_status drd_seq_dispatch_indirect(drd_seq *s, drd_pipeline *p, const drd_bind *binds, uint32_t n_binds,
                                     const void *push, const drd_buffer *args, VkDeviceSize args_offset,
                                     const char *op) {
  const VkDeviceSize n = sizeof(VkDispatchIndirectCommand);
  if (!args || args->block == UINT32_MAX || args_offset % 4 || args_offset + n > args->size)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "%s: indirect arguments at %llu are unaligned or outside their buffer",
                    op ? op : p->shader, (unsigned long long)args_offset);
  /* the arguments are read at DRAW_INDIRECT, before the shader: a read for the hazard
   * tracker, whose barrier includes INDIRECT_COMMAND_READ in its destination */
  drd_bind rd = drd_in_range(args, args_offset, n);
  VkCommandBuffer cb;
  drd_status status = drd_seq_dispatch_begin(s, p, binds, n_binds, &rd, push, op, &cb);
  if (status != DRD_OK) return status;
  vkCmdDispatchIndirect(cb, args->buffer, args->offset + args_offset);
  drd_seq_dispatch_end(s);
  return DRD_OK;
}
