/* drdiff: a portable Vulkan runtime for DrDiff diffusion language models.
 *
 * The one public header. Conventions:
 *   - every object is an opaque handle made by drd_x_create(desc, &out) and released by
 *     drd_x_destroy(x); drd_x_destroy(NULL) is a no-op;
 *   - a zeroed desc struct means "all defaults";
 *   - every call that can fail returns a drd_status; drd_status_string() names it and
 *     drd_last_error() gives the detailed message of the last failure on this thread;
 *   - the library never exits or aborts the process on a condition that can happen at run time.
 *
 * Thread safety: a drd_context may be used from one thread at a time, except
 * drd_context_cancel(), which any thread may call at any time. A drd_model is immutable after
 * loading and may be shared by several generations (one at a time per context).
 */
#ifndef DRDIFF_H
#define DRDIFF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden symbols; DRD_API marks what libdrdiff.so exports (the
 * functions below and nothing else, tests/test_install_package.py checks). */
#if defined(__GNUC__) || defined(__clang__)
#define DRD_API __attribute__((visibility("default")))
#else
#define DRD_API
#endif

typedef enum drd_status {
  DRD_OK = 0,
  DRD_ERROR_INVALID_ARGUMENT,   /* a caller passed something impossible */
  DRD_ERROR_NO_VULKAN,          /* no Vulkan loader (libvulkan.so.1) on this machine */
  DRD_ERROR_NO_DEVICE,          /* no (matching, capable) Vulkan device */
  DRD_ERROR_UNSUPPORTED,        /* the device lacks something this operation needs */
  DRD_ERROR_OUT_OF_HOST_MEMORY,
  DRD_ERROR_OUT_OF_DEVICE_MEMORY, /* includes "would not fit in the device's budget" */
  DRD_ERROR_DEVICE_LOST,
  DRD_ERROR_TIMEOUT,            /* the GPU did not finish in time (hung device) */
  DRD_ERROR_VULKAN,             /* any other Vulkan failure; the log names the call */
  DRD_ERROR_IO,                 /* a file could not be opened, read or written */
  DRD_ERROR_BAD_MODEL,          /* a model file is malformed or inconsistent */
  DRD_ERROR_CANCELLED,          /* drd_context_cancel() stopped a generation */
} drd_status;

DRD_API const char *drd_status_string(drd_status s);
/* The detailed message of the last failing call on this thread ("" if none). */
DRD_API const char *drd_last_error(void);

/* ------------------------------------------------------------------ logging */
typedef enum drd_log_level {
  DRD_LOG_ERROR = 0,
  DRD_LOG_WARN = 1,
  DRD_LOG_INFO = 2,
  DRD_LOG_DEBUG = 3,
} drd_log_level;

typedef void (*drd_log_fn)(drd_log_level level, const char *message, void *user);
/* Replaces the log sink (NULL restores stderr). Messages above max_level are dropped; the
 * default level is WARN, or DRDIFF_LOG=error|warn|info|debug. */
DRD_API void drd_log_set(drd_log_fn fn, void *user, drd_log_level max_level);

/* ------------------------------------------------------------------ devices */
#define DRD_MAX_DEVICES 16
#define DRD_MAX_COOPMAT_SHAPES 32

typedef enum drd_device_type {
  DRD_DEVICE_OTHER = 0,
  DRD_DEVICE_INTEGRATED_GPU = 1,
  DRD_DEVICE_DISCRETE_GPU = 2,
  DRD_DEVICE_VIRTUAL_GPU = 3,
  DRD_DEVICE_CPU = 4,
} drd_device_type;

typedef struct drd_coopmat_shape {
  uint32_t m, n, k;
  uint32_t a_type, b_type, c_type, result_type; /* VkComponentTypeKHR values */
  uint32_t scope;                               /* VkScopeKHR */
} drd_coopmat_shape;

/* What the engine knows of one device. When weak-device switches are set
 * (DRDIFF_DISABLE_F16, DRDIFF_DISABLE_COOPMAT, DRDIFF_DISABLE_COOPMAT2, DRDIFF_MAX_SHARED_MEMORY,
 * DRDIFF_MAX_BUFFER_RANGE) the record shows the weakened values the engine will use. */
typedef struct drd_device_caps {
  uint32_t index; /* position in Vulkan's enumeration */
  char name[256];
  uint32_t vendor_id, device_id;
  char vendor[32];
  char driver_name[256];
  char driver_info[256];
  uint32_t driver_version;
  uint32_t api_version;
  drd_device_type type;
  uint8_t pipeline_cache_uuid[16];

  uint32_t heap_count;
  uint64_t heap_size[16];
  uint64_t heap_budget[16]; /* VK_EXT_memory_budget; equals heap_size without it */
  uint32_t heap_device_local[16];
  uint64_t device_local_bytes; /* sum over device-local heaps */
  int has_memory_budget;
  /* VK_KHR_portability_subset: a layered implementation that may lack some of Vulkan (MoltenVK
   * on macOS and iOS); such devices are listed too, and the extension is enabled on them */
  int portability_subset;

  uint32_t subgroup_size;       /* the size every drdiff pipeline runs with (see below) */
  uint32_t subgroup_ops;        /* VkSubgroupFeatureFlags */
  uint32_t subgroup_stages;     /* VkShaderStageFlags */
  /* Subgroup size control (Vulkan 1.3, or VK_EXT_subgroup_size_control): the sizes the device
   * can run (both subgroup_size without it), maxComputeWorkgroupSubgroups (0 without it), and
   * whether drdiff's pipelines can require subgroup_size (subgroupSizeControl, compute in
   * requiredSubgroupSizeStages) and full subgroups (computeFullSubgroups). The kernels are
   * specialized for subgroup_size and need whole subgroups; a device whose subgroups can vary
   * (minSubgroupSize < maxSubgroupSize) only guarantees both where these are set. */
  uint32_t min_subgroup_size, max_subgroup_size, max_workgroup_subgroups;
  int subgroup_size_control;
  int full_subgroups;
  uint32_t max_shared_memory;   /* maxComputeSharedMemorySize */
  uint32_t max_workgroup_invocations;
  uint32_t max_workgroup_size[3];
  uint32_t max_workgroup_count[3];
  uint64_t max_storage_buffer_range;
  uint64_t min_storage_buffer_offset_alignment;
  uint32_t max_push_constants_size;

  int shader_float16;     /* arithmetic in f16 */
  int storage_16bit;      /* 16-bit storage buffer access */
  int shader_int8;
  int storage_8bit;
  int memory_model;       /* vulkanMemoryModel with its device scope */
  int coopmat;            /* VK_KHR_cooperative_matrix with its feature (DRDIFF_DISABLE_COOPMAT clears it) */
  uint32_t coopmat_shape_count;
  drd_coopmat_shape coopmat_shapes[DRD_MAX_COOPMAT_SHAPES];
  /* The f16 x f16 + f32 subgroup shape drdiff's cooperative-matrix kernels run with, all 0
   * when they are not used: no such shape, no f16 arithmetic or 16-bit storage, no Vulkan
   * memory model, kernels not built in (an old glslc), a CPU device (slower with them; unless
   * DRDIFF_CPU_COOPMAT=1), or a switch (DRDIFF_DISABLE_COOPMAT, DRDIFF_DISABLE_F16). */
  uint32_t coopmat_m, coopmat_n, coopmat_k;
  /* VK_NV_cooperative_matrix2's conversion of an accumulator into an A operand, row reductions
   * and per-element operations (with Vulkan 1.3's maintenance4, which that kernel's SPIR-V
   * needs), used by the attention kernel with the shape above; 0 without it, without that shape, or under DRDIFF_DISABLE_COOPMAT2 */
  int coopmat_convert;
  int timestamps;         /* compute-queue timestamps usable */
  float timestamp_period_ns;
  uint32_t timestamp_valid_bits;
  int api_ok;             /* Vulkan >= 1.2 with a compute queue: usable by drdiff */
} drd_device_caps;

/* Lists every Vulkan device (at most DRD_MAX_DEVICES). *count receives the number found,
 * *chosen the index the default policy (DRDIFF_DEVICE, then discrete > integrated > virtual
 * > CPU) would pick, or -1 when none is usable. */
DRD_API drd_status drd_enumerate_devices(drd_device_caps *caps, uint32_t max_caps, uint32_t *count,
                                         int *chosen);

/* ------------------------------------------------------------------ context */
typedef struct drd_context drd_context;

typedef struct drd_context_desc {
  /* NULL: DRDIFF_DEVICE or the default policy. Otherwise a device index ("1") or a
   * case-insensitive substring of the device name ("llvmpipe", "H100"). */
  const char *device;
  /* 1: enable VK_LAYER_KHRONOS_validation and count its messages; 0: DRDIFF_VALIDATE. */
  int validation;
  /* Pipeline-cache file; NULL: $DRDIFF_CACHE_DIR or $XDG_CACHE_HOME/drdiff or
   * ~/.cache/drdiff. "" disables the on-disk cache. */
  const char *pipeline_cache_path;
  /* GPU wait limit in milliseconds before DRD_ERROR_TIMEOUT; 0: DRDIFF_TIMEOUT_MS, else 60000
   * (600000 on CPU devices, where a large model's step legitimately takes minutes). */
  uint32_t timeout_ms;
  /* 1: time every GPU dispatch with timestamps, for drd_profile_ops(); 0: DRDIFF_PROFILE=1
   * (which also prints the table when the context is destroyed). No effect on a device
   * without compute-queue timestamps (caps.timestamps == 0). */
  int profile;
  /* The most device memory (bytes) the context allocates for weights, activations and scratch,
   * for sharing a GPU with other work; past it a call fails with DRD_ERROR_OUT_OF_DEVICE_MEMORY.
   * 0: DRDIFF_MAX_DEVICE_MEMORY (bytes, or with a K, M or G suffix), else the device's budget. */
  uint64_t max_device_bytes;
} drd_context_desc;

DRD_API drd_status drd_context_create(const drd_context_desc *desc, drd_context **out);
DRD_API void drd_context_destroy(drd_context *ctx);
DRD_API const drd_device_caps *drd_context_caps(const drd_context *ctx);
/* Number of validation messages seen since the context was made (0 without validation). */
DRD_API uint32_t drd_context_validation_messages(const drd_context *ctx);
/* Asks the generation running on ctx (if any) to stop; it returns DRD_ERROR_CANCELLED and the
 * context stays usable. The Vulkan engine hands steps to the GPU in groups of about 0.2 s of
 * work, one group queued behind the running one: those two finish on the GPU first, so a
 * cancel takes effect within about 0.4 s. Safe from any thread. */
DRD_API void drd_context_cancel(drd_context *ctx);
/* Prints the per-op GPU timestamp table collected so far (DRDIFF_PROFILE=1) to the log. */
DRD_API void drd_profile_report(drd_context *ctx);

/* One op of the GPU timestamp profile: every dispatch of that name, summed. */
typedef struct drd_profile_op {
  char name[64];
  uint64_t count;  /* dispatches timed */
  double total_ns; /* their GPU time */
} drd_profile_op;
/* Copies at most max ops of the profile collected since the context was made or last reset
 * into out (in no particular order) and returns how many ops the profile holds (0 when
 * profiling is off). Only the first 4096 dispatches of one submission are timed. */
DRD_API uint32_t drd_profile_ops(const drd_context *ctx, drd_profile_op *out, uint32_t max);
/* Empties the profile (so a caller can time one generation by itself). */
DRD_API void drd_profile_reset(drd_context *ctx);

/* ------------------------------------------------------------------ models and generation */
typedef struct drd_model drd_model;

typedef struct drd_model_desc {
  const char *path; /* GGUF file */
} drd_model_desc;

DRD_API drd_status drd_model_create(const drd_model_desc *desc, drd_model **out);
DRD_API void drd_model_destroy(drd_model *model);

/* What a model file holds, for callers that size requests or describe the model. */
typedef struct drd_model_info {
  uint32_t vocab_size;       /* V */
  uint32_t embed_dim;        /* de: the token embeddings the diffusion runs in */
  uint32_t model_dim;        /* d */
  uint32_t layers, heads;    /* L, H */
  uint32_t experts;          /* E: experts per layer */
  uint32_t experts_max;      /* kmax: the most experts one token gets */
  uint32_t context_length;   /* the length the model was trained at (longer runs: HSA is O(N)) */
  uint32_t max_tokens;       /* the most prompt + new tokens drd_generate accepts */
  uint32_t default_steps;    /* denoising steps when drd_gen_params.steps is 0 */
  uint64_t parameters;       /* elements of all weight tensors */
  int32_t bos_id, eos_id, pad_id; /* special tokens; -1 when the model has none */
} drd_model_info;
DRD_API drd_status drd_model_get_info(const drd_model *model, drd_model_info *out);

/* The model's byte-level BPE tokenizer (docs/tokenizer.md): the ids drd_generate uses for
 * prompt_text (no special token is added). Encodes len bytes of text (any bytes), writes the
 * first min(n, max_ids) ids to ids and the full count n to *n_ids: a call with max_ids 0 (ids
 * may then be NULL) asks for the size, and *n_ids > max_ids means the ids were cut short. */
DRD_API drd_status drd_tokenize(const drd_model *model, const char *text, size_t len, int32_t *ids,
                                uint32_t max_ids, uint32_t *n_ids);
/* The bytes of n_ids tokens; special tokens contribute none (drd_gen_result.text moreover
 * ends at the first EOS). Writes at most max_bytes - 1 of them and a NUL to text (when max_bytes > 0) and the full
 * length, without the NUL, to *n_bytes. An id outside [0, vocab_size) is
 * DRD_ERROR_INVALID_ARGUMENT. */
DRD_API drd_status drd_detokenize(const drd_model *model, const int32_t *ids, uint32_t n_ids, char *text,
                                  size_t max_bytes, size_t *n_bytes);

typedef enum drd_backend {
  DRD_BACKEND_DEFAULT = 0, /* vulkan where the engine supports it, else cpu */
  DRD_BACKEND_CPU = 1,
  DRD_BACKEND_VULKAN = 2,
} drd_backend;

typedef enum drd_grid {
  DRD_GRID_DEFAULT = 0, /* time_uniform */
  DRD_GRID_TIME_UNIFORM = 1,
  DRD_GRID_LOGSNR_UNIFORM = 2,
} drd_grid;

/* Generation parameters. Zero / negative means "the model file's default" where noted. */
typedef struct drd_gen_params {
  const int32_t *prompt_ids; /* P token ids, or NULL */
  uint32_t prompt_len;       /* P */
  const char *prompt_text;   /* used (tokenized) when prompt_ids is NULL */
  uint32_t new_tokens;       /* G; N = P + G must be >= 1 */
  uint32_t steps;            /* 0: file default */
  uint32_t order;            /* 0: 2 */
  drd_grid grid;
  uint64_t seed;
  float sas_gamma;           /* < 0: file default */
  float sas_temperature;     /* <= 0: file default */
  float sas_start;           /* < 0: file default */
  drd_backend backend;
  /* Vulkan submission granularity: 0 submits each denoising step as one command buffer;
   * k > 0 cuts every step after each k transformer layers, for drivers that lose the device
   * on long submissions (mobile GPUs). Results are identical either way. */
  uint32_t layers_per_submit;
  /* Called once per denoising step, in order; return non-zero to cancel. May be NULL.
   * elapsed_s: seconds from the first step's start to this step's end, on the GPU's clock
   * where the device has timestamps (the Vulkan engine sees steps end in groups, so calls
   * may come in bursts, each with its own step's time), else the host's. */
  int (*progress)(uint32_t step, uint32_t steps, double elapsed_s, void *user);
  void *progress_user;
  /* Optional, for tests and analysis: receives the final state x before rounding,
   * [P + G, de] f32 (so a caller can tell a rounding near-tie from a real difference). */
  float *state_out;
} drd_gen_params;

/* Fills p with defaults: everything from the model file, order 2, time_uniform grid. */
DRD_API void drd_gen_params_default(drd_gen_params *p);

typedef struct drd_gen_result {
  int32_t *tokens;     /* G generated ids (without the prompt); owned by the result */
  uint32_t n_tokens;
  char *text;          /* decoded text (stops at EOS, drops padding); NUL-terminated */
  double seconds_total;
  double seconds_setup;    /* Vulkan: weight upload + recording (0 when reused) */
  double seconds_per_step; /* denoising steps only */
  uint64_t device_bytes; /* device memory the generation needed (0 on the CPU backend) */
} drd_gen_result;

/* ctx may be NULL for the CPU backend; DRD_BACKEND_DEFAULT means Vulkan when ctx is given. */
DRD_API drd_status drd_generate(drd_context *ctx, const drd_model *model, const drd_gen_params *params,
                                drd_gen_result *result);
DRD_API void drd_gen_result_free(drd_gen_result *result);
/* Floats params->state_out must hold for this request ((P + G) * de), or 0 if the prompt
 * cannot be tokenized. */
DRD_API size_t drd_gen_state_size(const drd_model *model, const drd_gen_params *params);

#ifdef __cplusplus
}
#endif
#endif /* DRDIFF_H */
