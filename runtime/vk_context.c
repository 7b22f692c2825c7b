/* Device enumeration and the drd_context: instance, chosen device, queue, allocator,
 * pipeline cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_coopmat_compat.h"
#include "vk_internal.h"

void drd_engine_release(drd_context *ctx); /* runtime/engine_cache.c */

/* Caps of every physical device of an instance (at most max). */
static drd_status list_devices(VkInstance instance, bool apply_switches, drd_device_caps *caps,
                               VkPhysicalDevice *handles, uint32_t max, uint32_t *count) {
  drd_status status = DRD_OK;
  uint32_t n = 0;
  VK_CHECK(vkEnumeratePhysicalDevices(instance, &n, NULL));
  VkPhysicalDevice pds[DRD_MAX_DEVICES];
  if (n > DRD_MAX_DEVICES) n = DRD_MAX_DEVICES;
  VkResult r = vkEnumeratePhysicalDevices(instance, &n, pds);
  if (r != VK_SUCCESS && r != VK_INCOMPLETE) VK_CHECK(r);
  if (n > max) n = max;
  for (uint32_t i = 0; i < n; i++) {
    drd_caps_query(instance, pds[i], i, apply_switches, &caps[i]);
    if (handles) handles[i] = pds[i];
  }
  *count = n;
cleanup:
  return status;
}

drd_status drd_enumerate_devices(drd_device_caps *caps, uint32_t max_caps, uint32_t *count, int *chosen) {
  if (!caps || !count) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "drd_enumerate_devices: NULL argument");
  *count = 0;
  if (chosen) *chosen = -1;
  drd_status status = drd_env_check();
  if (status == DRD_OK) status = drd_vk_load();
  if (status != DRD_OK) return status;
  VkInstance instance;
  VkDebugUtilsMessengerEXT messenger;
  volatile uint32_t unused = 0;
  status = drd_vk_instance_create(false, &instance, &messenger, &unused);
  if (status != DRD_OK) return status;
  status = list_devices(instance, true, caps, NULL, max_caps, count);
  if (status == DRD_OK && chosen) *chosen = drd_device_choose(caps, *count, NULL);
  vkDestroyInstance(instance, NULL);
  return status;
}

static drd_status create_device(drd_context *ctx) {
  drd_status status = DRD_OK;
  const drd_device_caps *c = &ctx->caps;
  uint32_t nq = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(ctx->physical, &nq, NULL);
  VkQueueFamilyProperties qf[32];
  if (nq > 32) nq = 32;
  vkGetPhysicalDeviceQueueFamilyProperties(ctx->physical, &nq, qf);
  /* Prefer a compute queue family that also does graphics: it is the "universal" queue,
   * which on most drivers is the one with the best compute throughput and timestamps. */
  int family = -1;
  for (uint32_t i = 0; i < nq && family < 0; i++)
    if ((qf[i].queueFlags & (VK_QUEUE_COMPUTE_BIT | VK_QUEUE_GRAPHICS_BIT)) ==
        (VK_QUEUE_COMPUTE_BIT | VK_QUEUE_GRAPHICS_BIT))
      family = (int)i;
  for (uint32_t i = 0; i < nq && family < 0; i++)
    if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) family = (int)i;
  if (family < 0) return drd_fail(DRD_ERROR_NO_DEVICE, "%s has no compute queue", c->name);
  ctx->queue_family = (uint32_t)family;
  /* the caps describe the first compute family; timestamps are written on this one */
  ctx->caps.timestamp_valid_bits = qf[family].timestampValidBits;
  if (!qf[family].timestampValidBits) ctx->caps.timestamps = 0;

  const char *exts[8];
  uint32_t n_exts = 0;
  /* cooperative matrices only when drdiff's kernels will use them (caps.coopmat_m): Debian
   * 12's validation layer (1.3.239) predates the extension and reports any device that
   * enables it, which would fail the CI tests on devices where the kernels are not built */
  bool coopmat = c->coopmat_m != 0;
  VkPhysicalDeviceCooperativeMatrixFeaturesKHR fcm = {
      .sType = DRD_STYPE_COOPMAT_FEATURES_KHR,
      .cooperativeMatrix = VK_TRUE,
  };
  /* the accumulator-to-A conversion, row reductions and per-element operations
   * (attn_hsa_cm2.comp), whose SPIR-V 1.6 declares its local size by id: maintenance4 */
  const bool convert = coopmat && c->coopmat_convert;
  /* the subgroup size and whole subgroups every pipeline requires (vk_pipeline.c): Vulkan
   * 1.3's features, or the extension's on a 1.2 device */
  const bool sg_control = c->subgroup_size_control || c->full_subgroups;
  const bool v13 = c->api_version >= VK_API_VERSION_1_3;
  VkPhysicalDeviceVulkan13Features f13 = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES,
      .maintenance4 = convert ? VK_TRUE : VK_FALSE,
      .subgroupSizeControl = c->subgroup_size_control ? VK_TRUE : VK_FALSE,
      .computeFullSubgroups = c->full_subgroups ? VK_TRUE : VK_FALSE,
  };
  VkPhysicalDeviceSubgroupSizeControlFeatures fsgc = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES,
      .subgroupSizeControl = f13.subgroupSizeControl,
      .computeFullSubgroups = f13.computeFullSubgroups,
  };
  void *tail = (convert || sg_control) && v13 ? (void *)&f13 : sg_control ? (void *)&fsgc : NULL;
  if (sg_control && !v13) exts[n_exts++] = VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME;
  VkPhysicalDeviceCooperativeMatrix2FeaturesNV fcm2 = {
      .sType = DRD_STYPE_COOPMAT2_FEATURES_NV,
      .pNext = tail,
      .cooperativeMatrixReductions = VK_TRUE,
      .cooperativeMatrixConversions = VK_TRUE,
      .cooperativeMatrixPerElementOperations = VK_TRUE,
  };
  if (convert) tail = &fcm2;
  fcm.pNext = tail;
  if (coopmat) tail = &fcm;
  VkPhysicalDeviceVulkan12Features f12 = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
      .pNext = tail,
      .shaderFloat16 = c->shader_float16 ? VK_TRUE : VK_FALSE,
      .shaderInt8 = c->shader_int8 ? VK_TRUE : VK_FALSE,
      .storageBuffer8BitAccess = c->storage_8bit ? VK_TRUE : VK_FALSE,
      .timelineSemaphore = VK_TRUE,
      /* the coopmat kernels' SPIR-V uses the memory model; the other kernels' atomics then
       * need its device scope */
      .vulkanMemoryModel = coopmat ? VK_TRUE : VK_FALSE,
      .vulkanMemoryModelDeviceScope = coopmat ? VK_TRUE : VK_FALSE,
  };
  VkPhysicalDeviceVulkan11Features f11 = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
      .pNext = &f12,
      .storageBuffer16BitAccess = c->storage_16bit ? VK_TRUE : VK_FALSE,
  };
  VkPhysicalDeviceFeatures2 feats = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f11};
  if (c->has_memory_budget) exts[n_exts++] = VK_EXT_MEMORY_BUDGET_EXTENSION_NAME;
  /* the spec requires enabling it wherever a device offers it */
  if (c->portability_subset) exts[n_exts++] = DRD_PORTABILITY_SUBSET_EXTENSION_NAME;
  if (coopmat) exts[n_exts++] = VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME;
  if (convert) exts[n_exts++] = VK_NV_COOPERATIVE_MATRIX_2_EXTENSION_NAME;
  VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR fpe = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR,
      .pNext = feats.pNext,
      .pipelineExecutableInfo = VK_TRUE,
  };
  ctx->pipeline_stats = drd_env_flag("DRDIFF_PIPELINE_STATS") && drd_pipeline_stats_offered(ctx->physical);
  if (ctx->pipeline_stats) {
    feats.pNext = &fpe;
    exts[n_exts++] = VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME;
  }
  float priority = 1.0f;
  VkDeviceQueueCreateInfo qci = {
      .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
      .queueFamilyIndex = ctx->queue_family,
      .queueCount = 1,
      .pQueuePriorities = &priority,
  };
  VkDeviceCreateInfo dci = {
      .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
      .pNext = &feats,
      .queueCreateInfoCount = 1,
      .pQueueCreateInfos = &qci,
      .enabledExtensionCount = n_exts,
      .ppEnabledExtensionNames = exts,
  };
  VK_CHECK(vkCreateDevice(ctx->physical, &dci, NULL, &ctx->device));
  vkGetDeviceQueue(ctx->device, ctx->queue_family, 0, &ctx->queue);
  VkCommandPoolCreateInfo pci = {
      .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
      .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
      .queueFamilyIndex = ctx->queue_family,
  };
  VK_CHECK(vkCreateCommandPool(ctx->device, &pci, NULL, &ctx->command_pool));
cleanup:
  return status;
}

drd_status drd_context_create(const drd_context_desc *desc, drd_context **out) {
  if (!out) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "drd_context_create: out is NULL");
  *out = NULL;
  drd_context_desc defaults = {0};
  if (!desc) desc = &defaults;
  /* the limit on device memory: desc's, else DRDIFF_MAX_DEVICE_MEMORY's, else none (0) */
  uint64_t limit = desc->max_device_bytes, timeout_env = 0;
  drd_status status = drd_env_check();
  if (status == DRD_OK && !limit) status = drd_env_number("DRDIFF_MAX_DEVICE_MEMORY", &limit);
  if (status == DRD_OK) status = drd_env_number("DRDIFF_TIMEOUT_MS", &timeout_env);
  if (status == DRD_OK) status = drd_vk_load();
  if (status != DRD_OK) return status;
  drd_context *ctx = calloc(1, sizeof *ctx);
  if (!ctx) return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "drd_context_create: out of memory");

  bool validation = desc->validation || drd_env_flag("DRDIFF_VALIDATE");
  DRD_CHECK(drd_vk_instance_create(validation, &ctx->instance, &ctx->messenger, &ctx->validation_messages));
  ctx->destroy_messenger = (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
      ctx->instance, "vkDestroyDebugUtilsMessengerEXT");

  drd_device_caps caps[DRD_MAX_DEVICES];
  VkPhysicalDevice handles[DRD_MAX_DEVICES];
  uint32_t n = 0;
  DRD_CHECK(list_devices(ctx->instance, true, caps, handles, DRD_MAX_DEVICES, &n));
  if (n == 0) {
    status = drd_fail(DRD_ERROR_NO_DEVICE, "no Vulkan device found (for a CPU device install mesa-vulkan-drivers)");
    goto cleanup;
  }
  const char *request = desc->device ? desc->device : getenv("DRDIFF_DEVICE");
  int chosen = drd_device_choose(caps, n, request);
  if (chosen < 0) {
    status = request && *request
                 ? drd_fail(DRD_ERROR_NO_DEVICE, "no usable Vulkan device matches '%s' (see `drdiff info`)", request)
                 : drd_fail(DRD_ERROR_NO_DEVICE, "no Vulkan 1.2 device with a compute queue");
    goto cleanup;
  }
  ctx->caps = caps[chosen];
  ctx->physical = handles[chosen];
  vkGetPhysicalDeviceMemoryProperties(ctx->physical, &ctx->memory_properties);
  DRD_CHECK(create_device(ctx));

  uint32_t timeout_ms = desc->timeout_ms;
  /* a CPU implementation (lavapipe) runs a large model's step for minutes without being hung;
   * a GPU that takes a minute for one submission is */
  if (!timeout_ms) timeout_ms = timeout_env ? (uint32_t)timeout_env : ctx->caps.type == DRD_DEVICE_CPU ? 600000 : 60000;
  ctx->timeout_ns = (uint64_t)timeout_ms * 1000000ull;
  ctx->profile = (desc->profile || drd_env_flag("DRDIFF_PROFILE")) && ctx->caps.timestamps;
  DRD_CHECK(drd_alloc_init(ctx, limit));
  if (desc->pipeline_cache_path)
    snprintf(ctx->pipeline_cache_path, sizeof ctx->pipeline_cache_path, "%s", desc->pipeline_cache_path);
  else
    ctx->pipeline_cache_path[0] = '\x01'; /* "use the default location" */
  DRD_CHECK(drd_pipeline_cache_load(ctx));
  drd_log(DRD_LOG_INFO, "using device %u: %s (%s)", ctx->caps.index, ctx->caps.name, ctx->caps.driver_name);
  *out = ctx;
  return DRD_OK;
cleanup:
  drd_context_destroy(ctx);
  return status;
}

void drd_context_destroy(drd_context *ctx) {
  if (!ctx) return;
  if (ctx->lost) {
    /* after a timeout the GPU may still be running our work and vkDeviceWaitIdle could block
     * forever; destroying objects it uses is undefined. Leave the Vulkan objects to process
     * exit and free only host memory. */
    drd_log(DRD_LOG_WARN, "context destroyed after a GPU timeout or device loss: its Vulkan objects are leaked");
    free(ctx->profile_entries);
    free(ctx);
    return;
  }
  if (ctx->device) {
    vkDeviceWaitIdle(ctx->device);
    drd_engine_release(ctx);
    /* the exit table is DRDIFF_PROFILE's; desc.profile callers read drd_profile_ops */
    if (ctx->profile && drd_env_flag("DRDIFF_PROFILE")) drd_profile_report(ctx);
    if (ctx->pipeline_cache) {
      drd_pipeline_cache_save(ctx);
      vkDestroyPipelineCache(ctx->device, ctx->pipeline_cache, NULL);
    }
    drd_pipelines_destroy(ctx);
    drd_alloc_destroy(ctx);
    if (ctx->command_pool) vkDestroyCommandPool(ctx->device, ctx->command_pool, NULL);
    vkDestroyDevice(ctx->device, NULL);
  }
  if (ctx->messenger && ctx->destroy_messenger) ctx->destroy_messenger(ctx->instance, ctx->messenger, NULL);
  if (ctx->instance) vkDestroyInstance(ctx->instance, NULL);
  free(ctx->profile_entries);
  free(ctx);
}

void drd_context_cancel(drd_context *ctx) {
  if (ctx) ctx->cancel = 1;
}

const drd_device_caps *drd_context_caps(const drd_context *ctx) { return ctx ? &ctx->caps : NULL; }

uint32_t drd_context_validation_messages(const drd_context *ctx) {
  return ctx ? ctx->validation_messages : 0;
}

void drd_caps_refresh_budget(drd_context *ctx) {
  if (!ctx->caps.has_memory_budget) return;
  VkPhysicalDeviceMemoryBudgetPropertiesEXT budget = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
  VkPhysicalDeviceMemoryProperties2 mem = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2,
                                           .pNext = &budget};
  vkGetPhysicalDeviceMemoryProperties2(ctx->physical, &mem);
  for (uint32_t h = 0; h < ctx->caps.heap_count; h++) ctx->caps.heap_budget[h] = budget.heapBudget[h];
}
