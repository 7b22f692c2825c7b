/* The Vulkan engine's internal interface: the context, device memory, pipelines and
 * recorded command sequences. Everything under runtime/ and the kernel wrappers use it. */
#ifndef DRD_VK_INTERNAL_H
#define DRD_VK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <volk.h>

#include "drdiff.h"
#include "log.h"

/* ------------------------------------------------------------------ errors */
const char *drd_vk_result_name(VkResult r);
/* Logs `call` at file:line with the VkResult's name and maps it to a drd_status. */
drd_status drd_vk_status(VkResult r, const char *call, const char *file, int line);

/* One check macro for every Vulkan call: on failure it records the status in the enclosing
 * function's `status` variable and jumps to its single `cleanup` label. */
#define VK_CHECK(call)                                                   \
  do {                                                                   \
    VkResult vk_check_r_ = (call);                                       \
    if (vk_check_r_ != VK_SUCCESS) {                                     \
      status = drd_vk_status(vk_check_r_, #call, __FILE__, __LINE__);    \
      goto cleanup;                                                      \
    }                                                                    \
  } while (0)

/* The same for drd_status-returning calls. */
#define DRD_CHECK(call)                \
  do {                                 \
    status = (call);                   \
    if (status != DRD_OK) goto cleanup; \
  } while (0)

/* ------------------------------------------------------------------ memory */
/* A sub-range of one large device allocation (tensors never own a VkDeviceMemory), or a
 * small host-visible buffer of its own (drd_buffer_create_host). */
typedef struct drd_buffer {
  VkBuffer buffer;      /* the block's buffer */
  VkDeviceSize offset;  /* bytes from the block's start, aligned for storage descriptors */
  VkDeviceSize size;    /* bytes requested */
  uint32_t block;       /* index of the block in the allocator; UINT32_MAX = none */
  void *mapped;         /* host pointer when the block is host-visible (UMA, lavapipe) */
} drd_buffer;

typedef struct drd_mem_block drd_mem_block;

typedef struct drd_allocator {
  drd_mem_block *blocks;
  uint32_t n_blocks, cap_blocks;
  uint32_t memory_type;       /* device-local type used for tensors */
  uint32_t heap;
  bool host_visible;          /* tensors can be written by memcpy */
  VkDeviceSize block_size;    /* default block size */
  VkDeviceSize alignment;     /* of every suballocation */
  VkDeviceSize bytes_in_use, bytes_allocated;
  VkDeviceSize peak_in_use;   /* highest bytes_in_use since a caller last set it */
  VkDeviceSize limit;         /* drd_context_desc.max_device_bytes or DRDIFF_MAX_DEVICE_MEMORY (0: none) */
  /* staging for discrete GPUs */
  VkBuffer staging;
  VkDeviceMemory staging_memory;
  void *staging_mapped;
  VkDeviceSize staging_size;
  bool staging_coherent;
} drd_allocator;

/* ------------------------------------------------------------------ pipelines */
#define DRD_MAX_SPEC 16
#define DRD_MAX_BINDINGS 12

typedef struct drd_pipeline_desc {
  const char *shader;      /* name of shaders/<name>.comp */
  uint32_t n_bindings;     /* storage buffers at bindings 0..n-1 of set 0 */
  uint32_t push_size;      /* bytes of push constants (0 = none) */
  uint32_t n_spec;         /* specialization constants 0..n-1, all 32-bit; n >= 1: constant 0 */
  const uint32_t *spec;    /* is every shader's workgroup size (local_size_x_id = 0; y = z = 1) */
} drd_pipeline_desc;

typedef struct drd_pipeline {
  char shader[64];
  uint32_t spec[DRD_MAX_SPEC];
  uint32_t n_spec, n_bindings, push_size;
  uint32_t required_subgroup_size; /* what creation asked for: 0 none */
  bool full_subgroups;             /* ... and whether it asked for whole subgroups */
  VkDescriptorSetLayout set_layout;
  VkPipelineLayout layout;
  VkPipeline pipeline;
  struct drd_pipeline *next;
} drd_pipeline;

/* ------------------------------------------------------------------ profiling */
typedef struct drd_profile_entry {
  char name[64];
  uint64_t count;
  double total_ns;
} drd_profile_entry;

/* ------------------------------------------------------------------ the context */
struct drd_context {
  VkInstance instance;
  VkDebugUtilsMessengerEXT messenger;
  /* volk's globals follow the newest instance, which may lack debug utils: keep our own */
  PFN_vkDestroyDebugUtilsMessengerEXT destroy_messenger;
  VkPhysicalDevice physical;
  VkDevice device;
  VkQueue queue;
  uint32_t queue_family;
  drd_device_caps caps;        /* effective capabilities (weak-device switches applied) */
  VkPhysicalDeviceMemoryProperties memory_properties;
  drd_allocator alloc;
  VkPipelineCache pipeline_cache;
  char pipeline_cache_path[1024];
  drd_pipeline *pipelines;     /* created on first use, kept until destroy */
  VkCommandPool command_pool;
  uint64_t timeout_ns;
  bool lost;                   /* a timeout or device loss happened: refuse further work */
  volatile uint32_t validation_messages;
  bool profile;
  bool pipeline_stats;         /* DRDIFF_PIPELINE_STATS on a device that offers them */
  volatile int cancel;         /* drd_context_cancel: polled between denoising steps */
  struct drd_engine_cache *engine; /* weights and recorded session of the last generation */
  drd_profile_entry *profile_entries;
  uint32_t n_profile, cap_profile;
};

/* ------------------------------------------------------------------ environment (env.c) */
/* Whether NAME is set to anything but "" or "0". */
bool drd_env_flag(const char *name);
/* The numeric switch NAME (env.c's table: a whole number from 1 to its maximum, sizes also
 * with a K, M or G suffix: KiB, MiB, GiB); *out = 0 where it is unset or empty; INVALID_ARGUMENT
 * naming it where it is anything else. */
drd_status drd_env_number(const char *name, uint64_t *out);
/* Every numeric DRDIFF_* switch well formed (drd_env_number), else the first that is not. */
drd_status drd_env_check(void);

/* ------------------------------------------------------------------ instance / device */
/* Loads the Vulkan loader through volk once per process. */
drd_status drd_vk_load(void);
drd_status drd_vk_instance_create(bool validation, VkInstance *instance,
                                  VkDebugUtilsMessengerEXT *messenger, volatile uint32_t *counter);
/* Whether the physical device offers the named device extension. */
bool drd_vk_has_extension(VkPhysicalDevice pd, const char *name);
/* Its name macro lives in vulkan_beta.h, which drdiff does not include */
#define DRD_PORTABILITY_SUBSET_EXTENSION_NAME "VK_KHR_portability_subset"
/* Fills caps for one physical device; apply_switches applies the DRDIFF_DISABLE_* and
 * DRDIFF_MAX_* environment switches. */
void drd_caps_query(VkInstance instance, VkPhysicalDevice pd, uint32_t index, bool apply_switches,
                    drd_device_caps *caps);
/* The default choice among caps[0..n): DRDIFF_DEVICE or `request`, else by device type. */
int drd_device_choose(const drd_device_caps *caps, uint32_t n, const char *request);
/* Refreshes caps' heap budgets (VK_EXT_memory_budget). */
void drd_caps_refresh_budget(drd_context *ctx);

/* ------------------------------------------------------------------ memory */
/* limit: the most device-local memory the context may hold (0: only the device's budget). */
drd_status drd_alloc_init(drd_context *ctx, uint64_t limit);
/* The device-local bytes this context may hold in all: the heap's current budget
 * (VK_EXT_memory_budget, else its size), or the context's limit where that is lower. */
uint64_t drd_alloc_budget(drd_context *ctx);
void drd_alloc_destroy(drd_context *ctx);
drd_status drd_buffer_create(drd_context *ctx, VkDeviceSize size, drd_buffer *out);
/* A small buffer in host-visible, host-coherent memory (its own allocation, not counted
 * against the device heap): what the host writes before a recorded sequence runs (a seed,
 * a prompt) or reads after it (tokens) by memcpy. On a discrete GPU drd_buffer_upload and
 * drd_buffer_download of device memory each need a one-shot copy with its own submission
 * and wait: 0.5 - 1 ms of host CPU apiece on an H200 (docs/performance.md). Kernels bind it
 * like any buffer; on a discrete GPU their accesses cross the bus, so keep it to what the
 * host exchanges. drd_buffer_destroy frees it. */
drd_status drd_buffer_create_host(drd_context *ctx, VkDeviceSize size, drd_buffer *out);
void drd_buffer_destroy(drd_context *ctx, drd_buffer *b);
/* Copies host data into / out of a buffer (blocking). */
drd_status drd_buffer_upload(drd_context *ctx, const drd_buffer *b, VkDeviceSize offset,
                             const void *src, VkDeviceSize size);
drd_status drd_buffer_download(drd_context *ctx, const drd_buffer *b, VkDeviceSize offset,
                               void *dst, VkDeviceSize size);
/* Fills a buffer with a repeated 32-bit word (tests poison outputs with NaN patterns). */
drd_status drd_buffer_fill(drd_context *ctx, const drd_buffer *b, uint32_t word);

/* ------------------------------------------------------------------ pipelines */
drd_status drd_pipeline_get(drd_context *ctx, const drd_pipeline_desc *desc, drd_pipeline **out);
void drd_pipelines_destroy(drd_context *ctx);
/* vk_pipeline_stats.c (DRDIFF_PIPELINE_STATS): whether the device offers the driver's
 * statistics (else a notice); logs one new pipeline's statistics */
bool drd_pipeline_stats_offered(VkPhysicalDevice pd);
void drd_pipeline_stats_log(drd_context *ctx, const drd_pipeline *p);
drd_status drd_pipeline_cache_load(drd_context *ctx);
drd_status drd_pipeline_cache_save(drd_context *ctx);

/* ------------------------------------------------------------------ recorded command sequences */
/* A buffer range as one dispatch sees it: `range` bytes from `offset` inside b. */
typedef struct drd_bind {
  const drd_buffer *buf;
  VkDeviceSize offset;
  VkDeviceSize range;
  bool write;
} drd_bind;

static inline drd_bind drd_in(const drd_buffer *b) { return (drd_bind){b, 0, b->size, false}; }
static inline drd_bind drd_out(const drd_buffer *b) { return (drd_bind){b, 0, b->size, true}; }
static inline drd_bind drd_in_range(const drd_buffer *b, VkDeviceSize off, VkDeviceSize n) {
  return (drd_bind){b, off, n, false};
}
static inline drd_bind drd_out_range(const drd_buffer *b, VkDeviceSize off, VkDeviceSize n) {
  return (drd_bind){b, off, n, true};
}

typedef struct drd_seq drd_seq;

/* Starts recording. A sequence is recorded once and may be submitted many times; the
 * buffers it binds must outlive it. */
drd_status drd_seq_begin(drd_context *ctx, drd_seq **out);
/* Records one dispatch. A barrier is inserted automatically when a binding overlaps a range
 * written (or, for a write, read) since the last barrier. `op` names the dispatch in the
 * profile. Every bound range must be <= caps.max_storage_buffer_range. */
drd_status drd_seq_dispatch(drd_seq *s, drd_pipeline *p, const drd_bind *binds, uint32_t n_binds,
                            const void *push, uint32_t gx, uint32_t gy, uint32_t gz, const char *op);
/* Records one dispatch whose workgroup counts the GPU reads at execution time from the
 * VkDispatchIndirectCommand (3 x uint32) at `args_offset` bytes into `args` (a multiple of
 * 4). That range counts as a read for the automatic barriers, so a count written by an
 * earlier dispatch of the sequence is seen. The counts must respect the device's limits:
 * the writer of the arguments guarantees it, as nothing can check them at record time. */
drd_status drd_seq_dispatch_indirect(drd_seq *s, drd_pipeline *p, const drd_bind *binds, uint32_t n_binds,
                                     const void *push, const drd_buffer *args, VkDeviceSize args_offset,
                                     const char *op);
/* The two halves of every dispatch, shared by vk_command.c and vk_command_indirect.c:
 * begin validates the bindings, places a barrier on a hazard (extra_read, when not NULL,
 * is a range read without a descriptor), binds pipeline, descriptors and push constants
 * and returns the command buffer for the dispatch command; end closes the profiling. */
drd_status drd_seq_dispatch_begin(drd_seq *s, drd_pipeline *p, const drd_bind *binds, uint32_t n_binds,
                                  const drd_bind *extra_read, const void *push, const char *op,
                                  VkCommandBuffer *cb);
void drd_seq_dispatch_end(drd_seq *s);
drd_status drd_seq_end(drd_seq *s);
drd_context *drd_seq_context(const drd_seq *s);
/* Submits the recorded sequence and waits (at most the context's timeout). */
drd_status drd_seq_run(drd_seq *s);
/* drd_seq_run in two halves, so that the next sequence can be queued before this one is
 * waited for: the GPU then runs them back to back instead of idling while the host wakes
 * up from a fence. Sequences run in submission order, and each ends with a barrier that
 * makes its writes visible to the next one's dispatches. A sequence must be waited for
 * before it is submitted again; waiting for one not in flight does nothing. */
drd_status drd_seq_submit(drd_seq *s);
/* Submits n sequences in one vkQueueSubmit (each call costs the host tens of microseconds on
 * some drivers). The group shares one fence, so wait for its members, and destroy them, as a
 * group: the last member's fence is what every member's wait waits for (wait for the last one
 * first and the others cost nothing). */
drd_status drd_seq_submit_group(drd_seq *const *seqs, uint32_t n);
drd_status drd_seq_wait(drd_seq *s);
/* Whether drd_seq_wait would return at once: s is not in flight, its group's fence has
 * signalled, or the device is lost (the wait then reports it). Never blocks. */
bool drd_seq_finished(const drd_seq *s);
/* Records a device timestamp into query `query` of pool (a VK_QUERY_TYPE_TIMESTAMP pool, where
 * caps.timestamps) once all the work queued before it has finished. */
void drd_seq_stamp(drd_seq *s, VkQueryPool pool, uint32_t query);
/* Seconds between two device timestamps (wrapping at the queue's valid bits). */
double drd_ticks_seconds(const drd_context *ctx, uint64_t from, uint64_t to);
void drd_seq_destroy(drd_seq *s);

/* The largest byte range one descriptor may cover on this context, rounded down to the
 * storage-offset alignment so that chunked bindings start aligned. */
VkDeviceSize drd_max_bind_range(const drd_context *ctx);

/* One-shot command buffers for transfers: begin, record, then submit and wait (with the
 * context's timeout). submit_and_wait frees the command buffer in every case. */
drd_status drd_oneshot_begin(drd_context *ctx, VkCommandBuffer *cb);
drd_status drd_oneshot_submit_and_wait(drd_context *ctx, VkCommandBuffer cb);
/* Waits for a fence with the context's timeout; a timeout or loss marks the context lost. */
drd_status drd_fence_wait(drd_context *ctx, VkFence fence);

/* ------------------------------------------------------------------ profiling */
void drd_profile_add(drd_context *ctx, const char *op, double ns);

#endif
