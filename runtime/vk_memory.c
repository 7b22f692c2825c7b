/* Device memory: a few large blocks, each with one VkBuffer, handed out in aligned
 * sub-ranges by a first-fit free list (no allocation per tensor), plus a staging buffer for
 * devices whose tensor memory the host cannot map, and small host-visible buffers, one block
 * each, for what the host writes or reads around every generation. */
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

#define DRD_DEFAULT_BLOCK (256ull << 20)
#define DRD_STAGING_SIZE (64ull << 20)

typedef struct drd_range { VkDeviceSize off, size; } drd_range;

struct drd_mem_block {
  VkDeviceMemory memory;
  VkBuffer buffer;
  VkDeviceSize size;
  void *mapped;
  drd_range *free; /* sorted by offset, coalesced */
  uint32_t n_free, cap_free;
  bool host;       /* a drd_buffer_create_host block: host memory, one buffer, not counted */
  bool coherent;   /* mapped and host-coherent: no flush or invalidate needed */
};

static VkDeviceSize align_up(VkDeviceSize v, VkDeviceSize a) { return (v + a - 1) / a * a; }

static int find_memory_type(const VkPhysicalDeviceMemoryProperties *mp, uint32_t type_bits,
                            VkMemoryPropertyFlags want) {
  for (uint32_t i = 0; i < mp->memoryTypeCount; i++)
    if ((type_bits & (1u << i)) && (mp->memoryTypes[i].propertyFlags & want) == want) return (int)i;
  return -1;
}

drd_status drd_alloc_init(drd_context *ctx, uint64_t limit) {
  drd_allocator *a = &ctx->alloc;
  a->limit = limit;
  const VkPhysicalDeviceMemoryProperties *mp = &ctx->memory_properties;
  /* Tensors go to the largest device-local heap, in the first (driver-preferred) type there. */
  int best = -1;
  for (uint32_t i = 0; i < mp->memoryTypeCount; i++) {
    if (!(mp->memoryTypes[i].propertyFlags & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT)) continue;
    if (best < 0 || mp->memoryHeaps[mp->memoryTypes[i].heapIndex].size >
                        mp->memoryHeaps[mp->memoryTypes[best].heapIndex].size)
      best = (int)i;
  }
  if (best < 0) best = 0; /* no device-local type at all: any memory works, just slower */
  a->memory_type = (uint32_t)best;
  a->heap = mp->memoryTypes[best].heapIndex;
  VkMemoryPropertyFlags f = mp->memoryTypes[best].propertyFlags;
  a->host_visible = (f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) != 0;
  a->alignment = ctx->caps.min_storage_buffer_offset_alignment > 256 ? ctx->caps.min_storage_buffer_offset_alignment : 256;
  a->block_size = DRD_DEFAULT_BLOCK;
  return DRD_OK;
}

static void block_release(drd_context *ctx, drd_mem_block *b) {
  if (b->mapped) vkUnmapMemory(ctx->device, b->memory);
  if (b->buffer) vkDestroyBuffer(ctx->device, b->buffer, NULL);
  if (b->memory) vkFreeMemory(ctx->device, b->memory, NULL);
  if (!b->host) ctx->alloc.bytes_allocated -= b->memory ? b->size : 0;
  free(b->free);
  memset(b, 0, sizeof *b);
}

void drd_alloc_destroy(drd_context *ctx) {
  drd_allocator *a = &ctx->alloc;
  for (uint32_t i = 0; i < a->n_blocks; i++) block_release(ctx, &a->blocks[i]);
  free(a->blocks);
  if (a->staging_mapped) vkUnmapMemory(ctx->device, a->staging_memory);
  if (a->staging) vkDestroyBuffer(ctx->device, a->staging, NULL);
  if (a->staging_memory) vkFreeMemory(ctx->device, a->staging_memory, NULL);
  memset(a, 0, sizeof *a);
}

static drd_status make_buffer(drd_context *ctx, VkDeviceSize size, VkBufferUsageFlags usage,
                              VkMemoryPropertyFlags want, int fixed_type, VkBuffer *buf,
                              VkDeviceMemory *mem, void **mapped, bool *coherent) {
  drd_status status = DRD_OK;
  VkBufferCreateInfo bci = {
      .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
      .size = size,
      .usage = usage,
      .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
  };
  VK_CHECK(vkCreateBuffer(ctx->device, &bci, NULL, buf));
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(ctx->device, *buf, &req);
  int type = fixed_type;
  if (type < 0 || !(req.memoryTypeBits & (1u << type))) type = find_memory_type(&ctx->memory_properties, req.memoryTypeBits, want);
  if (type < 0) {
    status = drd_fail(DRD_ERROR_UNSUPPORTED, "no memory type fits a buffer of %llu bytes", (unsigned long long)size);
    goto cleanup;
  }
  VkMemoryAllocateInfo mai = {
      .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
      .allocationSize = req.size,
      .memoryTypeIndex = (uint32_t)type,
  };
  VK_CHECK(vkAllocateMemory(ctx->device, &mai, NULL, mem));
  VK_CHECK(vkBindBufferMemory(ctx->device, *buf, *mem, 0));
  VkMemoryPropertyFlags f = ctx->memory_properties.memoryTypes[type].propertyFlags;
  if (coherent) *coherent = (f & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT) != 0;
  if (mapped) {
    *mapped = NULL;
    if (f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) VK_CHECK(vkMapMemory(ctx->device, *mem, 0, VK_WHOLE_SIZE, 0, mapped));
  }
  return DRD_OK;
cleanup:
  if (*mem) vkFreeMemory(ctx->device, *mem, NULL);
  if (*buf) vkDestroyBuffer(ctx->device, *buf, NULL);
  *mem = VK_NULL_HANDLE;
  *buf = VK_NULL_HANDLE;
  if (status == DRD_ERROR_OUT_OF_DEVICE_MEMORY)
    status = drd_fail(status, "the device could not allocate %.1f MiB more (%.1f MiB held already)",
                      (double)size / 1048576.0, (double)ctx->alloc.bytes_allocated / 1048576.0);
  return status;
}

/* A free block slot (an empty one left by a released block, or a new one) with its free list. */
static drd_status block_slot(drd_allocator *a, uint32_t *slot) {
  if (a->n_blocks == a->cap_blocks) {
    uint32_t cap = a->cap_blocks ? a->cap_blocks * 2 : 8;
    drd_mem_block *nb = realloc(a->blocks, cap * sizeof *nb);
    if (!nb) return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "allocator: out of host memory");
    memset(nb + a->cap_blocks, 0, (cap - a->cap_blocks) * sizeof *nb);
    a->blocks = nb;
    a->cap_blocks = cap;
  }
  *slot = a->n_blocks;
  for (uint32_t i = 0; i < a->n_blocks; i++)
    if (!a->blocks[i].memory) { *slot = i; break; }
  drd_mem_block *b = &a->blocks[*slot];
  memset(b, 0, sizeof *b);
  b->free = malloc(4 * sizeof *b->free);
  if (!b->free) return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "allocator: out of host memory");
  b->cap_free = 4;
  return DRD_OK;
}

uint64_t drd_alloc_budget(drd_context *ctx) {
  drd_caps_refresh_budget(ctx);
  uint64_t budget = ctx->caps.heap_budget[ctx->alloc.heap];
  return ctx->alloc.limit && (!budget || ctx->alloc.limit < budget) ? ctx->alloc.limit : budget;
}

/* A new block for a buffer of `need` bytes: the default size, or just `need` where the default
 * would not fit the budget (so that what fits the budget can be allocated, to the byte). */
static drd_status block_add(drd_context *ctx, VkDeviceSize need, uint32_t *index) {
  drd_allocator *a = &ctx->alloc;
  uint64_t budget = drd_alloc_budget(ctx);
  VkDeviceSize size = need > a->block_size ? need : a->block_size;
  if (budget && a->bytes_allocated + size > budget) size = need;
  if (budget && a->bytes_allocated + size > budget)
    return drd_fail(DRD_ERROR_OUT_OF_DEVICE_MEMORY, "allocating %.1f MiB would pass %s of %.1f MiB (%.1f MiB held)",
                    (double)size / 1048576.0, budget == a->limit ? "the context's device memory limit" : "the device's budget",
                    (double)budget / 1048576.0, (double)a->bytes_allocated / 1048576.0);
  uint32_t slot;
  drd_status status = block_slot(a, &slot);
  if (status != DRD_OK) return status;
  drd_mem_block *b = &a->blocks[slot];
  status = make_buffer(ctx, size,
                       VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                           VK_BUFFER_USAGE_TRANSFER_DST_BIT | VK_BUFFER_USAGE_INDIRECT_BUFFER_BIT,
                       VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, (int)a->memory_type, &b->buffer, &b->memory, &b->mapped,
                       &b->coherent);
  if (status != DRD_OK) {
    free(b->free);
    memset(b, 0, sizeof *b);
    return status;
  }
  b->size = size;
  b->free[0] = (drd_range){0, size};
  b->n_free = 1;
  if (slot == a->n_blocks) a->n_blocks++;
  a->bytes_allocated += size;
  *index = slot;
  return DRD_OK;
}

static bool block_take(drd_mem_block *b, VkDeviceSize size, VkDeviceSize *off) {
  for (uint32_t i = 0; i < b->n_free; i++) {
    if (b->free[i].size < size) continue;
    *off = b->free[i].off;
    b->free[i].off += size;
    b->free[i].size -= size;
    if (b->free[i].size == 0) {
      memmove(&b->free[i], &b->free[i + 1], (b->n_free - i - 1) * sizeof *b->free);
      b->n_free--;
    }
    return true;
  }
  return false;
}

drd_status drd_buffer_create(drd_context *ctx, VkDeviceSize size, drd_buffer *out) {
  memset(out, 0, sizeof *out);
  out->block = UINT32_MAX;
  if (size == 0) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "drd_buffer_create: size 0");
  drd_allocator *a = &ctx->alloc;
  VkDeviceSize need = align_up(size, a->alignment);
  VkDeviceSize off = 0;
  uint32_t bi = UINT32_MAX;
  for (uint32_t i = 0; i < a->n_blocks && bi == UINT32_MAX; i++)
    if (a->blocks[i].memory && !a->blocks[i].host && block_take(&a->blocks[i], need, &off)) bi = i;
  if (bi == UINT32_MAX) {
    drd_status status = block_add(ctx, need, &bi);
    if (status != DRD_OK) return status;
    block_take(&a->blocks[bi], need, &off);
  }
  drd_mem_block *b = &a->blocks[bi];
  *out = (drd_buffer){.buffer = b->buffer, .offset = off, .size = size, .block = bi,
                      .mapped = b->mapped ? (char *)b->mapped + off : NULL};
  a->bytes_in_use += need;
  if (a->bytes_in_use > a->peak_in_use) a->peak_in_use = a->bytes_in_use;
  return DRD_OK;
}

drd_status drd_buffer_create_host(drd_context *ctx, VkDeviceSize size, drd_buffer *out) {
  memset(out, 0, sizeof *out);
  out->block = UINT32_MAX;
  if (size == 0) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "drd_buffer_create_host: size 0");
  drd_allocator *a = &ctx->alloc;
  uint32_t bi;
  drd_status status = block_slot(a, &bi);
  if (status != DRD_OK) return status;
  drd_mem_block *b = &a->blocks[bi];
  const VkBufferUsageFlags usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                   VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  const VkDeviceSize need = align_up(size, a->alignment);
  /* cached where offered (the host reads tokens back); every device has a coherent type */
  status = make_buffer(ctx, need, usage,
                       VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT |
                           VK_MEMORY_PROPERTY_HOST_CACHED_BIT,
                       -1, &b->buffer, &b->memory, &b->mapped, &b->coherent);
  if (status == DRD_ERROR_UNSUPPORTED)
    status = make_buffer(ctx, need, usage, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                         -1, &b->buffer, &b->memory, &b->mapped, &b->coherent);
  if (status != DRD_OK) {
    free(b->free);
    memset(b, 0, sizeof *b);
    return status;
  }
  b->host = true;
  b->size = need;
  b->n_free = 0; /* the whole block is this buffer */
  if (bi == a->n_blocks) a->n_blocks++;
  *out = (drd_buffer){.buffer = b->buffer, .offset = 0, .size = size, .block = bi, .mapped = b->mapped};
  return DRD_OK;
}

void drd_buffer_destroy(drd_context *ctx, drd_buffer *buf) {
  if (!ctx || !buf || buf->block == UINT32_MAX || buf->size == 0) return;
  drd_allocator *a = &ctx->alloc;
  drd_mem_block *b = &a->blocks[buf->block];
  VkDeviceSize need = align_up(buf->size, a->alignment);
  /* insert [offset, offset+need) in the sorted free list and merge with its neighbours */
  uint32_t i = 0;
  while (i < b->n_free && b->free[i].off < buf->offset) i++;
  if (b->n_free == b->cap_free) {
    drd_range *nf = realloc(b->free, 2 * b->cap_free * sizeof *nf);
    if (!nf) { /* cannot track the hole: leak it rather than corrupt the list */
      drd_log(DRD_LOG_WARN, "allocator: out of host memory, %llu device bytes leaked", (unsigned long long)need);
      return;
    }
    b->free = nf;
    b->cap_free *= 2;
  }
  memmove(&b->free[i + 1], &b->free[i], (b->n_free - i) * sizeof *b->free);
  b->free[i] = (drd_range){buf->offset, need};
  b->n_free++;
  if (i + 1 < b->n_free && b->free[i].off + b->free[i].size == b->free[i + 1].off) {
    b->free[i].size += b->free[i + 1].size;
    memmove(&b->free[i + 1], &b->free[i + 2], (b->n_free - i - 2) * sizeof *b->free);
    b->n_free--;
  }
  if (i > 0 && b->free[i - 1].off + b->free[i - 1].size == b->free[i].off) {
    b->free[i - 1].size += b->free[i].size;
    memmove(&b->free[i], &b->free[i + 1], (b->n_free - i - 1) * sizeof *b->free);
    b->n_free--;
  }
  if (!b->host) a->bytes_in_use -= need;
  /* Give an empty block back to the driver unless it is the last one standing, so long
   * runs with varying sizes do not keep their peak footprint. */
  uint32_t live = 0;
  for (uint32_t k = 0; k < a->n_blocks; k++) live += a->blocks[k].memory && !a->blocks[k].host;
  if (b->n_free == 1 && b->free[0].size == b->size && (b->host || live > 1 || b->size > a->block_size))
    block_release(ctx, b);
  memset(buf, 0, sizeof *buf);
  buf->block = UINT32_MAX;
}

static drd_status staging_ensure(drd_context *ctx) {
  drd_allocator *a = &ctx->alloc;
  if (a->staging) return DRD_OK;
  a->staging_size = DRD_STAGING_SIZE;
  return make_buffer(ctx, a->staging_size, VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                     VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_CACHED_BIT, -1, &a->staging,
                     &a->staging_memory, &a->staging_mapped, &a->staging_coherent) == DRD_OK
             ? DRD_OK
             : make_buffer(ctx, a->staging_size, VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                           VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT, -1, &a->staging, &a->staging_memory,
                           &a->staging_mapped, &a->staging_coherent);
}

static drd_status staging_sync(drd_context *ctx, bool to_device) {
  drd_allocator *a = &ctx->alloc;
  if (a->staging_coherent) return DRD_OK;
  drd_status status = DRD_OK;
  VkMappedMemoryRange r = {.sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE, .memory = a->staging_memory,
                           .offset = 0, .size = VK_WHOLE_SIZE};
  if (to_device) VK_CHECK(vkFlushMappedMemoryRanges(ctx->device, 1, &r));
  else VK_CHECK(vkInvalidateMappedMemoryRanges(ctx->device, 1, &r));
cleanup:
  return status;
}

static drd_status check_range(const drd_buffer *b, VkDeviceSize offset, VkDeviceSize size) {
  if (!b || b->block == UINT32_MAX || offset > b->size || size > b->size - offset)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "buffer transfer of %llu bytes at %llu is outside the buffer",
                    (unsigned long long)size, (unsigned long long)offset);
  return DRD_OK;
}

/* Host-visible memory may be non-coherent: flush after writes, invalidate before reads. */
static drd_status mapped_sync(drd_context *ctx, const drd_buffer *b, bool to_device) {
  if (ctx->alloc.blocks[b->block].coherent) return DRD_OK;
  drd_status status = DRD_OK;
  VkMappedMemoryRange r = {.sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE,
                           .memory = ctx->alloc.blocks[b->block].memory, .offset = 0, .size = VK_WHOLE_SIZE};
  if (to_device) VK_CHECK(vkFlushMappedMemoryRanges(ctx->device, 1, &r));
  else VK_CHECK(vkInvalidateMappedMemoryRanges(ctx->device, 1, &r));
cleanup:
  return status;
}

drd_status drd_buffer_upload(drd_context *ctx, const drd_buffer *b, VkDeviceSize offset, const void *src,
                             VkDeviceSize size) {
  drd_status status = check_range(b, offset, size);
  if (status != DRD_OK || size == 0) return status;
  if (b->mapped) {
    memcpy((char *)b->mapped + offset, src, size);
    return mapped_sync(ctx, b, true);
  }
  DRD_CHECK(staging_ensure(ctx));
  for (VkDeviceSize done = 0; done < size;) {
    VkDeviceSize n = size - done < ctx->alloc.staging_size ? size - done : ctx->alloc.staging_size;
    memcpy(ctx->alloc.staging_mapped, (const char *)src + done, n);
    DRD_CHECK(staging_sync(ctx, true));
    VkCommandBuffer cb;
    DRD_CHECK(drd_oneshot_begin(ctx, &cb));
    VkBufferCopy region = {.srcOffset = 0, .dstOffset = b->offset + offset + done, .size = n};
    vkCmdCopyBuffer(cb, ctx->alloc.staging, b->buffer, 1, &region);
    DRD_CHECK(drd_oneshot_submit_and_wait(ctx, cb));
    done += n;
  }
cleanup:
  return status;
}

drd_status drd_buffer_download(drd_context *ctx, const drd_buffer *b, VkDeviceSize offset, void *dst,
                               VkDeviceSize size) {
  drd_status status = check_range(b, offset, size);
  if (status != DRD_OK || size == 0) return status;
  if (b->mapped) {
    DRD_CHECK(mapped_sync(ctx, b, false));
    memcpy(dst, (const char *)b->mapped + offset, size);
    return DRD_OK;
  }
  DRD_CHECK(staging_ensure(ctx));
  for (VkDeviceSize done = 0; done < size;) {
    VkDeviceSize n = size - done < ctx->alloc.staging_size ? size - done : ctx->alloc.staging_size;
    VkCommandBuffer cb;
    DRD_CHECK(drd_oneshot_begin(ctx, &cb));
    VkBufferCopy region = {.srcOffset = b->offset + offset + done, .dstOffset = 0, .size = n};
    vkCmdCopyBuffer(cb, b->buffer, ctx->alloc.staging, 1, &region);
    DRD_CHECK(drd_oneshot_submit_and_wait(ctx, cb));
    DRD_CHECK(staging_sync(ctx, false));
    memcpy((char *)dst + done, ctx->alloc.staging_mapped, n);
    done += n;
  }
cleanup:
  return status;
}

drd_status drd_buffer_fill(drd_context *ctx, const drd_buffer *b, uint32_t word) {
  drd_status status = check_range(b, 0, b ? b->size : 0);
  if (status != DRD_OK) return status;
  VkCommandBuffer cb;
  DRD_CHECK(drd_oneshot_begin(ctx, &cb));
  vkCmdFillBuffer(cb, b->buffer, b->offset, align_up(b->size, 4), word);
  DRD_CHECK(drd_oneshot_submit_and_wait(ctx, cb));
cleanup:
  return status;
}
