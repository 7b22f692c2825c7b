/* The HSA visibility rule of SPEC section 5, written word for word as an oracle for the
 * tests (independent of host/hsa_plan.c, which builds the block lists the engine uses). */
#ifndef DRD_UTIL_HSA_ORACLE_H
#define DRD_UTIL_HSA_ORACLE_H

#include <stdint.h>

#include "model_file.h"

/* 1 when query block a sees key block b in a sequence of N tokens. */
int drd_test_hsa_sees_block(const drd_hparams *hp, uint32_t N, uint32_t a, uint32_t b);
/* 1 when query token i sees key token j. */
int drd_test_hsa_sees(const drd_hparams *hp, uint32_t N, uint32_t i, uint32_t j);

#endif
