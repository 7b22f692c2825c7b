/* VkResult names and their mapping onto drd_status. */
#include "vk_internal.h"

const char *drd_vk_result_name(VkResult r) {
  switch (r) {
#define N(x) case x: return #x;
    N(VK_SUCCESS) N(VK_NOT_READY) N(VK_TIMEOUT) N(VK_EVENT_SET) N(VK_EVENT_RESET) N(VK_INCOMPLETE)
    N(VK_ERROR_OUT_OF_HOST_MEMORY) N(VK_ERROR_OUT_OF_DEVICE_MEMORY) N(VK_ERROR_INITIALIZATION_FAILED)
    N(VK_ERROR_DEVICE_LOST) N(VK_ERROR_MEMORY_MAP_FAILED) N(VK_ERROR_LAYER_NOT_PRESENT)
    N(VK_ERROR_EXTENSION_NOT_PRESENT) N(VK_ERROR_FEATURE_NOT_PRESENT) N(VK_ERROR_INCOMPATIBLE_DRIVER)
    N(VK_ERROR_TOO_MANY_OBJECTS) N(VK_ERROR_FORMAT_NOT_SUPPORTED) N(VK_ERROR_FRAGMENTED_POOL)
    N(VK_ERROR_UNKNOWN) N(VK_ERROR_OUT_OF_POOL_MEMORY) N(VK_ERROR_INVALID_EXTERNAL_HANDLE)
    N(VK_ERROR_FRAGMENTATION) N(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS) N(VK_PIPELINE_COMPILE_REQUIRED)
#undef N
  default: return "VK_RESULT_UNKNOWN";
  }
}

drd_status drd_vk_status(VkResult r, const char *call, const char *file, int line) {
  drd_status s;
  switch (r) {
  case VK_ERROR_OUT_OF_HOST_MEMORY: s = DRD_ERROR_OUT_OF_HOST_MEMORY; break;
  case VK_ERROR_OUT_OF_DEVICE_MEMORY:
  case VK_ERROR_TOO_MANY_OBJECTS: s = DRD_ERROR_OUT_OF_DEVICE_MEMORY; break;
  case VK_ERROR_DEVICE_LOST: s = DRD_ERROR_DEVICE_LOST; break;
  case VK_TIMEOUT: s = DRD_ERROR_TIMEOUT; break;
  case VK_ERROR_INCOMPATIBLE_DRIVER:
  case VK_ERROR_INITIALIZATION_FAILED: s = DRD_ERROR_NO_DEVICE; break;
  case VK_ERROR_FEATURE_NOT_PRESENT:
  case VK_ERROR_EXTENSION_NOT_PRESENT:
  case VK_ERROR_LAYER_NOT_PRESENT: s = DRD_ERROR_UNSUPPORTED; break;
  default: s = DRD_ERROR_VULKAN; break;
  }
  const char *base = file;
  for (const char *p = file; *p; p++)
    if (*p == '/') base = p + 1;
  return drd_fail(s, "%s failed with %s (%s:%d)", call, drd_vk_result_name(r), base, line);
}
