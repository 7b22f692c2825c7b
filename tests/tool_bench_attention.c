/* Times HSA attention on the default device and prints one JSON line:
 *   tool_bench_attention N H dh [B N1 N2 N3 w1 w2 w3 d1 d2 d3 n1 n2 n3 g1 g2 g3]
 * Missing HSA parameters default to base-220m (SPEC section 10). FLOPs count 4 * dh per
 * visited (query, key) pair and head (q.k and p.v, 2 each); the merge of split rows is
 * included in the time but not in the FLOPs. Time is wall clock per recorded-sequence run
 * (submit + wait), the median of the runs after one warm-up.
 * The kernel is the automatic choice unless DRDIFF_ATTN_KERNEL says "scalar", "subgroup", "coopmat" or
 * "coopmat:ns,tms,bc[,eager[,convert]]" (a cooperative-matrix tile, 0 = automatic; convert 1
 * = P in registers, 2 = through shared memory; see
 * drd_attn_kernel in runtime/ops_attention.h); DRDIFF_DISABLE_COOPMAT=1 also forces the
 * scalar kernel. The JSON says which kernel ran and its tile. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ops_attention.h"
#include "util_rand.h"

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* dp->request from $DRDIFF_ATTN_KERNEL; false when it does not parse */
static bool parse_request(drd_attn_kernel *req) {
  const char *e = getenv("DRDIFF_ATTN_KERNEL");
  *req = (drd_attn_kernel){.kind = DRD_ATTN_AUTO};
  if (!e || !*e || !strcmp(e, "auto")) return true;
  if (!strcmp(e, "scalar") || !strcmp(e, "subgroup")) {
    req->kind = e[1] == 'c' ? DRD_ATTN_SCALAR : DRD_ATTN_SUBGROUP;
    return true;
  }
  if (strncmp(e, "coopmat", 7)) return false;
  req->kind = DRD_ATTN_COOPMAT;
  if (!e[7]) return true;
  unsigned v[5] = {0};
  int n = e[7] == ':' ? sscanf(e + 8, "%u,%u,%u,%u,%u", &v[0], &v[1], &v[2], &v[3], &v[4]) : 0;
  if (n < 3) return false;
  req->ns = v[0], req->tms = v[1], req->bc = v[2], req->eager = v[3], req->convert = (drd_attn_convert)v[4];
  return true;
}

static int fail(drd_status s, const char *what) {
  fprintf(stderr, "tool_bench_attention: %s: %s (%s)\n", what, drd_status_string(s), drd_last_error());
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s N H dh [B N1 N2 N3 w1 w2 w3 d1 d2 d3 n1 n2 n3 g1 g2 g3]\n", argv[0]);
    return 2;
  }
  const uint32_t N = (uint32_t)strtoul(argv[1], NULL, 10), H = (uint32_t)strtoul(argv[2], NULL, 10);
  const uint32_t dh = (uint32_t)strtoul(argv[3], NULL, 10);
  drd_hparams hp = {.B = 64, .N1 = 1024, .N2 = 4096, .N3 = 8192, .window = {4, 4, 4}, .dilation = {2, 4, 8},
                    .hops = {4, 4, 4}, .global = {2, 4, 8}};
  uint32_t *fields[] = {&hp.B, &hp.N1, &hp.N2, &hp.N3, &hp.window[0], &hp.window[1], &hp.window[2],
                        &hp.dilation[0], &hp.dilation[1], &hp.dilation[2], &hp.hops[0], &hp.hops[1], &hp.hops[2],
                        &hp.global[0], &hp.global[1], &hp.global[2]};
  for (int i = 4; i < argc && i - 4 < (int)(sizeof fields / sizeof *fields); i++)
    *fields[i - 4] = (uint32_t)strtoul(argv[i], NULL, 10);
  if (N == 0 || H == 0 || dh == 0) {
    fprintf(stderr, "tool_bench_attention: N, H and dh must be positive\n");
    return 2;
  }

  drd_context *ctx = NULL;
  drd_status s = drd_context_create(&(drd_context_desc){0}, &ctx);
  if (s != DRD_OK) return fail(s, "context");
  drd_hsa_plan plan;
  s = drd_hsa_plan_make(&hp, N, &plan);
  if (s != DRD_OK) return fail(s, "hsa plan");
  drd_attention_plan dp;
  s = drd_attention_plan_upload(ctx, &plan, H, dh, &dp);
  if (s != DRD_OK) return fail(s, "attention plan");
  if (!parse_request(&dp.request)) {
    fprintf(stderr, "tool_bench_attention: DRDIFF_ATTN_KERNEL=%s: want scalar, coopmat or "
            "coopmat:ns,tms,bc[,eager[,convert]]\n", getenv("DRDIFF_ATTN_KERNEL"));
    return 2;
  }
  drd_attn_kernel kern;
  if ((s = drd_attention_kernel(ctx, &dp, &kern)) != DRD_OK) return fail(s, "attention kernel");
  const drd_device_caps *caps = drd_context_caps(ctx);
  char kdesc[160];
  if (kern.kind == DRD_ATTN_COOPMAT)
    snprintf(kdesc, sizeof kdesc,
             "\"kernel\":\"coopmat\",\"coopmat_shape\":\"%ux%ux%u\",\"ns\":%u,\"tms\":%u,\"br\":%u,\"bc\":%u,"
             "\"dhp\":%u,\"eager\":%u,\"p_in_registers\":%s,\"shared\":%u",
             caps->coopmat_m, caps->coopmat_n, caps->coopmat_k, kern.ns, kern.tms, kern.br, kern.bc, kern.dhp,
             kern.eager, kern.convert == DRD_ATTN_CONVERT_ON ? "true" : "false", kern.shared);
  else
    snprintf(kdesc, sizeof kdesc, "\"kernel\":\"%s\",\"br\":%u,\"bc\":%u,\"tc\":%u,\"shared\":%u",
             kern.kind == DRD_ATTN_SUBGROUP ? "subgroup" : kern.shuffle ? "scalar" : "scalar_noshuffle", kern.br,
             kern.bc, kern.tc, kern.shared);

  const size_t n = (size_t)N * H * dh;
  float *x = malloc(n * 4);
  drd_buffer b[4];
  if (!x) return fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "inputs");
  drd_rng rng = {12345};
  for (int i = 0; i < 4; i++) {
    drd_fill_uniform(&rng, x, n, -1.0f, 1.0f);
    if ((s = drd_buffer_create(ctx, n * 4, &b[i])) != DRD_OK) return fail(s, "buffer");
    if ((s = drd_buffer_upload(ctx, &b[i], 0, x, n * 4)) != DRD_OK) return fail(s, "upload");
  }
  drd_seq *seq;
  if ((s = drd_seq_begin(ctx, &seq)) != DRD_OK) return fail(s, "seq");
  if ((s = drd_op_attention_hsa(seq, &dp, &b[0], &b[1], &b[2], &b[3])) != DRD_OK) return fail(s, "attention");
  if ((s = drd_seq_end(seq)) != DRD_OK) return fail(s, "seq end");
  if ((s = drd_seq_run(seq)) != DRD_OK) return fail(s, "warm-up run"); /* pipelines, caches */

  enum { MAX_RUNS = 200 };
  double t[MAX_RUNS];
  int runs = 0;
  const double start = drd_now_s();
  while (runs < MAX_RUNS && (runs < 3 || drd_now_s() - start < 1.0)) {
    const double t0 = drd_now_s();
    if ((s = drd_seq_run(seq)) != DRD_OK) return fail(s, "run");
    t[runs++] = drd_now_s() - t0;
  }
  qsort(t, (size_t)runs, sizeof *t, cmp_double);
  const double sec = t[runs / 2];
  const double flops = 4.0 * dh * (double)dp.pairs * H;
  printf("{\"device\":\"%s\",\"N\":%u,\"H\":%u,\"dh\":%u,\"B\":%u,\"mode\":%u,\"nb\":%u,\"split\":%u,"
         "\"window_blocks\":%u,\"dispatches\":%u,\"pairs_per_head\":%llu,%s,\"runs\":%d,\"ms\":%.4f,"
         "\"gflops\":%.2f}\n",
         caps->name, N, H, dh, hp.B, plan.mode, plan.nb, dp.split, dp.window_blocks, drd_attention_dispatch_count(&dp),
         (unsigned long long)dp.pairs, kdesc, runs, sec * 1e3, flops / sec * 1e-9);

  drd_seq_destroy(seq);
  for (int i = 0; i < 4; i++) drd_buffer_destroy(ctx, &b[i]);
  drd_attention_plan_free(ctx, &dp);
  drd_hsa_plan_free(&plan);
  free(x);
  drd_context_destroy(ctx);
  return 0;
}
