/* Philox4x32-10 and its Box-Muller transform (SPEC section 9). */
#include "philox.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void drd_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++) {
    if (r) { /* the key is bumped before every round but the first */
      k0 += PHILOX_W0;
      k1 += PHILOX_W1;
    }
    uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
    uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

void drd_philox_normal_pair(uint64_t seed, uint64_t j, float *z0, float *z1) {
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  const uint32_t ctr[4] = {(uint32_t)j, (uint32_t)(j >> 32), 0, 0};
  uint32_t r[4];
  drd_philox4x32_10(ctr, key, r);
  /* u1 in (0, 1] so the log is finite; u2 in [0, 1). 24 bits each: exact in f32 and f64. */
  const double u1 = ((double)(r[0] >> 8) + 1.0) * 0x1p-24;
  const double u2 = (double)(r[1] >> 8) * 0x1p-24;
  const double radius = sqrt(-2.0 * log(u1));
  const double angle = 2.0 * 3.14159265358979323846 * u2;
  *z0 = (float)(radius * cos(angle));
  *z1 = (float)(radius * sin(angle));
}

void drd_philox_fill_normal(uint64_t seed, uint64_t first, float *x, size_t n) {
  size_t i = 0;
  while (i < n) {
    const uint64_t f = first + i;
    float z[2];
    drd_philox_normal_pair(seed, f >> 1, &z[0], &z[1]);
    x[i++] = z[f & 1];
    if ((f & 1) == 0 && i < n) x[i++] = z[1];
  }
}
