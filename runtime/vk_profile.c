/* Per-op GPU time from timestamps (DRDIFF_PROFILE=1): accumulated by op name, reported as a
 * table sorted by total time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

void drd_profile_add(drd_context *ctx, const char *op, double ns) {
  for (uint32_t i = 0; i < ctx->n_profile; i++) {
    if (!strcmp(ctx->profile_entries[i].name, op)) {
      ctx->profile_entries[i].count++;
      ctx->profile_entries[i].total_ns += ns;
      return;
    }
  }
  if (ctx->n_profile == ctx->cap_profile) {
    uint32_t cap = ctx->cap_profile ? 2 * ctx->cap_profile : 32;
    drd_profile_entry *e = realloc(ctx->profile_entries, cap * sizeof *e);
    if (!e) return; /* profiling is best-effort */
    ctx->profile_entries = e;
    ctx->cap_profile = cap;
  }
  drd_profile_entry *e = &ctx->profile_entries[ctx->n_profile++];
  snprintf(e->name, sizeof e->name, "%s", op);
  e->count = 1;
  e->total_ns = ns;
}

static int by_total_desc(const void *a, const void *b) {
  double x = ((const drd_profile_entry *)a)->total_ns, y = ((const drd_profile_entry *)b)->total_ns;
  return (x < y) - (x > y);
}

void drd_profile_report(drd_context *ctx) {
  if (!ctx || !ctx->n_profile) return;
  qsort(ctx->profile_entries, ctx->n_profile, sizeof *ctx->profile_entries, by_total_desc);
  double all = 0;
  for (uint32_t i = 0; i < ctx->n_profile; i++) all += ctx->profile_entries[i].total_ns;
  /* the table is the point of DRDIFF_PROFILE: print it whatever the log level */
  fprintf(stderr, "%-32s %10s %14s %7s\n", "op", "count", "total us", "share");
  for (uint32_t i = 0; i < ctx->n_profile; i++) {
    const drd_profile_entry *e = &ctx->profile_entries[i];
    fprintf(stderr, "%-32s %10llu %14.1f %6.1f%%\n", e->name, (unsigned long long)e->count, e->total_ns / 1e3,
            all > 0 ? 100.0 * e->total_ns / all : 0.0);
  }
}

uint32_t drd_profile_ops(const drd_context *ctx, drd_profile_op *out, uint32_t max) {
  if (!ctx) return 0;
  for (uint32_t i = 0; i < ctx->n_profile && i < max && out; i++) {
    const drd_profile_entry *e = &ctx->profile_entries[i];
    snprintf(out[i].name, sizeof out[i].name, "%s", e->name);
    out[i].count = e->count;
    out[i].total_ns = e->total_ns;
  }
  return ctx->n_profile;
}

void drd_profile_reset(drd_context *ctx) {
  if (ctx) ctx->n_profile = 0;
}
