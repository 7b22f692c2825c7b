/* The on-disk pipeline cache. The file starts with our own header tying it to the vendor,
 * device, driver version and pipelineCacheUUID, plus a checksum of the payload, so a cache
 * from another driver, or a truncated or corrupt file, is ignored with a warning rather than
 * handed to the driver. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vk_internal.h"

typedef struct drd_cache_header {
  char magic[8]; /* "DRDPC01\0" */
  uint32_t vendor_id, device_id, driver_version, reserved;
  uint8_t uuid[16];
  uint64_t data_size;
  uint64_t checksum; /* FNV-1a 64 of the payload */
} drd_cache_header;

static const char MAGIC[8] = "DRDPC01";

static uint64_t fnv1a(const unsigned char *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

static int mkdir_p(char *path) {
  for (char *s = path + 1; *s; s++) {
    if (*s != '/') continue;
    *s = 0;
    int r = mkdir(path, 0755);
    *s = '/';
    if (r && errno != EEXIST) return -1;
  }
  return mkdir(path, 0755) && errno != EEXIST ? -1 : 0;
}

/* Resolves the default location ("\x01" marker) into a path; "" means no disk cache. */
static void resolve_path(drd_context *ctx) {
  if (ctx->pipeline_cache_path[0] != '\x01') return;
  char dir[900];
  const char *e;
  if ((e = getenv("DRDIFF_CACHE_DIR")) && *e) snprintf(dir, sizeof dir, "%s", e);
  else if ((e = getenv("XDG_CACHE_HOME")) && *e) snprintf(dir, sizeof dir, "%s/drdiff", e);
  else if ((e = getenv("HOME")) && *e) snprintf(dir, sizeof dir, "%s/.cache/drdiff", e);
  else {
    ctx->pipeline_cache_path[0] = 0;
    return;
  }
  /* the driver's cache UUID in the name too: two drivers of one device (Mesa versions, a
   * driver update beside the old one) would otherwise replace each other's file on every run */
  const uint8_t *u = ctx->caps.pipeline_cache_uuid;
  snprintf(ctx->pipeline_cache_path, sizeof ctx->pipeline_cache_path,
           "%s/pipelines-%04x-%04x-%02x%02x%02x%02x%02x%02x%02x%02x.bin", dir, ctx->caps.vendor_id,
           ctx->caps.device_id, u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7]);
}

/* Reads and checks the file; returns the payload (malloc'd) or NULL with a reason. */
static void *read_cache(drd_context *ctx, size_t *size, const char **why) {
  FILE *f = fopen(ctx->pipeline_cache_path, "rb");
  *why = NULL;
  if (!f) return NULL; /* no cache yet: not worth a warning */
  drd_cache_header h;
  void *data = NULL;
  if (fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, MAGIC, sizeof MAGIC)) *why = "not a drdiff pipeline cache";
  else if (h.vendor_id != ctx->caps.vendor_id || h.device_id != ctx->caps.device_id ||
           h.driver_version != ctx->caps.driver_version || memcmp(h.uuid, ctx->caps.pipeline_cache_uuid, 16))
    *why = "made by another device or driver";
  else if (h.data_size == 0 || h.data_size > (256ull << 20)) *why = "implausible size";
  else if (!(data = malloc(h.data_size))) *why = "out of memory";
  else if (fread(data, 1, h.data_size, f) != h.data_size) *why = "truncated";
  else if (fnv1a(data, h.data_size) != h.checksum) *why = "checksum mismatch";
  fclose(f);
  if (*why) {
    free(data);
    return NULL;
  }
  *size = h.data_size;
  return data;
}

drd_status drd_pipeline_cache_load(drd_context *ctx) {
  drd_status status = DRD_OK;
  resolve_path(ctx);
  size_t size = 0;
  void *data = NULL;
  if (ctx->pipeline_cache_path[0]) {
    const char *why;
    data = read_cache(ctx, &size, &why);
    if (why) drd_log(DRD_LOG_WARN, "ignoring pipeline cache %s: %s", ctx->pipeline_cache_path, why);
  }
  VkPipelineCacheCreateInfo ci = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
      .initialDataSize = size,
      .pInitialData = data,
  };
  VkResult r = vkCreatePipelineCache(ctx->device, &ci, NULL, &ctx->pipeline_cache);
  if (r != VK_SUCCESS && data) { /* the driver refused the payload: start empty */
    drd_log(DRD_LOG_WARN, "the driver rejected pipeline cache %s; starting empty", ctx->pipeline_cache_path);
    ci.initialDataSize = 0;
    ci.pInitialData = NULL;
    r = vkCreatePipelineCache(ctx->device, &ci, NULL, &ctx->pipeline_cache);
  }
  free(data);
  VK_CHECK(r);
cleanup:
  return status;
}

drd_status drd_pipeline_cache_save(drd_context *ctx) {
  if (!ctx->pipeline_cache || !ctx->pipeline_cache_path[0] || ctx->lost) return DRD_OK;
  size_t size = 0;
  if (vkGetPipelineCacheData(ctx->device, ctx->pipeline_cache, &size, NULL) != VK_SUCCESS || size == 0) return DRD_OK;
  void *data = malloc(size);
  if (!data) return DRD_OK;
  if (vkGetPipelineCacheData(ctx->device, ctx->pipeline_cache, &size, data) != VK_SUCCESS) {
    free(data);
    return DRD_OK;
  }
  drd_cache_header h = {.vendor_id = ctx->caps.vendor_id, .device_id = ctx->caps.device_id,
                        .driver_version = ctx->caps.driver_version, .data_size = size,
                        .checksum = fnv1a(data, size)};
  memcpy(h.magic, MAGIC, sizeof MAGIC);
  memcpy(h.uuid, ctx->caps.pipeline_cache_uuid, 16);
  char dir[sizeof ctx->pipeline_cache_path], tmp[sizeof ctx->pipeline_cache_path + 32];
  snprintf(dir, sizeof dir, "%s", ctx->pipeline_cache_path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = 0;
    mkdir_p(dir);
  }
  /* write a temporary file and rename it: readers never see a half-written cache. Its name is
   * unique (mkstemp), as contexts of one process (threads) or of several may save at once:
   * the last rename wins, each file whole. */
  snprintf(tmp, sizeof tmp, "%s.XXXXXX", ctx->pipeline_cache_path);
  int fd = mkstemp(tmp);
  FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
  if (fd >= 0 && !f) {
    close(fd);
    remove(tmp);
  }
  bool ok = f && fwrite(&h, sizeof h, 1, f) == 1 && fwrite(data, 1, size, f) == size;
  if (f && fclose(f)) ok = false;
  if (ok && rename(tmp, ctx->pipeline_cache_path) == 0)
    drd_log(DRD_LOG_DEBUG, "saved pipeline cache %s (%zu bytes)", ctx->pipeline_cache_path, size);
  else {
    drd_log(DRD_LOG_WARN, "could not write pipeline cache %s", ctx->pipeline_cache_path);
    if (f) remove(tmp);
  }
  free(data);
  return DRD_OK;
}
