/* The CPU denoiser: weights dequantized once, activations in f32, f64 accumulation. */
#include "forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "des.h"
#include "hsa_plan.h"
#include "log.h"

/* ================================================================== model creation */

/* One weight-loading job: rows [row0, row0 + rows) of a tensor (elements starting at
 * `first`), each of `cols` values, into a packed matrix or a plain f32 array. */
typedef struct load_job {
  const drd_tensor_view *t;
  uint64_t first;
  uint32_t rows, cols;
  drd_ref_packed *packed; /* or */
  float *plain;
} load_job;

typedef struct load_ctx {
  load_job *jobs;
  float *rowbuf;          /* [nthreads][max_cols] f32 */
  size_t max_cols;
} load_ctx;

static void load_task(void *p, uint32_t task, uint32_t thread) {
  const load_ctx *c = p;
  const load_job *j = &c->jobs[task];
  if (j->plain) {
    drd_tensor_to_f32(j->t, j->first, (uint64_t)j->rows * j->cols, j->plain);
    return;
  }
  float *row = c->rowbuf + (size_t)thread * c->max_cols;
  for (uint32_t r = 0; r < j->rows; r++) {
    drd_tensor_to_f32(j->t, j->first + (uint64_t)r * j->cols, j->cols, row);
    drd_ref_pack_row(j->packed, r, row);
  }
}

void drd_cpu_model_destroy(drd_cpu_model *cm) {
  if (!cm) return;
  free(cm->tok_embd);
  drd_ref_pack_free(&cm->tok_packed);
  drd_ref_pack_free(&cm->in_proj);
  free(cm->in_proj_b);
  drd_ref_pack_free(&cm->time0);
  drd_ref_pack_free(&cm->time2);
  free(cm->time0_b);
  free(cm->time2_b);
  free(cm->out_norm);
  drd_ref_pack_free(&cm->out_proj);
  free(cm->out_proj_b);
  if (cm->layers) {
    for (uint32_t l = 0; l < cm->hp.L; l++) {
      drd_cpu_layer *ly = &cm->layers[l];
      free(ly->attn_norm);
      free(ly->ffn_norm);
      drd_ref_pack_free(&ly->wq);
      drd_ref_pack_free(&ly->wk);
      drd_ref_pack_free(&ly->wv);
      drd_ref_pack_free(&ly->wo);
      drd_ref_pack_free(&ly->router);
      for (uint32_t e = 0; ly->gate && e < cm->hp.E; e++) drd_ref_pack_free(&ly->gate[e]);
      for (uint32_t e = 0; ly->up && e < cm->hp.E; e++) drd_ref_pack_free(&ly->up[e]);
      for (uint32_t e = 0; ly->down && e < cm->hp.E; e++) drd_ref_pack_free(&ly->down[e]);
      free(ly->gate);
      free(ly->up);
      free(ly->down);
    }
    free(cm->layers);
  }
  free(cm);
}

static drd_status check_hparams(const drd_hparams *hp) {
  if (!hp->V || !hp->de || !hp->d || !hp->L || !hp->H || !hp->dt || !hp->E || !hp->dff || !hp->kmax)
    return drd_fail(DRD_ERROR_BAD_MODEL, "CPU engine: a dimension is 0 (V=%u de=%u d=%u L=%u H=%u dt=%u E=%u dff=%u kmax=%u)",
                    hp->V, hp->de, hp->d, hp->L, hp->H, hp->dt, hp->E, hp->dff, hp->kmax);
  if (hp->d % hp->H || (hp->d / hp->H) % 2)
    return drd_fail(DRD_ERROR_BAD_MODEL, "CPU engine: d=%u is not H=%u heads of even width", hp->d, hp->H);
  if (hp->dt % 2) return drd_fail(DRD_ERROR_BAD_MODEL, "CPU engine: time_embed_dim %u is odd", hp->dt);
  if (hp->kmax > hp->E) return drd_fail(DRD_ERROR_BAD_MODEL, "CPU engine: kmax=%u > E=%u", hp->kmax, hp->E);
  if (hp->E > DRD_DES_MAX_EXPERTS)
    return drd_fail(DRD_ERROR_BAD_MODEL, "CPU engine: E=%u experts (at most %u supported)", hp->E, DRD_DES_MAX_EXPERTS);
  if (hp->kmax > 255) return drd_fail(DRD_ERROR_BAD_MODEL, "CPU engine: kmax=%u (at most 255)", hp->kmax);
  if (!(hp->route_p > 0.0f && hp->route_p <= 1.0f))
    return drd_fail(DRD_ERROR_BAD_MODEL, "CPU engine: route p=%g not in (0, 1]", (double)hp->route_p);
  if (hp->B == 0) return drd_fail(DRD_ERROR_BAD_MODEL, "CPU engine: HSA block size 0");
  return DRD_OK;
}

static drd_status check_tensor(const drd_tensor_view *t, const char *what, uint64_t want) {
  if (!t->data || t->n_elements != want)
    return drd_fail(DRD_ERROR_BAD_MODEL, "CPU engine: tensor %s has %llu elements, expected %llu",
                    t->name ? t->name : what, (unsigned long long)t->n_elements, (unsigned long long)want);
  return DRD_OK;
}

#define ADD_PACKED(T, FIRST, ROWS, COLS, DST)                                                  \
  do {                                                                                         \
    if ((st = drd_ref_pack_alloc((ROWS), (COLS), (DST))) != DRD_OK) goto fail;                  \
    jobs[nj++] = (load_job){.t = (T), .first = (FIRST), .rows = (ROWS), .cols = (COLS), .packed = (DST)}; \
  } while (0)
#define ADD_PLAIN(T, N, DST)                                                                   \
  do {                                                                                         \
    if (!((DST) = malloc(sizeof(float) * (size_t)(N)))) goto oom;                              \
    jobs[nj++] = (load_job){.t = (T), .first = 0, .rows = 1, .cols = (N), .plain = (DST)};     \
  } while (0)

drd_status drd_cpu_model_create(const drd_model_file *m, uint32_t nthreads, drd_cpu_model **out) {
  *out = NULL;
  if (!m) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "CPU engine: no model");
  const drd_hparams *hp = &m->hp;
  drd_status st = check_hparams(hp);
  if (st != DRD_OK) return st;
  const uint64_t V = hp->V, de = hp->de, d = hp->d, dt = hp->dt, E = hp->E, dff = hp->dff;
  const drd_model_tensors *T = &m->t;
  if (!T->layers) return drd_fail(DRD_ERROR_BAD_MODEL, "CPU engine: model has no layer tensors");
#define CHECK(t, n) if ((st = check_tensor(&(t), #t, (n))) != DRD_OK) return st
  CHECK(T->token_embd, V * de);
  CHECK(T->in_proj_w, d * de);
  CHECK(T->in_proj_b, d);
  CHECK(T->time_mlp0_w, d * dt);
  CHECK(T->time_mlp0_b, d);
  CHECK(T->time_mlp2_w, d * d);
  CHECK(T->time_mlp2_b, d);
  CHECK(T->output_norm, d);
  CHECK(T->out_proj_w, de * d);
  CHECK(T->out_proj_b, de);
  for (uint32_t l = 0; l < hp->L; l++) {
    const drd_layer_tensors *lt = &T->layers[l];
    CHECK(lt->attn_norm, d);
    CHECK(lt->attn_q, d * d);
    CHECK(lt->attn_k, d * d);
    CHECK(lt->attn_v, d * d);
    CHECK(lt->attn_output, d * d);
    CHECK(lt->ffn_norm, d);
    CHECK(lt->ffn_gate_inp, E * d);
    CHECK(lt->ffn_gate_exps, E * dff * d);
    CHECK(lt->ffn_up_exps, E * dff * d);
    CHECK(lt->ffn_down_exps, E * d * dff);
  }
#undef CHECK

  drd_cpu_model *cm = calloc(1, sizeof *cm);
  const size_t max_jobs = 12 + (size_t)hp->L * (8 + 3 * (size_t)E);
  load_job *jobs = calloc(max_jobs, sizeof *jobs);
  size_t nj = 0;
  float *rowbuf = NULL;
  if (!cm || !jobs) goto oom;
  cm->hp = *hp;
  cm->nthreads = nthreads ? nthreads : drd_ref_threads();
  if (cm->nthreads > DRD_REF_MAX_THREADS) cm->nthreads = DRD_REF_MAX_THREADS;

  ADD_PLAIN(&T->token_embd, V * de, cm->tok_embd);
  ADD_PACKED(&T->token_embd, 0, hp->V, hp->de, &cm->tok_packed);
  ADD_PACKED(&T->in_proj_w, 0, hp->d, hp->de, &cm->in_proj);
  ADD_PLAIN(&T->in_proj_b, d, cm->in_proj_b);
  ADD_PACKED(&T->time_mlp0_w, 0, hp->d, hp->dt, &cm->time0);
  ADD_PLAIN(&T->time_mlp0_b, d, cm->time0_b);
  ADD_PACKED(&T->time_mlp2_w, 0, hp->d, hp->d, &cm->time2);
  ADD_PLAIN(&T->time_mlp2_b, d, cm->time2_b);
  ADD_PLAIN(&T->output_norm, d, cm->out_norm);
  ADD_PACKED(&T->out_proj_w, 0, hp->de, hp->d, &cm->out_proj);
  ADD_PLAIN(&T->out_proj_b, de, cm->out_proj_b);
  cm->layers = calloc(hp->L, sizeof *cm->layers);
  if (!cm->layers) goto oom;
  for (uint32_t l = 0; l < hp->L; l++) {
    const drd_layer_tensors *lt = &T->layers[l];
    drd_cpu_layer *ly = &cm->layers[l];
    ly->gate = calloc(E, sizeof *ly->gate);
    ly->up = calloc(E, sizeof *ly->up);
    ly->down = calloc(E, sizeof *ly->down);
    if (!ly->gate || !ly->up || !ly->down) goto oom;
    ADD_PLAIN(&lt->attn_norm, d, ly->attn_norm);
    ADD_PLAIN(&lt->ffn_norm, d, ly->ffn_norm);
    ADD_PACKED(&lt->attn_q, 0, hp->d, hp->d, &ly->wq);
    ADD_PACKED(&lt->attn_k, 0, hp->d, hp->d, &ly->wk);
    ADD_PACKED(&lt->attn_v, 0, hp->d, hp->d, &ly->wv);
    ADD_PACKED(&lt->attn_output, 0, hp->d, hp->d, &ly->wo);
    ADD_PACKED(&lt->ffn_gate_inp, 0, hp->E, hp->d, &ly->router);
    for (uint32_t e = 0; e < E; e++) {
      ADD_PACKED(&lt->ffn_gate_exps, e * dff * d, hp->dff, hp->d, &ly->gate[e]);
      ADD_PACKED(&lt->ffn_up_exps, e * dff * d, hp->dff, hp->d, &ly->up[e]);
      ADD_PACKED(&lt->ffn_down_exps, e * d * dff, hp->d, hp->dff, &ly->down[e]);
    }
  }
  size_t max_cols = de;
  if (d > max_cols) max_cols = d;
  if (dt > max_cols) max_cols = dt;
  if (dff > max_cols) max_cols = dff;
  rowbuf = malloc(sizeof(float) * max_cols * cm->nthreads);
  if (!rowbuf) goto oom;
  load_ctx lc = {.jobs = jobs, .rowbuf = rowbuf, .max_cols = max_cols};
  drd_ref_parallel(cm->nthreads, (uint32_t)nj, load_task, &lc);
  free(rowbuf);
  free(jobs);
  *out = cm;
  return DRD_OK;

oom:
  st = drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "CPU engine: out of memory loading the weights (~%.1f GiB f32)",
                (double)(V * de * 2 + d * (de + dt + d) + de * d +
                         (double)hp->L * (4 * d * d + E * d + 3 * E * dff * d)) * 4.0 / (1u << 30));
fail:
  free(rowbuf);
  free(jobs);
  drd_cpu_model_destroy(cm);
  return st;
}

/* ================================================================== per-N workspace */

struct drd_cpu_forward {
  const drd_cpu_model *cm;
  uint32_t N, nthreads;
  drd_hsa_plan plan;
  double *rope;        /* [N, dh/2, 2] f64 */
  float *h;            /* [N, d] residual stream */
  float *a;            /* [N, d] normalized rows */
  float *q, *k, *v;    /* [N, d] each */
  float *att;          /* [N, d] attention output */
  float *tmp;          /* [N, d] projection output */
  float *logits;       /* [N, E] router logits */
  uint32_t *route_e;   /* [N, kmax] chosen experts, selection order */
  float *route_w;      /* [N, kmax] their weights */
  uint8_t *route_n;    /* [L, N] experts per token, per layer */
  uint32_t *exp_off;   /* [E + 1] start of each expert's rows in exp_rows */
  uint32_t *exp_rows;  /* [N * kmax] n * kmax + slot, grouped by expert, ascending n */
  float *xa;           /* [N, d] rows gathered for one expert */
  float *g, *u;        /* [N, dff] gate and up outputs (one expert) */
  float *y;            /* [N, d] down output (one expert) */
  float *slots;        /* [N * kmax, d] each (token, slot)'s expert output */
  double *ws;          /* GEMM scratch: nthreads * MC * max(K) f64 */
  float *tfeat;        /* [dt] */
  float *t1, *te;      /* [d], [d] */
};

void drd_cpu_forward_destroy(drd_cpu_forward *fw) {
  if (!fw) return;
  drd_hsa_plan_free(&fw->plan);
  void *bufs[] = {fw->rope, fw->h, fw->a, fw->q, fw->k, fw->v, fw->att, fw->tmp, fw->logits,
                  fw->route_e, fw->route_w, fw->route_n, fw->exp_off, fw->exp_rows, fw->xa,
                  fw->g, fw->u, fw->y, fw->slots, fw->ws, fw->tfeat, fw->t1, fw->te};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
  free(fw);
}

drd_status drd_cpu_forward_create(const drd_cpu_model *cm, uint32_t N, drd_cpu_forward **out) {
  *out = NULL;
  if (N == 0) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "CPU forward: N must be >= 1");
  const drd_hparams *hp = &cm->hp;
  drd_cpu_forward *fw = calloc(1, sizeof *fw);
  if (!fw) return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "CPU forward: workspace");
  fw->cm = cm;
  fw->N = N;
  fw->nthreads = cm->nthreads;
  drd_status st = drd_hsa_plan_make(hp, N, &fw->plan);
  if (st != DRD_OK) {
    drd_cpu_forward_destroy(fw);
    return st;
  }
  const size_t n = N, d = hp->d, km = hp->kmax, dh = hp->d / hp->H;
  uint32_t kmaxdim = hp->de;
  if (hp->d > kmaxdim) kmaxdim = hp->d;
  if (hp->dt > kmaxdim) kmaxdim = hp->dt;
  if (hp->dff > kmaxdim) kmaxdim = hp->dff;
  fw->rope = malloc(sizeof(double) * n * dh);
  fw->h = malloc(sizeof(float) * n * d);
  fw->a = malloc(sizeof(float) * n * d);
  fw->q = malloc(sizeof(float) * n * d);
  fw->k = malloc(sizeof(float) * n * d);
  fw->v = malloc(sizeof(float) * n * d);
  fw->att = malloc(sizeof(float) * n * d);
  fw->tmp = malloc(sizeof(float) * n * d);
  fw->logits = malloc(sizeof(float) * n * hp->E);
  fw->route_e = malloc(sizeof(uint32_t) * n * km);
  fw->route_w = malloc(sizeof(float) * n * km);
  fw->route_n = calloc(n * hp->L, 1);
  fw->exp_off = malloc(sizeof(uint32_t) * ((size_t)hp->E + 1));
  fw->exp_rows = malloc(sizeof(uint32_t) * n * km);
  fw->xa = malloc(sizeof(float) * n * d);
  fw->g = malloc(sizeof(float) * n * hp->dff);
  fw->u = malloc(sizeof(float) * n * hp->dff);
  fw->y = malloc(sizeof(float) * n * d);
  fw->slots = malloc(sizeof(float) * n * km * d);
  fw->ws = malloc(sizeof(double) * drd_ref_gemm_scratch(kmaxdim) * fw->nthreads);
  fw->tfeat = malloc(sizeof(float) * hp->dt);
  fw->t1 = malloc(sizeof(float) * d);
  fw->te = malloc(sizeof(float) * d);
  if (!fw->rope || !fw->h || !fw->a || !fw->q || !fw->k || !fw->v || !fw->att || !fw->tmp ||
      !fw->logits || !fw->route_e || !fw->route_w || !fw->route_n || !fw->exp_off ||
      !fw->exp_rows || !fw->xa || !fw->g || !fw->u || !fw->y || !fw->slots || !fw->ws ||
      !fw->tfeat || !fw->t1 || !fw->te) {
    drd_cpu_forward_destroy(fw);
    return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "CPU forward: activations for N=%u", N);
  }
  drd_ref_rope_table(N, (uint32_t)dh, hp->rope_theta, fw->rope);
  *out = fw;
  return DRD_OK;
}

const uint8_t *drd_cpu_forward_route_counts(const drd_cpu_forward *fw, uint32_t l) {
  if (!fw || l >= fw->cm->hp.L) return NULL;
  return fw->route_n + (size_t)l * fw->N;
}

/* ================================================================== row-parallel helpers */

#define ROWS_PER_TASK 32u

typedef enum row_op { OP_RMSNORM, OP_ROPE, OP_ROUTE, OP_COMBINE, OP_GATHER, OP_SWIGLU, OP_SCATTER } row_op;

typedef struct row_ctx {
  drd_cpu_forward *fw;
  row_op op;
  const float *in;      /* OP_RMSNORM */
  const float *w;       /* OP_RMSNORM */
  float *out;           /* OP_RMSNORM, OP_ROPE (in place) */
  uint32_t layer;       /* OP_ROUTE, OP_COMBINE */
  uint32_t rows;        /* expert ops: rows of the expert's batch (else N) */
  const uint32_t *list; /* expert ops: the batch's (token * kmax + slot) entries */
} row_ctx;

static void row_task(void *p, uint32_t task, uint32_t thread) {
  (void)thread;
  const row_ctx *c = p;
  drd_cpu_forward *fw = c->fw;
  const drd_hparams *hp = &fw->cm->hp;
  const uint32_t r0 = task * ROWS_PER_TASK;
  const uint32_t r1 = r0 + ROWS_PER_TASK < c->rows ? r0 + ROWS_PER_TASK : c->rows;
  const size_t d = hp->d, km = hp->kmax, dff = hp->dff;
  switch (c->op) {
  case OP_GATHER: /* the expert's input rows, in batch order */
    for (uint32_t i = r0; i < r1; i++) memcpy(fw->xa + i * d, fw->a + (c->list[i] / km) * d, sizeof(float) * d);
    break;
  case OP_SWIGLU:
    drd_ref_swiglu(fw->g + r0 * dff, fw->u + r0 * dff, fw->g + r0 * dff, (r1 - r0) * dff);
    break;
  case OP_SCATTER: /* each output row to its (token, slot) */
    for (uint32_t i = r0; i < r1; i++) memcpy(fw->slots + (size_t)c->list[i] * d, fw->y + i * d, sizeof(float) * d);
    break;
  case OP_RMSNORM:
    drd_ref_rmsnorm(c->in + r0 * d, c->w, c->out + r0 * d, r1 - r0, d, hp->norm_eps);
    break;
  case OP_ROPE: {
    const uint32_t dh = hp->d / hp->H;
    drd_ref_rope_apply(c->out + r0 * d, r1 - r0, hp->H, dh, fw->rope + (size_t)r0 * dh);
    break;
  }
  case OP_ROUTE:
    for (uint32_t n = r0; n < r1; n++)
      fw->route_n[(size_t)c->layer * fw->N + n] =
          (uint8_t)drd_des_route(fw->logits + (size_t)n * hp->E, hp->E, hp->kmax, hp->route_p,
                                 fw->route_e + n * km, fw->route_w + n * km);
    break;
  case OP_COMBINE:
    /* h += sum over the token's slots (selection order) of w * expert output, in f64,
     * rounded once: DES(b) as one f32 vector, then the residual add in f32. */
    for (uint32_t n = r0; n < r1; n++) {
      const uint32_t cnt = fw->route_n[(size_t)c->layer * fw->N + n];
      float *h = fw->h + n * d;
      for (size_t j = 0; j < d; j++) {
        double acc = 0.0;
        for (uint32_t s = 0; s < cnt; s++)
          acc += (double)fw->route_w[n * km + s] * (double)fw->slots[(n * km + s) * d + j];
        h[j] = h[j] + (float)acc;
      }
    }
    break;
  }
}

/* Row-parallel element-wise work; small batches stay on the calling thread. */
static void run_rows(drd_cpu_forward *fw, row_ctx *c) {
  c->fw = fw;
  if (!c->list) c->rows = fw->N;
  const uint32_t tasks = (c->rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
  drd_ref_parallel(c->rows >= 128 ? fw->nthreads : 1, tasks, row_task, c);
}

static void rmsnorm_rows(drd_cpu_forward *fw, const float *in, const float *w, float *out) {
  row_ctx c = {.op = OP_RMSNORM, .in = in, .w = w, .out = out};
  run_rows(fw, &c);
}

/* ================================================================== the forward pass */

void drd_cpu_time_features(uint32_t dt, double u, float Ts, float *s) {
  const uint32_t half = dt / 2;
  const double t = u * (double)Ts;
  for (uint32_t i = 0; i < half; i++) {
    const double phi = exp(-log(10000.0) * (double)i / (double)half);
    s[i] = (float)cos(t * phi);
    s[half + i] = (float)sin(t * phi);
  }
}

/* The MoE FFN of one layer: fw->a holds the normed rows; adds DES(a) to fw->h. */
static drd_status des_ffn(drd_cpu_forward *fw, uint32_t l) {
  const drd_cpu_model *cm = fw->cm;
  const drd_hparams *hp = &cm->hp;
  const drd_cpu_layer *ly = &cm->layers[l];
  const size_t N = fw->N, km = hp->kmax, E = hp->E;
  drd_status st = drd_ref_gemm_packed(fw->a, fw->N, &ly->router, NULL, fw->logits, fw->nthreads, fw->ws);
  if (st != DRD_OK) return st;
  row_ctx rc = {.op = OP_ROUTE, .layer = l};
  run_rows(fw, &rc);
  const uint8_t *cnt = fw->route_n + (size_t)l * N;

  /* Group (token, slot) pairs by expert, ascending token inside each group (counting sort),
   * so every expert runs one GEMM over its tokens. */
  memset(fw->exp_off, 0, sizeof(uint32_t) * (E + 1));
  for (size_t n = 0; n < N; n++)
    for (uint32_t s = 0; s < cnt[n]; s++) fw->exp_off[fw->route_e[n * km + s] + 1]++;
  for (size_t e = 0; e < E; e++) fw->exp_off[e + 1] += fw->exp_off[e];
  uint32_t fill[DRD_DES_MAX_EXPERTS];
  for (size_t e = 0; e < E; e++) fill[e] = fw->exp_off[e];
  for (size_t n = 0; n < N; n++)
    for (uint32_t s = 0; s < cnt[n]; s++) fw->exp_rows[fill[fw->route_e[n * km + s]]++] = (uint32_t)(n * km + s);

  for (size_t e = 0; e < E; e++) {
    const uint32_t r0 = fw->exp_off[e], m = fw->exp_off[e + 1] - r0;
    if (m == 0) continue;
    row_ctx gc = {.op = OP_GATHER, .rows = m, .list = fw->exp_rows + r0};
    run_rows(fw, &gc);
    if ((st = drd_ref_gemm_packed(fw->xa, m, &ly->gate[e], NULL, fw->g, fw->nthreads, fw->ws)) != DRD_OK) return st;
    if ((st = drd_ref_gemm_packed(fw->xa, m, &ly->up[e], NULL, fw->u, fw->nthreads, fw->ws)) != DRD_OK) return st;
    gc.op = OP_SWIGLU;
    run_rows(fw, &gc);
    if ((st = drd_ref_gemm_packed(fw->g, m, &ly->down[e], NULL, fw->y, fw->nthreads, fw->ws)) != DRD_OK) return st;
    gc.op = OP_SCATTER;
    run_rows(fw, &gc);
  }
  row_ctx cc = {.op = OP_COMBINE, .layer = l};
  run_rows(fw, &cc);
  return DRD_OK;
}

drd_status drd_cpu_forward_run(drd_cpu_forward *fw, const float *x, double u, float *out) {
  const drd_cpu_model *cm = fw->cm;
  const drd_hparams *hp = &cm->hp;
  const uint32_t N = fw->N, nt = fw->nthreads;
  const size_t d = hp->d;
  drd_status st;
#define TRY(call) if ((st = (call)) != DRD_OK) return st

  /* 1. time embedding te = time_mlp.2(SiLU(time_mlp.0(s))) */
  drd_cpu_time_features(hp->dt, u, hp->time_scale, fw->tfeat);
  TRY(drd_ref_gemm_packed(fw->tfeat, 1, &cm->time0, cm->time0_b, fw->t1, nt, fw->ws));
  drd_ref_silu(fw->t1, fw->t1, d);
  TRY(drd_ref_gemm_packed(fw->t1, 1, &cm->time2, cm->time2_b, fw->te, nt, fw->ws));

  /* 2. h = in_proj(x) + te */
  TRY(drd_ref_gemm_packed(x, N, &cm->in_proj, cm->in_proj_b, fw->h, nt, fw->ws));
  for (size_t n = 0; n < N; n++)
    for (size_t j = 0; j < d; j++) fw->h[n * d + j] += fw->te[j];

  /* 3. layers */
  for (uint32_t l = 0; l < hp->L; l++) {
    const drd_cpu_layer *ly = &cm->layers[l];
    rmsnorm_rows(fw, fw->h, ly->attn_norm, fw->a);
    TRY(drd_ref_gemm_packed(fw->a, N, &ly->wq, NULL, fw->q, nt, fw->ws));
    TRY(drd_ref_gemm_packed(fw->a, N, &ly->wk, NULL, fw->k, nt, fw->ws));
    TRY(drd_ref_gemm_packed(fw->a, N, &ly->wv, NULL, fw->v, nt, fw->ws));
    row_ctx rq = {.op = OP_ROPE, .out = fw->q}, rk = {.op = OP_ROPE, .out = fw->k};
    run_rows(fw, &rq);
    run_rows(fw, &rk);
    TRY(drd_ref_attention_hsa(fw->q, fw->k, fw->v, fw->att, N, hp->H, hp->d / hp->H, &fw->plan, nt));
    TRY(drd_ref_gemm_packed(fw->att, N, &ly->wo, NULL, fw->tmp, nt, fw->ws));
    drd_ref_add(fw->h, fw->tmp, fw->h, (size_t)N * d);
    rmsnorm_rows(fw, fw->h, ly->ffn_norm, fw->a);
    TRY(des_ffn(fw, l));
  }

  /* 4. x0_hat = out_proj(RMSNorm(h) * output_norm) */
  rmsnorm_rows(fw, fw->h, cm->out_norm, fw->a);
  TRY(drd_ref_gemm_packed(fw->a, N, &cm->out_proj, cm->out_proj_b, out, nt, fw->ws));
#undef TRY
  return DRD_OK;
}
