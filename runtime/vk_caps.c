/* The capability record of a physical device, and the weak-device switches that make a
 * strong device behave like a weaker one so every fallback path can be tested anywhere. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vk_coopmat_compat.h"
#include "vk_internal.h"
#include "vk_shaders.h"

bool drd_vk_has_extension(VkPhysicalDevice pd, const char *name) {
  uint32_t n = 0;
  if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS || n == 0) return false;
  VkExtensionProperties *props = calloc(n, sizeof *props);
  if (!props) return false;
  bool found = false;
  if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, props) >= 0)
    for (uint32_t i = 0; i < n && !found; i++) found = !strcmp(props[i].extensionName, name);
  free(props);
  return found;
}

static const char *vendor_name(uint32_t id) {
  switch (id) {
  case 0x10DE: return "NVIDIA";
  case 0x1002: return "AMD";
  case 0x8086: return "Intel";
  case 0x13B5: return "ARM";
  case 0x5143: return "Qualcomm";
  case 0x1010: return "ImgTec";
  case 0x106B: return "Apple";
  case 0x10005: return "Mesa";
  default: return "unknown";
  }
}

static void query_coopmat(VkInstance instance, VkPhysicalDevice pd, drd_device_caps *c) {
  PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR get =
      (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR)vkGetInstanceProcAddr(
          instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
  if (!get) return;
  uint32_t n = 0;
  if (get(pd, &n, NULL) != VK_SUCCESS || n == 0) return;
  VkCooperativeMatrixPropertiesKHR props[64];
  if (n > 64) n = 64;
  for (uint32_t i = 0; i < n; i++)
    props[i] = (VkCooperativeMatrixPropertiesKHR){.sType = DRD_STYPE_COOPMAT_PROPERTIES_KHR};
  if (get(pd, &n, props) < 0) return;
  for (uint32_t i = 0; i < n && c->coopmat_shape_count < DRD_MAX_COOPMAT_SHAPES; i++) {
    c->coopmat_shapes[c->coopmat_shape_count++] = (drd_coopmat_shape){
        .m = props[i].MSize, .n = props[i].NSize, .k = props[i].KSize,
        .a_type = (uint32_t)props[i].AType, .b_type = (uint32_t)props[i].BType,
        .c_type = (uint32_t)props[i].CType, .result_type = (uint32_t)props[i].ResultType,
        .scope = (uint32_t)props[i].scope};
  }
}

enum { DRD_COMPONENT_F16 = 0, DRD_COMPONENT_F32 = 1, DRD_SCOPE_SUBGROUP = 3 }; /* VkComponentTypeKHR, VkScopeKHR */

/* The shape for drdiff's kernels: f16 A and B, f32 C and result, subgroup scope; 16x16x16
 * when offered (NVIDIA, AMD), else the one with the most work per instruction. */
static void pick_coopmat_shape(drd_device_caps *c) {
  const drd_coopmat_shape *best = NULL;
  for (uint32_t i = 0; i < c->coopmat_shape_count; i++) {
    const drd_coopmat_shape *s = &c->coopmat_shapes[i];
    if (s->a_type != DRD_COMPONENT_F16 || s->b_type != DRD_COMPONENT_F16 || s->c_type != DRD_COMPONENT_F32 ||
        s->result_type != DRD_COMPONENT_F32 || s->scope != DRD_SCOPE_SUBGROUP || !s->m || !s->n || !s->k ||
        s->m > 64 || s->n > 64 || s->k > 64 || s->k % 4)
      continue;
    bool square16 = s->m == 16 && s->n == 16 && s->k == 16;
    if (!best || square16 || (uint64_t)s->m * s->n * s->k > (uint64_t)best->m * best->n * best->k) best = s;
    if (square16) break;
  }
  if (!best) return;
  c->coopmat_m = best->m, c->coopmat_n = best->n, c->coopmat_k = best->k;
}

/* DRDIFF_DISABLE_F16, DRDIFF_DISABLE_COOPMAT, DRDIFF_DISABLE_COOPMAT2, DRDIFF_MAX_SHARED_MEMORY,
 * DRDIFF_MAX_BUFFER_RANGE: the device as a weaker one, so that every fallback path can be
 * tested anywhere */
static void apply_weak_device_switches(drd_device_caps *c) {
  if (drd_env_flag("DRDIFF_DISABLE_F16")) c->shader_float16 = c->storage_16bit = 0;
  if (drd_env_flag("DRDIFF_DISABLE_COOPMAT")) {
    c->coopmat = 0;
    c->coopmat_shape_count = 0;
  }
  if (drd_env_flag("DRDIFF_DISABLE_COOPMAT2")) c->coopmat_convert = 0;
  /* malformed values never get here: drd_env_check refused them (0: unset) */
  uint64_t smem, range;
  if (drd_env_number("DRDIFF_MAX_SHARED_MEMORY", &smem) == DRD_OK && smem &&
      smem < c->max_shared_memory)
    c->max_shared_memory = (uint32_t)smem;
  if (drd_env_number("DRDIFF_MAX_BUFFER_RANGE", &range) == DRD_OK && range &&
      range < c->max_storage_buffer_range)
    c->max_storage_buffer_range = range;
}

void drd_caps_query(VkInstance instance, VkPhysicalDevice pd, uint32_t index, bool apply_switches,
                    drd_device_caps *c) {
  memset(c, 0, sizeof *c);
  c->index = index;

  /* subgroup size control: core in Vulkan 1.3, else the extension (same structures) */
  const bool sg_ext = drd_vk_has_extension(pd, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
  VkPhysicalDeviceSubgroupSizeControlProperties sgc = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES};
  VkPhysicalDeviceDriverProperties driver = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
  VkPhysicalDeviceSubgroupProperties subgroup = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES, .pNext = &driver};
  VkPhysicalDeviceProperties2 props = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                       .pNext = &subgroup};
  VkPhysicalDeviceProperties plain;
  vkGetPhysicalDeviceProperties(pd, &plain);
  const bool sg_control = plain.apiVersion >= VK_API_VERSION_1_3 || sg_ext;
  if (sg_control) driver.pNext = &sgc;
  vkGetPhysicalDeviceProperties2(pd, &props);
  const VkPhysicalDeviceProperties *p = &props.properties;
  const VkPhysicalDeviceLimits *lim = &p->limits;

  snprintf(c->name, sizeof c->name, "%s", p->deviceName);
  c->vendor_id = p->vendorID;
  c->device_id = p->deviceID;
  snprintf(c->vendor, sizeof c->vendor, "%s", vendor_name(p->vendorID));
  snprintf(c->driver_name, sizeof c->driver_name, "%s", driver.driverName);
  snprintf(c->driver_info, sizeof c->driver_info, "%s", driver.driverInfo);
  c->driver_version = p->driverVersion;
  c->api_version = p->apiVersion;
  switch (p->deviceType) {
  case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: c->type = DRD_DEVICE_INTEGRATED_GPU; break;
  case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: c->type = DRD_DEVICE_DISCRETE_GPU; break;
  case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: c->type = DRD_DEVICE_VIRTUAL_GPU; break;
  case VK_PHYSICAL_DEVICE_TYPE_CPU: c->type = DRD_DEVICE_CPU; break;
  default: c->type = DRD_DEVICE_OTHER; break;
  }
  memcpy(c->pipeline_cache_uuid, p->pipelineCacheUUID, 16);

  c->subgroup_size = subgroup.subgroupSize;
  c->subgroup_ops = subgroup.supportedOperations;
  c->subgroup_stages = subgroup.supportedStages;
  c->min_subgroup_size = c->max_subgroup_size = c->subgroup_size;
  if (sg_control) {
    c->min_subgroup_size = sgc.minSubgroupSize;
    c->max_subgroup_size = sgc.maxSubgroupSize;
    c->max_workgroup_subgroups = sgc.maxComputeWorkgroupSubgroups;
  }
  c->max_shared_memory = lim->maxComputeSharedMemorySize;
  c->max_workgroup_invocations = lim->maxComputeWorkGroupInvocations;
  for (int i = 0; i < 3; i++) {
    c->max_workgroup_size[i] = lim->maxComputeWorkGroupSize[i];
    c->max_workgroup_count[i] = lim->maxComputeWorkGroupCount[i];
  }
  c->max_storage_buffer_range = lim->maxStorageBufferRange;
  c->min_storage_buffer_offset_alignment = lim->minStorageBufferOffsetAlignment;
  c->max_push_constants_size = lim->maxPushConstantsSize;
  c->timestamp_period_ns = lim->timestampPeriod;

  VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceVulkan11Features f11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                          .pNext = &f12};
  VkPhysicalDeviceCooperativeMatrixFeaturesKHR fcm = {.sType = DRD_STYPE_COOPMAT_FEATURES_KHR};
  bool coopmat_ext = drd_vk_has_extension(pd, VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME);
  if (coopmat_ext) f12.pNext = &fcm;
  /* VK_NV_cooperative_matrix2 and maintenance4 only on Vulkan 1.3 devices: the kernel that
   * uses them is SPIR-V 1.6 */
  VkPhysicalDeviceCooperativeMatrix2FeaturesNV fcm2 = {.sType = DRD_STYPE_COOPMAT2_FEATURES_NV};
  VkPhysicalDeviceVulkan13Features f13 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES};
  bool cm2_ext = p->apiVersion >= VK_API_VERSION_1_3 && coopmat_ext &&
                 drd_vk_has_extension(pd, VK_NV_COOPERATIVE_MATRIX_2_EXTENSION_NAME);
  if (cm2_ext) fcm.pNext = &fcm2, fcm2.pNext = &f13;
  VkPhysicalDeviceSubgroupSizeControlFeatures fsgc = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES};
  if (sg_control) fsgc.pNext = f11.pNext, f11.pNext = &fsgc;
  VkPhysicalDeviceFeatures2 feats = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f11};
  bool v12 = p->apiVersion >= VK_API_VERSION_1_2;
  if (v12) vkGetPhysicalDeviceFeatures2(pd, &feats);
  c->shader_float16 = v12 && f12.shaderFloat16;
  c->storage_16bit = v12 && f11.storageBuffer16BitAccess;
  c->shader_int8 = v12 && f12.shaderInt8;
  c->storage_8bit = v12 && f12.storageBuffer8BitAccess;
  c->coopmat = v12 && coopmat_ext && fcm.cooperativeMatrix;
  /* the required size must be one the device offers (it is its default, so it should be) */
  c->subgroup_size_control = v12 && sg_control && fsgc.subgroupSizeControl &&
                             (sgc.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                             c->subgroup_size >= c->min_subgroup_size && c->subgroup_size <= c->max_subgroup_size;
  c->full_subgroups = v12 && sg_control && fsgc.computeFullSubgroups;
  /* device scope too: the other kernels' atomics use it, which the memory model then needs */
  c->memory_model = v12 && f12.vulkanMemoryModel && f12.vulkanMemoryModelDeviceScope;
  if (c->coopmat) query_coopmat(instance, pd, c);
  /* attn_hsa_cm2.comp: the conversion, row reductions and per-element operations */
  c->coopmat_convert = c->coopmat && cm2_ext && fcm2.cooperativeMatrixConversions && fcm2.cooperativeMatrixReductions &&
                       fcm2.cooperativeMatrixPerElementOperations && f13.maintenance4;

  /* memory heaps and (where the extension exists) the budget the OS grants us */
  VkPhysicalDeviceMemoryBudgetPropertiesEXT budget = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
  c->has_memory_budget = drd_vk_has_extension(pd, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
  c->portability_subset = drd_vk_has_extension(pd, DRD_PORTABILITY_SUBSET_EXTENSION_NAME);
  VkPhysicalDeviceMemoryProperties2 mem = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2,
                                           .pNext = c->has_memory_budget ? &budget : NULL};
  vkGetPhysicalDeviceMemoryProperties2(pd, &mem);
  c->heap_count = mem.memoryProperties.memoryHeapCount;
  if (c->heap_count > 16) c->heap_count = 16;
  for (uint32_t h = 0; h < c->heap_count; h++) {
    c->heap_size[h] = mem.memoryProperties.memoryHeaps[h].size;
    c->heap_budget[h] = c->has_memory_budget ? budget.heapBudget[h] : c->heap_size[h];
    c->heap_device_local[h] = (mem.memoryProperties.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0;
    if (c->heap_device_local[h]) c->device_local_bytes += c->heap_size[h];
  }

  /* a compute queue, and whether it can write timestamps */
  uint32_t nq = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, NULL);
  VkQueueFamilyProperties qf[32];
  if (nq > 32) nq = 32;
  vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, qf);
  bool compute = false;
  for (uint32_t i = 0; i < nq; i++) {
    if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
      compute = true;
      c->timestamps = qf[i].timestampValidBits > 0 && lim->timestampComputeAndGraphics;
      c->timestamp_valid_bits = qf[i].timestampValidBits;
      break;
    }
  }
  c->api_ok = v12 && compute;

  if (apply_switches) apply_weak_device_switches(c);
  /* the kernels' SPIR-V uses f16 arithmetic, 16-bit storage and the Vulkan memory model;
   * they are absent from builds whose glslc predates GL_KHR_cooperative_matrix. A CPU device
   * emulates cooperative matrices one lane at a time: on Mesa 26.1's lavapipe the shipped
   * model's 1K step took 1328 ms with them and 577 ms on the scalar kernels (2026-12-05,
   * docs/performance.md), so a CPU device runs the scalar kernels unless DRDIFF_CPU_COOPMAT=1
   * asks for these (the tests, which run them on lavapipe) */
  bool wanted = c->type != DRD_DEVICE_CPU || (apply_switches && drd_env_flag("DRDIFF_CPU_COOPMAT"));
  if (c->coopmat && wanted && c->shader_float16 && c->storage_16bit && c->memory_model && drd_shader_find("gemm_cm"))
    pick_coopmat_shape(c);
  c->coopmat_convert = c->coopmat_convert && c->coopmat_m && drd_shader_find("attn_hsa_cm2");
}

int drd_device_choose(const drd_device_caps *caps, uint32_t n, const char *request) {
  if (!request || !*request) request = getenv("DRDIFF_DEVICE");
  if (request && *request) {
    char *end;
    long idx = strtol(request, &end, 10);
    if (!*end) return (idx >= 0 && (uint32_t)idx < n && caps[idx].api_ok) ? (int)idx : -1;
    for (uint32_t i = 0; i < n; i++) {
      size_t L = strlen(request);
      for (const char *s = caps[i].name; *s; s++)
        if (!strncasecmp(s, request, L) && caps[i].api_ok) return (int)i;
    }
    return -1;
  }
  /* discrete > integrated > virtual > CPU > other; ties: the first enumerated */
  static const int rank[] = {[DRD_DEVICE_OTHER] = 1, [DRD_DEVICE_CPU] = 2, [DRD_DEVICE_VIRTUAL_GPU] = 3,
                             [DRD_DEVICE_INTEGRATED_GPU] = 4, [DRD_DEVICE_DISCRETE_GPU] = 5};
  int best = -1;
  for (uint32_t i = 0; i < n; i++)
    if (caps[i].api_ok && (best < 0 || rank[caps[i].type] > rank[caps[best].type])) best = (int)i;
  return best;
}
