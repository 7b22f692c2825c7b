/* HSA plan (SPEC 5): the CSR visible-block lists equal a brute-force evaluation of the
 * definition, for many N and for the tiny and base-220m parameters plus random ones; the
 * most key blocks an ordinary query block visits stays bounded as N grows to 1M. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsa_plan.h"
#include "util_hsa_oracle.h"
#include "util_rand.h"

static int failures;

static void tiny(drd_hparams *hp) {
  memset(hp, 0, sizeof *hp);
  hp->B = 8;
  hp->N1 = 32;
  hp->N2 = 64;
  hp->N3 = 128;
  const uint32_t w[3] = {1, 1, 2}, dl[3] = {2, 3, 4}, n[3] = {1, 2, 2}, g[3] = {1, 2, 2};
  memcpy(hp->window, w, sizeof w);
  memcpy(hp->dilation, dl, sizeof dl);
  memcpy(hp->hops, n, sizeof n);
  memcpy(hp->global, g, sizeof g);
}

static void base220m(drd_hparams *hp) {
  memset(hp, 0, sizeof *hp);
  hp->B = 64;
  hp->N1 = 1024;
  hp->N2 = 4096;
  hp->N3 = 8192;
  const uint32_t w[3] = {4, 4, 4}, dl[3] = {2, 4, 8}, n[3] = {4, 4, 4}, g[3] = {2, 4, 8};
  memcpy(hp->window, w, sizeof w);
  memcpy(hp->dilation, dl, sizeof dl);
  memcpy(hp->hops, n, sizeof n);
  memcpy(hp->global, g, sizeof g);
}

static const char *cfg_name;

/* Structural checks always; the brute-force comparison when nb is small enough. */
static void check(const drd_hparams *hp, uint32_t N, int brute) {
  drd_hsa_plan p;
  drd_status st = drd_hsa_plan_make(hp, N, &p);
  if (st != DRD_OK) {
    printf("FAIL %s N=%u: plan failed (%d)\n", cfg_name, N, (int)st);
    failures++;
    return;
  }
  const uint32_t nb = (N + hp->B - 1) / hp->B;
  if (p.nb != nb || p.row[0] != 0 || p.row[nb] != p.nnz) {
    printf("FAIL %s N=%u: nb %u (want %u), row[0] %u, row[nb] %u, nnz %llu\n", cfg_name, N, p.nb, nb, p.row[0],
           p.row[nb], (unsigned long long)p.nnz);
    failures++;
    drd_hsa_plan_free(&p);
    return;
  }
  /* global set */
  if (p.mode) {
    const uint32_t g = hp->global[p.mode - 1];
    uint8_t *isg = calloc(nb, 1);
    for (uint32_t i = 0; i < g; i++) isg[(uint64_t)i * nb / g] = 1;
    uint32_t cnt = 0;
    for (uint32_t b = 0; b < nb; b++) cnt += isg[b];
    int bad = cnt != p.n_global;
    for (uint32_t i = 0; !bad && i < p.n_global; i++)
      bad = !isg[p.global[i]] || (i && p.global[i] <= p.global[i - 1]);
    if (bad) {
      printf("FAIL %s N=%u: global block list wrong (%u entries, want %u)\n", cfg_name, N, p.n_global, cnt);
      failures++;
    }
    free(isg);
  }
  uint32_t max_ord = 0;
  for (uint32_t a = 0; a < nb && failures < 20; a++) {
    const uint32_t *c = p.col + p.row[a];
    const uint32_t len = p.row[a + 1] - p.row[a];
    int is_global = 0;
    for (uint32_t i = 0; i < p.n_global; i++) is_global |= p.global[i] == a;
    if (!is_global && len > max_ord) max_ord = len;
    for (uint32_t i = 0; i < len; i++)
      if (c[i] >= nb || (i && c[i] <= c[i - 1])) {
        printf("FAIL %s N=%u: row %u not strictly ascending inside [0, nb)\n", cfg_name, N, a);
        failures++;
        break;
      }
    if (brute) {
      uint32_t i = 0;
      for (uint32_t b = 0; b < nb; b++) {
        const int in_plan = i < len && c[i] == b;
        if (in_plan) i++;
        if (in_plan != drd_test_hsa_sees_block(hp, N, a, b)) {
          printf("FAIL %s N=%u: query block %u key block %u: plan %d, SPEC %d\n", cfg_name, N, a, b, in_plan,
                 !in_plan);
          failures++;
          break;
        }
      }
    }
  }
  if (max_ord != p.max_row_ordinary) {
    printf("FAIL %s N=%u: max_row_ordinary %u, counted %u\n", cfg_name, N, p.max_row_ordinary, max_ord);
    failures++;
  }
  if (p.mode) {
    const uint32_t m = p.mode - 1;
    const uint32_t bound = 2 * hp->window[m] + 1 + 2 * hp->hops[m] + hp->global[m];
    if (max_ord > bound) {
      printf("FAIL %s N=%u: an ordinary query block sees %u key blocks > (2w+1)+2n+g = %u\n", cfg_name, N, max_ord, bound);
      failures++;
    }
  }
  drd_hsa_plan_free(&p);
}

int main(void) {
  const uint64_t seed = drd_test_seed();
  drd_rng rng = {seed};
  drd_hparams hp;

  cfg_name = "tiny";
  tiny(&hp);
  for (uint32_t N = 1; N <= 600; N++) check(&hp, N, 1);
  for (int t = 0; t < 40; t++) check(&hp, drd_rng_range(&rng, 600, 20000), 1);

  cfg_name = "base-220m";
  base220m(&hp);
  const uint32_t Ns[] = {1, 63, 64, 65, 1000, 1023, 1024, 1025, 2048, 4095, 4096, 4097, 6000, 8191, 8192, 8193,
                         10000, 16384, 30000, 65536, 100001};
  for (size_t i = 0; i < sizeof Ns / sizeof Ns[0]; i++) check(&hp, Ns[i], 1);

  /* random parameters, including g > nb, dilation > nb, w = 0, g = 0, B = 1 */
  cfg_name = "random";
  for (int t = 0; t < 300; t++) {
    memset(&hp, 0, sizeof hp);
    hp.B = drd_rng_range(&rng, 1, 20);
    hp.N1 = drd_rng_range(&rng, 0, 60);
    hp.N2 = hp.N1 + drd_rng_range(&rng, 0, 100);
    hp.N3 = hp.N2 + drd_rng_range(&rng, 0, 200);
    for (int m = 0; m < 3; m++) {
      hp.window[m] = drd_rng_range(&rng, 0, 5);
      hp.dilation[m] = drd_rng_range(&rng, 1, 9);
      hp.hops[m] = drd_rng_range(&rng, 0, 6);
      hp.global[m] = drd_rng_range(&rng, 0, 12);
    }
    check(&hp, drd_rng_range(&rng, 1, 1500), 1);
  }
  /* HSA parameters 0 where SPEC forbids it: the planner refuses instead of dividing by 0 */
  tiny(&hp);
  hp.dilation[0] = 0;
  drd_hsa_plan p;
  if (drd_hsa_plan_make(&hp, 50, &p) != DRD_ERROR_BAD_MODEL) {
    printf("FAIL dilation 0 accepted\n");
    failures++;
  }
  if (drd_hsa_plan_make(&hp, 0, &p) != DRD_ERROR_INVALID_ARGUMENT) {
    printf("FAIL N = 0 accepted\n");
    failures++;
  }

  /* Bounded visits as N grows (structural checks only past 100k). */
  cfg_name = "base-220m";
  base220m(&hp);
  printf("base-220m: most key blocks per ordinary query block (bound (2w+1)+2n+g per mode):\n");
  const uint32_t big[] = {1024, 4096, 8192, 16384, 65536, 262144, 1u << 20};
  for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
    check(&hp, big[i], 0);
    if (drd_hsa_plan_make(&hp, big[i], &p) == DRD_OK) {
      printf("  N=%7u mode %u nb=%5u: max %2u key blocks (%5u keys), %u global query blocks, %llu block pairs (%.2f per query block)\n",
             big[i], p.mode, p.nb, p.max_row_ordinary, p.max_row_ordinary * hp.B, p.n_global,
             (unsigned long long)p.nnz, (double)p.nnz / p.nb);
      if (p.mode == 3 && p.max_row_ordinary > 2 * 4 + 1 + 2 * 4 + 8) {
        printf("FAIL N=%u: unbounded row\n", big[i]);
        failures++;
      }
      drd_hsa_plan_free(&p);
    }
  }
  if (failures) {
    printf("test_host_hsa_plan: %d failure(s), seed %llu\n", failures, (unsigned long long)seed);
    return 1;
  }
  printf("test_host_hsa_plan: ok\n");
  return 0;
}
