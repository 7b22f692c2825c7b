/* DES routing (SPEC 6): p = 1 gives exactly kmax experts, ties go to the lower index, at
 * least one expert, the kmax cap, renormalised weights; and random logits against an
 * independent sort-based implementation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "des.h"
#include "util_expect.h"
#include "util_rand.h"

static const double *g_pi;
static int by_prob(const void *a, const void *b) {
  const uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  if (g_pi[x] != g_pi[y]) return g_pi[x] > g_pi[y] ? -1 : 1;
  return (x > y) - (x < y);
}

/* Independent implementation: f32 softmax values, stable sort, f32 running sum. */
static uint32_t route_ref(const float *lg, uint32_t E, uint32_t kmax, float p, uint32_t *ex, double *w) {
  double mx = lg[0], sum = 0, pi[DRD_DES_MAX_EXPERTS];
  for (uint32_t e = 1; e < E; e++) mx = lg[e] > mx ? lg[e] : mx;
  for (uint32_t e = 0; e < E; e++) sum += exp((double)lg[e] - mx);
  for (uint32_t e = 0; e < E; e++) pi[e] = (float)(exp((double)lg[e] - mx) / sum);
  uint32_t idx[DRD_DES_MAX_EXPERTS];
  for (uint32_t e = 0; e < E; e++) idx[e] = e;
  g_pi = pi;
  qsort(idx, E, sizeof idx[0], by_prob);
  uint32_t k = 0;
  float cum = 0;
  while (k < kmax) {
    cum += (float)pi[idx[k]];
    ex[k] = idx[k];
    k++;
    if (p < 1 && cum >= p) break;
  }
  float c = 0;
  for (uint32_t i = 0; i < k; i++) c += (float)pi[ex[i]];
  for (uint32_t i = 0; i < k; i++) w[i] = (float)((float)pi[ex[i]] / c);
  return k;
}

int main(void) {
  const uint64_t seed = drd_test_seed();
  drd_rng rng = {seed};
  uint32_t ex[DRD_DES_MAX_EXPERTS];
  float w[DRD_DES_MAX_EXPERTS];

  /* p = 1: exactly kmax, even when one expert takes all the probability */
  {
    const float lg[4] = {100.0f, 0.0f, -5.0f, 1.0f};
    uint32_t k = drd_des_route(lg, 4, 3, 1.0f, ex, w);
    if (k != 3 || ex[0] != 0 || ex[1] != 3 || ex[2] != 1) FAIL("p=1: k=%u experts %u %u %u, want 3: 0 3 1", k, ex[0], ex[1], ex[2]);
  }
  /* ties: equal logits are taken in index order; uniform pi below p takes kmax */
  {
    const float lg[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    uint32_t k = drd_des_route(lg, 4, 2, 0.3f, ex, w);
    if (k != 2 || ex[0] != 0 || ex[1] != 1 || w[0] != 0.5f || w[1] != 0.5f)
      FAIL("ties: k=%u experts %u %u weights %g %g, want 2: 0 1, 0.5 0.5", k, ex[0], ex[1], (double)w[0], (double)w[1]);
    const float lg2[5] = {0.0f, 2.0f, 1.0f, 2.0f, 2.0f};
    k = drd_des_route(lg2, 5, 3, 1.0f, ex, w);
    if (k != 3 || ex[0] != 1 || ex[1] != 3 || ex[2] != 4) FAIL("ties among the top: experts %u %u %u, want 1 3 4", ex[0], ex[1], ex[2]);
  }
  /* at least one: the top expert alone already passes a small p */
  {
    const float lg[3] = {0.1f, 0.3f, 0.2f};
    uint32_t k = drd_des_route(lg, 3, 3, 1e-6f, ex, w);
    if (k != 1 || ex[0] != 1 || w[0] != 1.0f) FAIL("small p: k=%u first %u weight %g, want 1: 1 1.0", k, ex[0], (double)w[0]);
  }
  /* the prefix stops as soon as the cumulative pi reaches p: pi = (0.5, 0.3, 0.2) */
  {
    const float lg[3] = {logf(0.5f), logf(0.3f), logf(0.2f)};
    uint32_t k = drd_des_route(lg, 3, 3, 0.7f, ex, w);
    if (k != 2) FAIL("cumulative 0.5+0.3 >= 0.7 should stop at 2, got %u", k);
    k = drd_des_route(lg, 3, 3, 0.85f, ex, w);
    if (k != 3) FAIL("cumulative 0.8 < 0.85 should take 3, got %u", k);
    k = drd_des_route(lg, 3, 2, 0.85f, ex, w);
    if (k != 2) FAIL("kmax 2 caps, got %u", k);
    if (fabs(w[0] - 0.625) > 1e-6 || fabs(w[1] - 0.375) > 1e-6) FAIL("renormalised weights %g %g, want 0.625 0.375", (double)w[0], (double)w[1]);
  }
  /* E = 1 */
  {
    const float lg[1] = {-3.0f};
    uint32_t k = drd_des_route(lg, 1, 1, 0.5f, ex, w);
    if (k != 1 || ex[0] != 0 || w[0] != 1.0f) FAIL("E=1: k=%u", k);
  }
  /* random logits against the independent implementation */
  int hist[9] = {0};
  for (int t = 0; t < 20000; t++) {
    const uint32_t E = drd_rng_range(&rng, 1, 16), kmax = drd_rng_range(&rng, 1, E);
    const float p = t % 7 == 0 ? 1.0f : drd_rng_uniform(&rng, 0.05f, 1.0f);
    float lg[16];
    const float spread = drd_rng_uniform(&rng, 0.0f, 6.0f);
    drd_fill_uniform(&rng, lg, E, -spread, spread);
    if (t % 11 == 0 && E > 2) lg[1] = lg[2]; /* exact ties now and then */
    uint32_t rex[16];
    double rw[16];
    const uint32_t k = drd_des_route(lg, E, kmax, p, ex, w), rk = route_ref(lg, E, kmax, p, rex, rw);
    int bad = k != rk || k < 1 || k > kmax;
    double sw = 0;
    for (uint32_t i = 0; !bad && i < k; i++) {
      bad |= ex[i] != rex[i] || fabs(w[i] - rw[i]) > 1e-6 * rw[i];
      sw += w[i];
    }
    if (!bad && fabs(sw - 1) > 1e-6) bad = 1;
    if (!bad && p >= 1.0f && k != kmax) bad = 1;
    if (bad) {
      FAIL("random case %d (E=%u kmax=%u p=%g): k=%u ref %u", t, E, kmax, (double)p, k, rk);
      if (drd_test_failures > 10) break;
    }
    if (E == 8 && kmax == 8) hist[k]++;
  }
  if (drd_test_failures) {
    printf("test_host_des: %d failure(s), seed %llu\n", drd_test_failures, (unsigned long long)seed);
    return 1;
  }
  printf("test_host_des: ok (E=8 kmax=8 experts used:");
  for (int k = 1; k <= 8; k++) printf(" %d", hist[k]);
  printf(")\n");
  return 0;
}
