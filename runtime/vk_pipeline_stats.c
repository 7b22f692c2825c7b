/* What the driver made of each kernel: with DRDIFF_PIPELINE_STATS=1, every pipeline is created
 * with VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR and its executables' statistics
 * (VK_KHR_pipeline_executable_properties: registers, spills, code size, as the driver names
 * them) are logged at INFO level (DRDIFF_LOG=info). A timing alone cannot tell whether a
 * kernel change cost occupancy; the register count can. Drivers without the extension
 * (lavapipe) get one notice instead. */
#include <inttypes.h>
#include <stdio.h>

#include "vk_internal.h"

bool drd_pipeline_stats_offered(VkPhysicalDevice pd) {
  const bool found = drd_vk_has_extension(pd, VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME);
  VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR fpe = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR};
  VkPhysicalDeviceFeatures2 feats = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &fpe};
  if (found) vkGetPhysicalDeviceFeatures2(pd, &feats);
  if (!found || !fpe.pipelineExecutableInfo) {
    drd_log(DRD_LOG_INFO, "DRDIFF_PIPELINE_STATS: this device does not offer VK_KHR_pipeline_executable_properties");
    return false;
  }
  return true;
}

static int format_stat(char *out, size_t cap, const VkPipelineExecutableStatisticKHR *s) {
  switch (s->format) {
  case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR: return snprintf(out, cap, "%s=%s", s->name, s->value.b32 ? "true" : "false");
  case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR: return snprintf(out, cap, "%s=%" PRId64, s->name, s->value.i64);
  case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR: return snprintf(out, cap, "%s=%" PRIu64, s->name, s->value.u64);
  case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_FLOAT64_KHR: return snprintf(out, cap, "%s=%g", s->name, s->value.f64);
  default: return snprintf(out, cap, "%s=?", s->name);
  }
}

void drd_pipeline_stats_log(drd_context *ctx, const drd_pipeline *p) {
  char spec[256] = "", line[2048];
  for (uint32_t i = 0, o = 0; i < p->n_spec && o < sizeof spec; i++)
    o += (uint32_t)snprintf(spec + o, sizeof spec - o, "%s%u", i ? "," : "", p->spec[i]);
  VkPipelineInfoKHR pi = {.sType = VK_STRUCTURE_TYPE_PIPELINE_INFO_KHR, .pipeline = p->pipeline};
  VkPipelineExecutablePropertiesKHR props[4];
  uint32_t n_exec = 4;
  for (uint32_t i = 0; i < n_exec; i++) props[i] = (VkPipelineExecutablePropertiesKHR){.sType = VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_PROPERTIES_KHR};
  VkResult r = vkGetPipelineExecutablePropertiesKHR(ctx->device, &pi, &n_exec, props);
  if (r < 0) {
    drd_log(DRD_LOG_INFO, "pipeline stats: %s (spec %s): not available (%s)", p->shader, spec, drd_vk_result_name(r));
    return;
  }
  for (uint32_t e = 0; e < n_exec; e++) {
    VkPipelineExecutableStatisticKHR stats[32];
    uint32_t n = 32;
    for (uint32_t i = 0; i < n; i++) stats[i] = (VkPipelineExecutableStatisticKHR){.sType = VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR};
    VkPipelineExecutableInfoKHR ei = {.sType = VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR, .pipeline = p->pipeline, .executableIndex = e};
    r = vkGetPipelineExecutableStatisticsKHR(ctx->device, &ei, &n, stats);
    if (r < 0) n = 0;
    size_t o = 0;
    for (uint32_t i = 0; i < n && o < sizeof line; i++) {
      if (i) o += (size_t)snprintf(line + o, sizeof line - o, ", ");
      if (o < sizeof line) o += (size_t)format_stat(line + o, sizeof line - o, &stats[i]);
    }
    if (!n) snprintf(line, sizeof line, "no statistics");
    drd_log(DRD_LOG_INFO, "pipeline stats: %s (spec %s) %s: %s", p->shader, spec, props[e].name, line);
  }
}
