/* Internal logging and error reporting shared by host/ and runtime/. */
#ifndef DRD_LOG_H
#define DRD_LOG_H

#include "drdiff.h"

#if defined(__GNUC__)
#define DRD_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DRD_PRINTF(a, b)
#endif

void drd_log(drd_log_level level, const char *fmt, ...) DRD_PRINTF(2, 3);
/* Records the detailed message of a failure for drd_last_error(), logs it at DEBUG level
 * (the caller reports it) and returns status, so a failing path reads
 * `return drd_fail(DRD_ERROR_IO, "...")`. */
drd_status drd_fail(drd_status status, const char *fmt, ...) DRD_PRINTF(2, 3);

#endif
