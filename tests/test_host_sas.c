/* SAS soft absorption and rounding (SPEC 8) against full-vocabulary loops: odd embedding
 * widths (padded value panels), vocabularies that are not a multiple of the tile, row
 * counts past one task, ties to the lowest id, and the same bits on every SIMD path and
 * thread count. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref_ops.h"
#include "sas.h"
#include "util_expect.h"
#include "util_rand.h"

static void naive_absorb(const float *E, uint32_t V, uint32_t de, float *D, uint32_t rows, double g, double tau) {
  double *z = malloc(sizeof(double) * V), *acc = malloc(sizeof(double) * de);
  for (uint32_t r = 0; r < rows; r++) {
    double mx = -INFINITY, den = 0;
    for (uint32_t v = 0; v < V; v++) {
      double s = 0;
      for (uint32_t c = 0; c < de; c++) s += (double)D[r * de + c] * E[(size_t)v * de + c];
      z[v] = s / tau;
      mx = fmax(mx, z[v]);
    }
    for (uint32_t c = 0; c < de; c++) acc[c] = 0;
    for (uint32_t v = 0; v < V; v++) {
      const double p = exp(z[v] - mx);
      den += p;
      for (uint32_t c = 0; c < de; c++) acc[c] += p * E[(size_t)v * de + c];
    }
    for (uint32_t c = 0; c < de; c++) D[r * de + c] = (float)((1 - g) * D[r * de + c] + g * acc[c] / den);
  }
  free(z);
  free(acc);
}

int main(void) {
  const uint64_t seed = drd_test_seed();
  drd_rng rng = {seed};
  const uint32_t cases[][3] = {{1, 4, 1}, {300, 16, 20}, {1000, 13, 33}, {1537, 24, 70}, {513, 5, 65}};
  static const char *isas[] = {"avx512", "avx2", "generic"};
  for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
    const uint32_t V = cases[t][0], de = cases[t][1], rows = cases[t][2];
    float *E = malloc(sizeof(float) * V * de), *D0 = malloc(sizeof(float) * rows * de);
    float *ref = malloc(sizeof(float) * rows * de), *D = malloc(sizeof(float) * rows * de);
    float *first = malloc(sizeof(float) * rows * de);
    drd_fill_uniform(&rng, E, (size_t)V * de, -1, 1);
    drd_fill_uniform(&rng, D0, (size_t)rows * de, -1.5f, 1.5f);
    const float taus[2] = {0.1f, 1.0f};
    for (int ti = 0; ti < 2; ti++) {
      memcpy(ref, D0, sizeof(float) * rows * de);
      naive_absorb(E, V, de, ref, rows, 0.5, taus[ti]);
      for (int isa = 0; isa < 3; isa++) {
        drd_ref_gemm_force_isa(isas[isa]);
        for (uint32_t th = 1; th <= 3; th += 2) {
          memcpy(D, D0, sizeof(float) * rows * de);
          if (drd_sas_absorb(E, NULL, V, de, D, rows, 0.5f, taus[ti], th) != DRD_OK) FAIL("absorb failed");
          const double rel = drd_rel_error(D, ref, (size_t)rows * de);
          if (!(rel < 1e-6)) FAIL("absorb V=%u de=%u rows=%u tau=%g isa %s: rel error %.3g", V, de, rows, (double)taus[ti], drd_ref_gemm_isa(), rel);
          if (isa == 0 && th == 1) memcpy(first, D, sizeof(float) * rows * de);
          else if (memcmp(first, D, sizeof(float) * rows * de)) FAIL("absorb V=%u de=%u: isa %s threads %u change the bits", V, de, drd_ref_gemm_isa(), th);
        }
      }
      drd_ref_gemm_force_isa(NULL);
    }
    /* rounding: argmax with f64 dots; make a duplicate of the best row's winner to test ties */
    int32_t *tok = malloc(sizeof(int32_t) * rows);
    if (V > 3) memcpy(E + (size_t)(V - 1) * de, E + (size_t)2 * de, sizeof(float) * de); /* id V-1 == id 2 */
    if (drd_sas_round(E, NULL, V, de, D0, rows, tok, 2) != DRD_OK) FAIL("round failed");
    for (uint32_t r = 0; r < rows; r++) {
      double best = -INFINITY;
      int32_t bi = 0;
      for (uint32_t v = 0; v < V; v++) {
        double s = 0;
        for (uint32_t c = 0; c < de; c++) s += (double)D0[r * de + c] * E[(size_t)v * de + c];
        if (s > best) best = s, bi = (int32_t)v;
      }
      if (tok[r] != bi) FAIL("round V=%u de=%u row %u: %d, want %d", V, de, r, tok[r], bi);
    }
    /* rows equal to a duplicated embedding */
    if (V > 3) {
      int32_t tk[2];
      float rowsx[2 * 64];
      memcpy(rowsx, E + (size_t)2 * de, sizeof(float) * de);
      memcpy(rowsx + de, E + (size_t)(V - 1) * de, sizeof(float) * de);
      drd_sas_round(E, NULL, V, de, rowsx, 2, tk, 1);
      /* id V-1 duplicates id 2, so it can only ever tie with 2, and ties go to 2 */
      if (tk[0] == (int32_t)V - 1 || tk[1] == (int32_t)V - 1) FAIL("round: a tie went to the higher id");
    }
    free(tok);
    free(E);
    free(D0);
    free(ref);
    free(D);
    free(first);
  }
  if (drd_test_failures) {
    printf("test_host_sas: %d failure(s), seed %llu\n", drd_test_failures, (unsigned long long)seed);
    return 1;
  }
  printf("test_host_sas: ok\n");
  return 0;
}
