/* drdiff bench: the analytic FLOP count of a generation, from the model structure
 * (runtime/engine_session.c records it; host/forward.c is the same on the CPU). */
#include "drdiff_bench.h"

#include "hsa_plan.h"
#include "solver.h"

/* (query, key) pairs that HSA attention visits for N tokens: every listed block pair
 * contributes rows(a) x rows(b), the last block holding N mod B rows when B does not divide
 * N. Dense attention (N <= N1) gives N^2. */
static drd_status attention_pairs(const drd_hparams *hp, uint32_t N, double *pairs) {
  drd_hsa_plan p;
  drd_status st = drd_hsa_plan_make(hp, N, &p);
  if (st != DRD_OK) return st;
  double sum = 0;
  for (uint32_t a = 0; a < p.nb; a++) {
    const double ra = a + 1 < p.nb ? p.B : N - (double)a * p.B;
    for (uint32_t i = p.row[a]; i < p.row[a + 1]; i++) {
      const uint32_t b = p.col[i];
      sum += ra * (b + 1 < p.nb ? p.B : N - (double)b * p.B);
    }
  }
  drd_hsa_plan_free(&p);
  *pairs = sum;
  return DRD_OK;
}

/* Multiply and add count as 2 FLOPs; a GEMM of M rows, K inputs and Q outputs is 2·M·K·Q.
 * With dh = d / H:
 *   per denoising step, f(x, u):
 *     time MLP (one row)            2·(dt·d + d·d)
 *     in_proj                       2·N·de·d
 *     per layer (L of them):
 *       q, k, v and o projections   4 · 2·N·d·d
 *       attention                   4·H·dh · pairs  (q·k and p·v over the visited pairs)
 *       router                      2·N·d·E
 *       experts                     kmax · 3 · 2·N·d·dff  (gate, up, down; an upper bound:
 *                                   DES runs 1..kmax experts per token, as route_p decides)
 *     out_proj                      2·N·d·de
 *   per step with SAS active:       2 · 2·N·V·de  (logits against every embedding, then the
 *                                   weighted sum of embeddings)
 *   once per generation, rounding:  2·N·V·de      (logits for the argmax)
 * Norms, RoPE, softmax exponentials, the solver update and other element-wise work are
 * O(N·d) per layer and left out, as FLOP counts usually do. */
drd_status bench_flops_count(const drd_hparams *hp, uint32_t N, uint32_t steps, bench_flops *out) {
  double pairs = 0;
  drd_status st = attention_pairs(hp, N, &pairs);
  if (st != DRD_OK) return st;
  const double n = N, d = hp->d, de = hp->de, dt = hp->dt, V = hp->V, E = hp->E, dff = hp->dff;
  const double layer = 4 * 2 * n * d * d + 4 * d * pairs + 2 * n * d * E + hp->kmax * 3 * 2 * n * d * dff;
  out->step = 2 * (dt * d + d * d) + 2 * n * de * d + hp->L * layer + 2 * n * d * de;
  out->sas = 2 * 2 * n * V * de;
  out->round = 2 * n * V * de;

  return bench_sas_steps(hp, steps, NULL, &out->sas_steps);
}

drd_status bench_sas_steps(const drd_hparams *hp, uint32_t steps, uint8_t *flags, uint32_t *count) {
  /* the solver plan the engine builds for this request */
  drd_solver_plan plan;
  drd_status st =
      drd_solver_plan_make(hp->schedule, DRD_GRID_TIME_UNIFORM, steps, 2, hp->sas_gamma, hp->sas_start, &plan);
  *count = 0;
  for (uint32_t i = 0; st == DRD_OK && i < steps; i++) {
    if (flags) flags[i] = plan.step[i].sas != 0;
    *count += plan.step[i].sas != 0;
  }
  drd_solver_plan_free(&plan);
  return st;
}
