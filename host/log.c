/* Log sink, level filter, status names and the per-thread last-error message. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static drd_log_fn g_log_fn;
static void *g_log_user;
static int g_log_level = -1; /* -1: not yet read from DRDIFF_LOG */
static _Thread_local char g_last_error[1024];

static int level_from_env(void) {
  const char *e = getenv("DRDIFF_LOG");
  if (!e) return DRD_LOG_WARN;
  if (!strcasecmp(e, "error")) return DRD_LOG_ERROR;
  if (!strcasecmp(e, "info")) return DRD_LOG_INFO;
  if (!strcasecmp(e, "debug")) return DRD_LOG_DEBUG;
  return DRD_LOG_WARN;
}

void drd_log_set(drd_log_fn fn, void *user, drd_log_level max_level) {
  g_log_fn = fn;
  g_log_user = user;
  g_log_level = (int)max_level;
}

static void vlog(drd_log_level level, const char *fmt, va_list ap) {
  if (g_log_level < 0) g_log_level = level_from_env();
  if ((int)level > g_log_level) return;
  char msg[2048];
  vsnprintf(msg, sizeof msg, fmt, ap);
  if (g_log_fn) {
    g_log_fn(level, msg, g_log_user);
    return;
  }
  static const char *names[] = {"error", "warning", "info", "debug"};
  fprintf(stderr, "drdiff %s: %s\n", names[level], msg);
}

void drd_log(drd_log_level level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog(level, fmt, ap);
  va_end(ap);
}

drd_status drd_fail(drd_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_last_error, sizeof g_last_error, fmt, ap);
  va_end(ap);
  /* the caller gets the status and reports drd_last_error(); logging it here as an error
   * would print every failure twice */
  drd_log(DRD_LOG_DEBUG, "%s", g_last_error);
  return status;
}

const char *drd_last_error(void) { return g_last_error; }

const char *drd_status_string(drd_status s) {
  switch (s) {
  case DRD_OK: return "ok";
  case DRD_ERROR_INVALID_ARGUMENT: return "invalid argument";
  case DRD_ERROR_NO_VULKAN: return "no Vulkan loader";
  case DRD_ERROR_NO_DEVICE: return "no usable Vulkan device";
  case DRD_ERROR_UNSUPPORTED: return "unsupported by the device";
  case DRD_ERROR_OUT_OF_HOST_MEMORY: return "out of host memory";
  case DRD_ERROR_OUT_OF_DEVICE_MEMORY: return "out of device memory";
  case DRD_ERROR_DEVICE_LOST: return "device lost";
  case DRD_ERROR_TIMEOUT: return "GPU timeout";
  case DRD_ERROR_VULKAN: return "Vulkan error";
  case DRD_ERROR_IO: return "I/O error";
  case DRD_ERROR_BAD_MODEL: return "bad model file";
  case DRD_ERROR_CANCELLED: return "cancelled";
  }
  return "unknown status";
}
