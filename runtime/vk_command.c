/* Command recording: one-shot transfer command buffers, and drd_seq, a sequence of compute
 * dispatches recorded once and submitted many times (each denoising step is one). Barriers
 * are derived from the ranges each dispatch reads and writes, so callers never place them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

drd_status drd_fence_wait(drd_context *ctx, VkFence fence) {
  VkResult r = vkWaitForFences(ctx->device, 1, &fence, VK_TRUE, ctx->timeout_ns);
  if (r == VK_SUCCESS) return DRD_OK;
  ctx->lost = true;
  if (r == VK_TIMEOUT)
    return drd_fail(DRD_ERROR_TIMEOUT, "the GPU did not finish within %llu ms; the device is considered hung",
                    (unsigned long long)(ctx->timeout_ns / 1000000ull));
  return drd_vk_status(r, "vkWaitForFences", __FILE__, __LINE__);
}

drd_status drd_oneshot_begin(drd_context *ctx, VkCommandBuffer *cb) {
  drd_status status = DRD_OK;
  *cb = VK_NULL_HANDLE;
  if (ctx->lost) return drd_fail(DRD_ERROR_DEVICE_LOST, "the device was lost or hung earlier");
  VkCommandBufferAllocateInfo ai = {
      .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
      .commandPool = ctx->command_pool,
      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
      .commandBufferCount = 1,
  };
  VK_CHECK(vkAllocateCommandBuffers(ctx->device, &ai, cb));
  VkCommandBufferBeginInfo bi = {
      .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
      .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
  };
  VK_CHECK(vkBeginCommandBuffer(*cb, &bi));
  return DRD_OK;
cleanup:
  if (*cb) vkFreeCommandBuffers(ctx->device, ctx->command_pool, 1, cb);
  *cb = VK_NULL_HANDLE;
  return status;
}

drd_status drd_oneshot_submit_and_wait(drd_context *ctx, VkCommandBuffer cb) {
  drd_status status = DRD_OK;
  VkFence fence = VK_NULL_HANDLE;
  /* transfers are followed by host reads or by compute work in a later submission */
  VkMemoryBarrier mb = {
      .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
      .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
      .dstAccessMask = VK_ACCESS_HOST_READ_BIT,
  };
  vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
  VK_CHECK(vkEndCommandBuffer(cb));
  VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  VK_CHECK(vkCreateFence(ctx->device, &fci, NULL, &fence));
  VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cb};
  VK_CHECK(vkQueueSubmit(ctx->queue, 1, &si, fence));
  DRD_CHECK(drd_fence_wait(ctx, fence));
cleanup:
  /* after a timeout the command buffer may still be in flight: leak it with the context */
  if (fence) vkDestroyFence(ctx->device, fence, NULL);
  if (!ctx->lost) vkFreeCommandBuffers(ctx->device, ctx->command_pool, 1, &cb);
  return status;
}

/* ------------------------------------------------------------------ recorded sequences */
typedef struct drd_access {
  VkBuffer buffer;
  VkDeviceSize begin, end; /* absolute byte offsets in buffer */
  bool write;
} drd_access;

struct drd_seq {
  drd_context *ctx;
  VkCommandBuffer cb;
  VkFence fence;
  VkDescriptorPool *pools;
  uint32_t n_pools;
  uint32_t sets_left; /* in the newest pool */
  drd_access *pending; /* accesses since the last barrier */
  uint32_t n_pending, cap_pending;
  VkQueryPool queries;  /* two timestamps per dispatch when profiling */
  struct drd_seq *signal; /* in flight: the sequence whose fence signals when this one is done */
  uint32_t n_queries, cap_queries;
  char (*op_names)[64];
  bool ended;
  bool in_flight; /* submitted and not yet waited for */
  bool timing;    /* the dispatch being recorded has an open timestamp pair */
  uint32_t n_dispatches;
};

#define SETS_PER_POOL 256u

static drd_status add_pool(drd_seq *s) {
  drd_status status = DRD_OK;
  VkDescriptorPool *np = realloc(s->pools, (s->n_pools + 1) * sizeof *np);
  if (!np) return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  s->pools = np;
  VkDescriptorPoolSize size = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                               .descriptorCount = SETS_PER_POOL * DRD_MAX_BINDINGS};
  VkDescriptorPoolCreateInfo ci = {
      .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
      .maxSets = SETS_PER_POOL,
      .poolSizeCount = 1,
      .pPoolSizes = &size,
  };
  VK_CHECK(vkCreateDescriptorPool(s->ctx->device, &ci, NULL, &s->pools[s->n_pools]));
  s->n_pools++;
  s->sets_left = SETS_PER_POOL;
cleanup:
  return status;
}

drd_status drd_seq_begin(drd_context *ctx, drd_seq **out) {
  drd_status status = DRD_OK;
  *out = NULL;
  if (ctx->lost) return drd_fail(DRD_ERROR_DEVICE_LOST, "the device was lost or hung earlier");
  drd_seq *s = calloc(1, sizeof *s);
  if (!s) return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  s->ctx = ctx;
  VkCommandBufferAllocateInfo ai = {
      .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
      .commandPool = ctx->command_pool,
      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
      .commandBufferCount = 1,
  };
  VK_CHECK(vkAllocateCommandBuffers(ctx->device, &ai, &s->cb));
  VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  VK_CHECK(vkCreateFence(ctx->device, &fci, NULL, &s->fence));
  /* no ONE_TIME_SUBMIT: the point is to replay it */
  VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  VK_CHECK(vkBeginCommandBuffer(s->cb, &bi));
  if (ctx->profile) {
    s->cap_queries = 8192; /* 4096 timed dispatches: a step of a 100-layer model */
    VkQueryPoolCreateInfo qci = {
        .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
        .queryType = VK_QUERY_TYPE_TIMESTAMP,
        .queryCount = s->cap_queries,
    };
    VK_CHECK(vkCreateQueryPool(ctx->device, &qci, NULL, &s->queries));
    s->op_names = calloc(s->cap_queries / 2, sizeof *s->op_names);
    if (!s->op_names) {
      status = drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
      goto cleanup;
    }
    vkCmdResetQueryPool(s->cb, s->queries, 0, s->cap_queries);
  }
  *out = s;
  return DRD_OK;
cleanup:
  drd_seq_destroy(s);
  return status;
}

static void barrier(drd_seq *s) {
  VkMemoryBarrier mb = {
      .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
      .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
      .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_INDIRECT_COMMAND_READ_BIT,
  };
  vkCmdPipelineBarrier(s->cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                       VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_DRAW_INDIRECT_BIT, 0, 1, &mb, 0,
                       NULL, 0, NULL);
  s->n_pending = 0;
}

/* A hazard exists when two accesses overlap and at least one writes. */
static bool conflicts(const drd_seq *s, const drd_access *a) {
  for (uint32_t i = 0; i < s->n_pending; i++) {
    const drd_access *p = &s->pending[i];
    if (p->buffer == a->buffer && p->begin < a->end && a->begin < p->end && (p->write || a->write)) return true;
  }
  return false;
}

VkDeviceSize drd_max_bind_range(const drd_context *ctx) {
  VkDeviceSize a = ctx->alloc.alignment;
  VkDeviceSize r = ctx->caps.max_storage_buffer_range;
  return r >= a ? r / a * a : r;
}

drd_status drd_seq_dispatch_begin(drd_seq *s, drd_pipeline *p, const drd_bind *binds, uint32_t n_binds,
                                  const drd_bind *extra_read, const void *push, const char *op,
                                  VkCommandBuffer *cb) {
  drd_status status = DRD_OK;
  drd_context *ctx = s->ctx;
  *cb = VK_NULL_HANDLE;
  if (s->ended || n_binds != p->n_bindings || n_binds > DRD_MAX_BINDINGS)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "%s: %u bindings given, pipeline %s takes %u", op, n_binds,
                    p->shader, p->n_bindings);
  const drd_device_caps *c = &ctx->caps;
  VkDescriptorBufferInfo infos[DRD_MAX_BINDINGS];
  VkWriteDescriptorSet writes[DRD_MAX_BINDINGS];
  drd_access acc[DRD_MAX_BINDINGS + 1];
  for (uint32_t i = 0; i < n_binds; i++) {
    const drd_bind *b = &binds[i];
    if (!b->buf || b->buf->block == UINT32_MAX || b->range == 0 || b->offset + b->range > b->buf->size + ctx->alloc.alignment)
      return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "%s: binding %u is empty or outside its buffer", op, i);
    if (b->range > c->max_storage_buffer_range)
      return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "%s: binding %u covers %llu bytes, over the device's %llu", op, i,
                      (unsigned long long)b->range, (unsigned long long)c->max_storage_buffer_range);
    VkDeviceSize abs_off = b->buf->offset + b->offset;
    if (abs_off % c->min_storage_buffer_offset_alignment)
      return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "%s: binding %u offset %llu is not aligned", op, i,
                      (unsigned long long)abs_off);
    infos[i] = (VkDescriptorBufferInfo){.buffer = b->buf->buffer, .offset = abs_off, .range = b->range};
    writes[i] = (VkWriteDescriptorSet){
        .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
        .dstBinding = i,
        .descriptorCount = 1,
        .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
        .pBufferInfo = &infos[i],
    };
    acc[i] = (drd_access){b->buf->buffer, abs_off, abs_off + b->range, b->write};
  }
  /* a range the dispatch reads without a descriptor (indirect arguments): hazards only */
  uint32_t n_acc = n_binds;
  if (extra_read) {
    VkDeviceSize abs_off = extra_read->buf->offset + extra_read->offset;
    acc[n_acc++] = (drd_access){extra_read->buf->buffer, abs_off, abs_off + extra_read->range, extra_read->write};
  }
  bool hazard = false;
  for (uint32_t i = 0; i < n_acc && !hazard; i++) hazard = conflicts(s, &acc[i]);
  if (hazard) barrier(s);
  if (s->n_pending + n_acc > s->cap_pending) {
    uint32_t cap = (s->cap_pending + n_acc) * 2;
    drd_access *np = realloc(s->pending, cap * sizeof *np);
    if (!np) return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    s->pending = np;
    s->cap_pending = cap;
  }
  memcpy(s->pending + s->n_pending, acc, n_acc * sizeof *acc);
  s->n_pending += n_acc;

  if (s->sets_left == 0) DRD_CHECK(add_pool(s));
  VkDescriptorSet set;
  VkDescriptorSetAllocateInfo dai = {
      .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
      .descriptorPool = s->pools[s->n_pools - 1],
      .descriptorSetCount = 1,
      .pSetLayouts = &p->set_layout,
  };
  VK_CHECK(vkAllocateDescriptorSets(ctx->device, &dai, &set));
  s->sets_left--;
  for (uint32_t i = 0; i < n_binds; i++) writes[i].dstSet = set;
  vkUpdateDescriptorSets(ctx->device, n_binds, writes, 0, NULL);

  s->timing = s->queries && s->n_queries + 2 <= s->cap_queries;
  if (s->timing) {
    snprintf(s->op_names[s->n_queries / 2], sizeof s->op_names[0], "%s", op ? op : p->shader);
    /* BOTTOM_OF_PIPE: the stamp lands when all earlier work has finished. A TOP_OF_PIPE
     * stamp lands at once, so an op's interval also held the wait for the op before it
     * (through the hazard barrier), and a long op was counted twice: once for itself and
     * once in its successor. This way the intervals add up to the GPU time. */
    vkCmdWriteTimestamp(s->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, s->queries, s->n_queries);
  }
  vkCmdBindPipeline(s->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);
  vkCmdBindDescriptorSets(s->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &set, 0, NULL);
  if (p->push_size) vkCmdPushConstants(s->cb, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, p->push_size, push);
  *cb = s->cb;
cleanup:
  return status;
}

void drd_seq_dispatch_end(drd_seq *s) {
  if (s->timing) {
    vkCmdWriteTimestamp(s->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, s->queries, s->n_queries + 1);
    s->n_queries += 2;
    s->timing = false;
  }
  s->n_dispatches++;
}

drd_status drd_seq_dispatch(drd_seq *s, drd_pipeline *p, const drd_bind *binds, uint32_t n_binds,
                            const void *push, uint32_t gx, uint32_t gy, uint32_t gz, const char *op) {
  if (s->ended || n_binds != p->n_bindings || n_binds > DRD_MAX_BINDINGS)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "%s: %u bindings given, pipeline %s takes %u", op, n_binds,
                    p->shader, p->n_bindings);
  if (gx == 0 || gy == 0 || gz == 0) return DRD_OK; /* nothing to do: an empty edge case */
  const drd_device_caps *c = &s->ctx->caps;
  if (gx > c->max_workgroup_count[0] || gy > c->max_workgroup_count[1] || gz > c->max_workgroup_count[2])
    return drd_fail(DRD_ERROR_UNSUPPORTED, "%s: dispatch %ux%ux%u exceeds the device's workgroup count limits", op,
                    gx, gy, gz);
  VkCommandBuffer cb;
  drd_status status = drd_seq_dispatch_begin(s, p, binds, n_binds, NULL, push, op, &cb);
  if (status != DRD_OK) return status;
  vkCmdDispatch(cb, gx, gy, gz);
  drd_seq_dispatch_end(s);
  return DRD_OK;
}

drd_context *drd_seq_context(const drd_seq *s) { return s->ctx; }

drd_status drd_seq_end(drd_seq *s) {
  drd_status status = DRD_OK;
  /* make every shader write visible to the host (mapped memory reads), to transfers, and to
   * the dispatches of whatever is submitted next on the queue (a barrier's scopes reach
   * across submissions in queue order), which may be queued before this one completes */
  VkMemoryBarrier mb = {
      .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
      .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
      .dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_SHADER_READ_BIT |
                       VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_INDIRECT_COMMAND_READ_BIT,
  };
  vkCmdPipelineBarrier(s->cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                       VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT |
                           VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_DRAW_INDIRECT_BIT,
                       0, 1, &mb, 0, NULL, 0, NULL);
  VK_CHECK(vkEndCommandBuffer(s->cb));
  s->ended = true;
  s->n_pending = 0;
cleanup:
  return status;
}

drd_status drd_seq_run(drd_seq *s) {
  drd_status status = drd_seq_submit(s);
  return status == DRD_OK ? drd_seq_wait(s) : status;
}

drd_status drd_seq_submit(drd_seq *s) { return drd_seq_submit_group(&s, 1); }

drd_status drd_seq_submit_group(drd_seq *const *seqs, uint32_t n) {
  drd_status status = DRD_OK;
  if (!n) return DRD_OK;
  drd_context *ctx = seqs[0]->ctx;
  for (uint32_t i = 0; i < n; i++) {
    if (!seqs[i]->ended) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "drd_seq_submit: sequence not ended");
    if (seqs[i]->in_flight) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "drd_seq_submit: sequence still in flight");
  }
  if (ctx->lost) return drd_fail(DRD_ERROR_DEVICE_LOST, "the device was lost or hung earlier");
  VkCommandBuffer one, *cbs = n == 1 ? &one : malloc(n * sizeof *cbs);
  if (!cbs) return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  for (uint32_t i = 0; i < n; i++) cbs[i] = seqs[i]->cb;
  /* the queue runs the command buffers in order, so the last one's fence stands for all */
  drd_seq *last = seqs[n - 1];
  VK_CHECK(vkResetFences(ctx->device, 1, &last->fence));
  VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = n, .pCommandBuffers = cbs};
  VK_CHECK(vkQueueSubmit(ctx->queue, 1, &si, last->fence));
  for (uint32_t i = 0; i < n; i++) {
    seqs[i]->in_flight = true;
    seqs[i]->signal = last;
  }
cleanup:
  if (cbs != &one) free(cbs);
  return status;
}

drd_status drd_seq_wait(drd_seq *s) {
  drd_status status = DRD_OK;
  drd_context *ctx = s->ctx;
  if (!s->in_flight) return DRD_OK;
  if (ctx->lost) return drd_fail(DRD_ERROR_DEVICE_LOST, "the device was lost or hung earlier");
  /* a group member is done once the group's last sequence has been waited for */
  if (s->signal == s || s->signal->in_flight) DRD_CHECK(drd_fence_wait(ctx, s->signal->fence));
  s->in_flight = false;
  if (s->queries && s->n_queries) {
    uint64_t *ts = malloc(s->n_queries * sizeof *ts);
    if (!ts) return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    VkResult r = vkGetQueryPoolResults(ctx->device, s->queries, 0, s->n_queries, s->n_queries * sizeof *ts, ts,
                                       sizeof *ts, VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    if (r == VK_SUCCESS)
      for (uint32_t i = 0; i + 1 < s->n_queries; i += 2)
        drd_profile_add(ctx, s->op_names[i / 2], (double)(ts[i + 1] - ts[i]) * ctx->caps.timestamp_period_ns);
    free(ts);
  }
cleanup:
  return status;
}

bool drd_seq_finished(const drd_seq *s) {
  if (!s->in_flight || s->ctx->lost || (s->signal != s && !s->signal->in_flight)) return true;
  return vkGetFenceStatus(s->ctx->device, s->signal->fence) != VK_NOT_READY;
}

void drd_seq_destroy(drd_seq *s) {
  if (!s) return;
  drd_context *ctx = s->ctx;
  if (s->fence) {
    /* never free a command buffer the GPU may still run (the fence that signals for a group's
     * earlier members may be gone with its owner: wait for the queue then) */
    if (s->in_flight && !ctx->lost) {
      if (s->signal == s) vkWaitForFences(ctx->device, 1, &s->fence, VK_TRUE, ctx->timeout_ns);
      else vkQueueWaitIdle(ctx->queue);
    }
    vkDestroyFence(ctx->device, s->fence, NULL);
  }
  if (s->cb && !ctx->lost) vkFreeCommandBuffers(ctx->device, ctx->command_pool, 1, &s->cb);
  for (uint32_t i = 0; i < s->n_pools; i++) vkDestroyDescriptorPool(ctx->device, s->pools[i], NULL);
  if (s->queries) vkDestroyQueryPool(ctx->device, s->queries, NULL);
  free(s->pools);
  free(s->pending);
  free(s->op_names);
  free(s);
}

void drd_seq_stamp(drd_seq *s, VkQueryPool pool, uint32_t query) {
  /* the reset travels with the write, so the sequence can be submitted again and again;
   * BOTTOM_OF_PIPE: the stamp lands when all the work queued before it has finished */
  vkCmdResetQueryPool(s->cb, pool, query, 1);
  vkCmdWriteTimestamp(s->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, pool, query);
}

double drd_ticks_seconds(const drd_context *ctx, uint64_t from, uint64_t to) {
  uint32_t bits = ctx->caps.timestamp_valid_bits;
  uint64_t mask = bits >= 64 ? ~0ull : (1ull << bits) - 1;
  return (double)((to - from) & mask) * ctx->caps.timestamp_period_ns * 1e-9;
}
