#include "util_rand.h"
#include "util_expect.h"

int drd_test_failures;

#include <math.h>
#include <stdlib.h>
#include <time.h>

uint64_t drd_test_seed(void) {
  const char *e = getenv("DRDIFF_TEST_SEED");
  if (e && *e) return strtoull(e, NULL, 0);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec;
}

/* splitmix64: tiny, good enough for test data, and the same on every platform */
uint64_t drd_rng_next(drd_rng *r) {
  uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

float drd_rng_uniform(drd_rng *r, float lo, float hi) {
  return lo + (hi - lo) * (float)((drd_rng_next(r) >> 40) * (1.0 / 16777216.0));
}

uint32_t drd_rng_range(drd_rng *r, uint32_t lo, uint32_t hi) {
  return lo + (uint32_t)(drd_rng_next(r) % ((uint64_t)hi - lo + 1));
}

void drd_fill_uniform(drd_rng *r, float *x, size_t n, float lo, float hi) {
  for (size_t i = 0; i < n; i++) x[i] = drd_rng_uniform(r, lo, hi);
}

double drd_rel_error(const float *a, const float *b, size_t n) {
  double num = 0, den = 1e-30;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (d != d) return NAN; /* an unwritten (NaN-poisoned) element fails any tolerance */
    if (d > num) num = d;
    if (fabs((double)b[i]) > den) den = fabs((double)b[i]);
  }
  return num / den;
}

double drd_compare_f32(const float *got, const float *want, size_t n, size_t *nonfinite) {
  double num = 0, den = 1e-30;
  *nonfinite = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(got[i])) {
      (*nonfinite)++;
      continue;
    }
    double d = fabs((double)got[i] - (double)want[i]);
    if (d > num) num = d;
    if (fabs((double)want[i]) > den) den = fabs((double)want[i]);
  }
  return num / den;
}
