#include "util_hsa_oracle.h"

int drd_test_hsa_sees_block(const drd_hparams *hp, uint32_t N, uint32_t a, uint32_t b) {
  const uint64_t nb = ((uint64_t)N + hp->B - 1) / hp->B;
  if (N <= hp->N1) return 1;
  const int m = N <= hp->N2 ? 0 : (N <= hp->N3 ? 1 : 2);
  const uint64_t w = hp->window[m], dl = hp->dilation[m], n = hp->hops[m], g = hp->global[m];
  const uint64_t dist = a > b ? a - b : b - a;
  if (dist <= w) return 1;
  if (dist <= dl * n && dist % dl == 0) return 1;
  for (uint64_t i = 0; i < g; i++) {
    const uint64_t gb = i * nb / g;
    if (gb == b || gb == a) return 1;
  }
  return 0;
}

int drd_test_hsa_sees(const drd_hparams *hp, uint32_t N, uint32_t i, uint32_t j) {
  return drd_test_hsa_sees_block(hp, N, i / hp->B, j / hp->B);
}
