/* EXPECT(cond, fmt, ...): records a failure with its file:line and message and goes on, so
 * one run reports every failing check; drd_test_failures counts them. FAIL(fmt, ...) is
 * EXPECT of a condition already known to be false. */
#ifndef DRD_UTIL_EXPECT_H
#define DRD_UTIL_EXPECT_H

#include <stdio.h>

extern int drd_test_failures;

#define EXPECT(cond, ...)                                  \
  do {                                                     \
    if (!(cond)) {                                         \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                        \
      fprintf(stderr, "\n");                               \
      drd_test_failures++;                                 \
    }                                                      \
  } while (0)
#define FAIL(...) EXPECT(0, __VA_ARGS__)

#endif
