/* The environment switches (DRDIFF_*), read strictly: a number that is not a number is refused
 * by drd_context_create and drd_enumerate_devices rather than ignored, since a typo would
 * otherwise silently lift a limit its user meant to set, or run a fallback test without its
 * fallback. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

bool drd_env_flag(const char *name) {
  const char *e = getenv(name);
  return e && *e && strcmp(e, "0") != 0;
}

/* Every numeric switch: whether it is a size (K, M, G suffixes) and its largest value. */
static const struct {
  const char *name;
  bool size;
  uint64_t max;
} k_numbers[] = {{"DRDIFF_MAX_DEVICE_MEMORY", true, UINT64_MAX},
                 {"DRDIFF_MAX_SHARED_MEMORY", true, UINT32_MAX},
                 {"DRDIFF_MAX_BUFFER_RANGE", true, UINT64_MAX},
                 {"DRDIFF_TIMEOUT_MS", false, UINT32_MAX},
                 {"DRDIFF_THREADS", false, UINT32_MAX}}; /* the CPU engine's (host/ref_ops.c), which caps it */

drd_status drd_env_number(const char *name, uint64_t *out) {
  *out = 0;
  size_t i = 0;
  while (i < sizeof k_numbers / sizeof *k_numbers && strcmp(k_numbers[i].name, name)) i++;
  if (i == sizeof k_numbers / sizeof *k_numbers)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "%s is not a numeric switch", name);
  const bool size = k_numbers[i].size;
  const uint64_t max = k_numbers[i].max;
  const char *e = getenv(name);
  if (!e || !*e) return DRD_OK;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(e, &end, 10);
  unsigned shift = 0;
  if (size && (*end == 'K' || *end == 'k')) shift = 10, end++;
  else if (size && (*end == 'M' || *end == 'm')) shift = 20, end++;
  else if (size && (*end == 'G' || *end == 'g')) shift = 30, end++;
  if (errno || end == e || *end || e[0] == '-' || e[0] == '+' || v == 0 || v > (max >> shift))
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "%s='%s': expected a whole number from 1 to %llu%s", name, e,
                    (unsigned long long)max, size ? " (bytes; or with K, M or G for KiB, MiB, GiB)" : "");
  *out = (uint64_t)v << shift;
  return DRD_OK;
}

drd_status drd_env_check(void) {
  for (size_t i = 0; i < sizeof k_numbers / sizeof *k_numbers; i++) {
    uint64_t v;
    drd_status s = drd_env_number(k_numbers[i].name, &v);
    if (s != DRD_OK) return s;
  }
  return DRD_OK;
}
