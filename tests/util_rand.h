/* Test helpers: a seeded PRNG (seed from DRDIFF_TEST_SEED or the clock, printed on failure),
 * random fills and relative-error comparison. */
#ifndef DRD_UTIL_RAND_H
#define DRD_UTIL_RAND_H

#include <stddef.h>
#include <stdint.h>

typedef struct drd_rng { uint64_t s; } drd_rng;

/* The test's seed: $DRDIFF_TEST_SEED if set, else from the clock. */
uint64_t drd_test_seed(void);
uint64_t drd_rng_next(drd_rng *r);
float drd_rng_uniform(drd_rng *r, float lo, float hi);
uint32_t drd_rng_range(drd_rng *r, uint32_t lo, uint32_t hi); /* inclusive */
void drd_fill_uniform(drd_rng *r, float *x, size_t n, float lo, float hi);
/* max |a-b| / max(max|b|, tiny): one number for a whole tensor. */
double drd_rel_error(const float *a, const float *b, size_t n);
/* max|got - want| / max|want| over the finite outputs, with the non-finite ones (an
 * unwritten, NaN-poisoned element) counted apart in *nonfinite: one bad element must fail a
 * case whatever its position. */
double drd_compare_f32(const float *got, const float *want, size_t n, size_t *nonfinite);

#endif
