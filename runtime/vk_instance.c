/* Loading Vulkan and creating the instance, with the Khronos validation layer and a debug
 * messenger that counts every message when validation is requested. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "vk_internal.h"

/* volk's function pointers are process-wide: the loader's entry points are found once (any
 * thread may make the first context), and the instance-level pointers are written once, by the
 * first instance, under a lock every instance takes before using them. Writing them again for
 * each instance, as volkLoadInstance does, raced with the threads already calling through them
 * (tests/test_gpu_threads.c under ThreadSanitizer). The pointers are the loader's trampolines,
 * which dispatch on their first argument, so those of the first instance serve every instance;
 * the one extension instance function drdiff calls, the debug messenger's, is looked up per
 * instance, as only instances with validation offer it. */
static pthread_once_t g_loader_once = PTHREAD_ONCE_INIT;
static VkResult g_loader_result;
static void load_loader(void) { g_loader_result = volkInitialize(); }

static pthread_mutex_t g_instance_lock = PTHREAD_MUTEX_INITIALIZER;
static bool g_instance_functions;
static void load_instance_functions(VkInstance instance) {
  pthread_mutex_lock(&g_instance_lock);
  if (!g_instance_functions) volkLoadInstance(instance);
  g_instance_functions = true;
  pthread_mutex_unlock(&g_instance_lock);
}

drd_status drd_vk_load(void) {
  pthread_once(&g_loader_once, load_loader);
  if (g_loader_result != VK_SUCCESS)
    return drd_fail(DRD_ERROR_NO_VULKAN,
                    "no Vulkan loader found (libvulkan.so.1); install libvulkan1 and a Vulkan "
                    "driver, e.g. mesa-vulkan-drivers (scripts/install-deps.sh does)");
  if (volkGetInstanceVersion() < VK_API_VERSION_1_2)
    return drd_fail(DRD_ERROR_NO_VULKAN, "the Vulkan loader is older than 1.2");
  return DRD_OK;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL on_validation_message(
    VkDebugUtilsMessageSeverityFlagBitsEXT severity, VkDebugUtilsMessageTypeFlagsEXT type,
    const VkDebugUtilsMessengerCallbackDataEXT *data, void *user) {
  (void)type;
  volatile uint32_t *counter = user;
  (*counter)++;
  drd_log(severity >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT ? DRD_LOG_ERROR : DRD_LOG_WARN,
          "validation: %s", data->pMessage ? data->pMessage : "(no message)");
  return VK_FALSE;
}

static bool instance_extension_present(const char *name) {
  uint32_t n = 0;
  if (vkEnumerateInstanceExtensionProperties(NULL, &n, NULL) != VK_SUCCESS || n == 0) return false;
  VkExtensionProperties props[256];
  if (n > 256) n = 256;
  if (vkEnumerateInstanceExtensionProperties(NULL, &n, props) < 0) return false;
  for (uint32_t i = 0; i < n; i++)
    if (!strcmp(props[i].extensionName, name)) return true;
  return false;
}

static bool layer_present(const char *name) {
  uint32_t n = 0;
  if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0) return false;
  VkLayerProperties props[128];
  if (n > 128) n = 128;
  if (vkEnumerateInstanceLayerProperties(&n, props) < 0) return false;
  for (uint32_t i = 0; i < n; i++)
    if (!strcmp(props[i].layerName, name)) return true;
  return false;
}

drd_status drd_vk_instance_create(bool validation, VkInstance *instance,
                                  VkDebugUtilsMessengerEXT *messenger, volatile uint32_t *counter) {
  drd_status status = DRD_OK;
  *instance = VK_NULL_HANDLE;
  *messenger = VK_NULL_HANDLE;
  const char *layers[1] = {"VK_LAYER_KHRONOS_validation"};
  const char *exts[3];
  uint32_t n_exts = 0;
  /* Loaders since 1.3.216 list portability implementations (MoltenVK on macOS and iOS) only
   * to an instance that asks for them */
  VkInstanceCreateFlags flags = 0;
  if (instance_extension_present(VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
    exts[n_exts++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
    flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
  }
  if (validation) {
    if (!layer_present(layers[0]))
      return drd_fail(DRD_ERROR_UNSUPPORTED,
                      "validation requested but VK_LAYER_KHRONOS_validation is not installed "
                      "(Debian: vulkan-validationlayers)");
    exts[n_exts++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
    exts[n_exts++] = VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME;
  }
  /* Report every validation finding, including synchronization hazards and best practices
   * that matter for compute, so tests catch them. */
  VkValidationFeatureEnableEXT enables[] = {VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT};
  VkValidationFeaturesEXT features = {
      .sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT,
      .enabledValidationFeatureCount = 1,
      .pEnabledValidationFeatures = enables,
  };
  VkDebugUtilsMessengerCreateInfoEXT mci = {
      .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
      .pNext = &features,
      .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                         VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
      .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                     VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                     VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
      .pfnUserCallback = on_validation_message,
      .pUserData = (void *)counter,
  };
  VkApplicationInfo app = {
      .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
      .pApplicationName = "drdiff",
      .applicationVersion = VK_MAKE_API_VERSION(0, 0, 1, 0),
      .pEngineName = "drdiff",
      .engineVersion = VK_MAKE_API_VERSION(0, 0, 1, 0),
      .apiVersion = VK_API_VERSION_1_3,
  };
  VkInstanceCreateInfo ici = {
      .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
      .pNext = validation ? &mci : NULL,
      .flags = flags,
      .pApplicationInfo = &app,
      .enabledLayerCount = validation ? 1 : 0,
      .ppEnabledLayerNames = layers,
      .enabledExtensionCount = n_exts,
      .ppEnabledExtensionNames = exts,
  };
  VkResult r = vkCreateInstance(&ici, NULL, instance);
  if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
    return drd_fail(DRD_ERROR_NO_DEVICE, "the Vulkan loader found no driver (vkCreateInstance: "
                                         "VK_ERROR_INCOMPATIBLE_DRIVER); install one, e.g. mesa-vulkan-drivers "
                                         "for lavapipe on the CPU, or check VK_DRIVER_FILES / VK_ICD_FILENAMES");
  VK_CHECK(r);
  /* Device functions go through the loader's dispatch, so several contexts on different
   * devices can live in one process. */
  load_instance_functions(*instance);
  if (validation) {
    mci.pNext = NULL; /* the validation-features struct belongs to the instance only */
    PFN_vkCreateDebugUtilsMessengerEXT create_messenger =
        (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(*instance, "vkCreateDebugUtilsMessengerEXT");
    if (!create_messenger) {
      status = drd_fail(DRD_ERROR_VULKAN, "the loader offers no vkCreateDebugUtilsMessengerEXT with validation on");
      goto cleanup;
    }
    VK_CHECK(create_messenger(*instance, &mci, NULL, messenger));
  }
  return DRD_OK;
cleanup:
  if (*instance) vkDestroyInstance(*instance, NULL);
  *instance = VK_NULL_HANDLE;
  return status;
}
