/* Philox4x32-10 known answers (Random123's kat_vectors) and the Box-Muller noise of SPEC 9
 * against values from the Python reference (models/drdiff/philox.py). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "philox.h"
#include "util_rand.h"

static int failures;

static void kat(const uint32_t ctr[4], const uint32_t key[2], const uint32_t want[4]) {
  uint32_t got[4];
  drd_philox4x32_10(ctr, key, got);
  if (memcmp(got, want, sizeof got)) {
    printf("FAIL philox ctr=%08x %08x %08x %08x key=%08x %08x: got %08x %08x %08x %08x want %08x %08x %08x %08x\n",
           ctr[0], ctr[1], ctr[2], ctr[3], key[0], key[1], got[0], got[1], got[2], got[3], want[0],
           want[1], want[2], want[3]);
    failures++;
  }
}

/* Distance in f32 units in the last place (0 = identical bits). */
static long ulps(float a, float b) {
  int32_t ia, ib;
  memcpy(&ia, &a, 4);
  memcpy(&ib, &b, 4);
  if (ia < 0) ia = INT32_MIN - ia;
  if (ib < 0) ib = INT32_MIN - ib;
  return labs((long)ia - (long)ib);
}

int main(void) {
  {
    const uint32_t c[4] = {0, 0, 0, 0}, k[2] = {0, 0}, w[4] = {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8};
    kat(c, k, w);
  }
  {
    const uint32_t c[4] = {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, k[2] = {0xffffffff, 0xffffffff},
                   w[4] = {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd};
    kat(c, k, w);
  }
  {
    const uint32_t c[4] = {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, k[2] = {0xa4093822, 0x299f31d0},
                   w[4] = {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1};
    kat(c, k, w);
  }

  /* First 7 noise values (an odd count: the last pair's sine is dropped) for three seeds,
   * as the Python reference computes them (f64 Box-Muller, one rounding to f32). */
  static const struct {
    uint64_t seed;
    float z[7];
  } ref[] = {
      {0x0, {0x1.fb7660p-1f, -0x1.d96d66p-1f, -0x1.3aa69ep-3f, 0x1.7254d6p-3f, -0x1.2fb514p+0f, 0x1.45a4f6p+1f, -0x1.30d92ap-1f}},
      {0x2a, {-0x1.f0bcb4p-1f, 0x1.8d59d8p-3f, -0x1.2bc02ap-4f, 0x1.1cf3fcp-3f, -0x1.590c8ep-2f, -0x1.099968p-1f, -0x1.84d9e2p-2f}},
      {0x123456789abcdef0ull, {-0x1.4443fep+1f, 0x1.f576e8p-2f, -0x1.3f28b0p+0f, 0x1.35b1f8p+0f, 0x1.9ce5b6p-2f, 0x1.121cb4p+0f, -0x1.99657cp-3f}},
  };
  for (size_t s = 0; s < sizeof ref / sizeof ref[0]; s++) {
    float z[7];
    drd_philox_fill_normal(ref[s].seed, 0, z, 7);
    for (int i = 0; i < 7; i++)
      if (ulps(z[i], ref[s].z[i]) > 1) { /* 1 ulp: libm cos/sin/log may differ in the last f64 bit */
        printf("FAIL noise seed %#llx element %d: got %a want %a\n", (unsigned long long)ref[s].seed, i,
               (double)z[i], (double)ref[s].z[i]);
        failures++;
      }
  }

  /* Any window of the stream equals the same slice of the whole stream (odd starts too). */
  uint64_t seed = drd_test_seed();
  drd_rng rng = {seed};
  enum { TOTAL = 1 << 20 };
  float *all = malloc(sizeof(float) * TOTAL);
  if (!all) return 1;
  const uint64_t nseed = drd_rng_next(&rng);
  drd_philox_fill_normal(nseed, 0, all, TOTAL);
  for (int t = 0; t < 50; t++) {
    uint32_t first = drd_rng_range(&rng, 0, TOTAL - 100), n = drd_rng_range(&rng, 1, 99);
    float win[100];
    drd_philox_fill_normal(nseed, first, win, n);
    if (memcmp(win, all + first, sizeof(float) * n)) {
      printf("FAIL window [%u, +%u) differs from the whole stream (seed %llu)\n", first, n, (unsigned long long)seed);
      failures++;
      break;
    }
  }
  /* Moments of 2^20 values: mean 0, variance 1, and pairs uncorrelated. */
  double m1 = 0, m2 = 0, m4 = 0, cross = 0;
  for (int i = 0; i < TOTAL; i++) {
    const double v = all[i];
    m1 += v;
    m2 += v * v;
    m4 += v * v * v * v;
    if (i & 1) cross += v * all[i - 1];
  }
  m1 /= TOTAL;
  m2 /= TOTAL;
  m4 /= TOTAL;
  cross /= TOTAL / 2;
  /* 5+ standard errors: se(mean) ~ 0.001, se(var) ~ 0.0014, se(kurtosis) ~ 0.0048 */
  if (fabs(m1) > 0.006 || fabs(m2 - 1) > 0.008 || fabs(m4 - 3) > 0.03 || fabs(cross) > 0.008) {
    printf("FAIL moments mean %.4f var %.4f m4 %.4f pair corr %.4f (noise seed %llu, test seed %llu)\n", m1, m2, m4,
           cross, (unsigned long long)nseed, (unsigned long long)seed);
    failures++;
  }
  free(all);
  if (failures) {
    printf("test_host_philox: %d failure(s), seed %llu\n", failures, (unsigned long long)seed);
    return 1;
  }
  printf("test_host_philox: ok (mean %.4f var %.4f)\n", m1, m2);
  return 0;
}
