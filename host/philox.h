/* Philox4x32-10 (Salmon et al., SC'11) and the Gaussian noise of SPEC section 9.
 * Counter-based: element f of the noise depends only on (seed, f), so every device and
 * every thread split produce the same noise. */
#ifndef DRD_PHILOX_H
#define DRD_PHILOX_H

#include <stddef.h>
#include <stdint.h>

/* One Philox4x32-10 block: 4 counter words and 2 key words in, 4 words out. */
void drd_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* The two normal values of pair j (flat elements 2j and 2j+1) for seed. Box-Muller is
 * evaluated in f64 and rounded once to f32, the same as the Python reference. */
void drd_philox_normal_pair(uint64_t seed, uint64_t j, float *z0, float *z1);

/* x[i] = noise element (first + i) for i < n; x: [n] f32. Counter word 1 carries j >> 32,
 * so counters stay unique past 2^33 elements (SPEC's (j, 0, 0, 0) for smaller j). */
void drd_philox_fill_normal(uint64_t seed, uint64_t first, float *x, size_t n);

#endif
