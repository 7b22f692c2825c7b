/* The CPU engine on tiny models built in memory (tests/util_gguf_build.h):
 *   - one forward against a naive, loop-by-loop transcription of SPEC 4-6 (dense attention
 *     with SPEC 5's mask, per-token experts), for N in every attention mode, f32 and mixed
 *     f16/q8_0/bf16 weights; thread counts 1, 2, 3 give identical bits;
 *   - short generations against a naive loop (same noise, solver plan, naive forward, naive
 *     SAS and rounding): same tokens; deterministic; progress / cancellation;
 *   - invalid arguments are refused with INVALID_ARGUMENT. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_engine.h"
#include "forward.h"
#include "model_file.h"
#include "philox.h"
#include "schedule.h"
#include "solver.h"
#include "util_gguf_build.h"
#include "util_hsa_oracle.h"
#include "util_expect.h"
#include "util_rand.h"

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    printf("out of memory\n");
    exit(1);
  }
  return p;
}

/* ================================================================== naive reference */

static float *deq(const drd_tensor_view *t) {
  float *p = xmalloc(sizeof(float) * t->n_elements);
  drd_tensor_to_f32(t, 0, t->n_elements, p);
  return p;
}

/* y[M, N] = x[M, K] W[N, K]^T + b: f64 sum in ascending k, + bias, one rounding */
static void lin(const float *x, const float *W, const float *b, float *y, size_t M, size_t N, size_t K) {
  for (size_t i = 0; i < M; i++)
    for (size_t n = 0; n < N; n++) {
      double s = 0;
      for (size_t k = 0; k < K; k++) s += (double)x[i * K + k] * (double)W[n * K + k];
      if (b) s += b[n];
      y[i * N + n] = (float)s;
    }
}

static void rms(const float *x, const float *w, float *y, size_t M, size_t d, float eps) {
  for (size_t i = 0; i < M; i++) {
    double ss = 0;
    for (size_t c = 0; c < d; c++) ss += (double)x[i * d + c] * x[i * d + c];
    const double inv = 1.0 / sqrt(ss / d + eps);
    for (size_t c = 0; c < d; c++) y[i * d + c] = (float)(x[i * d + c] * inv * w[c]);
  }
}

/* top-p routing written out: f32 probabilities, descending with ties to the lower index */
static uint32_t route(const float *lg, const drd_hparams *hp, uint32_t *ex, double *w) {
  const uint32_t E = hp->E;
  double mx = lg[0], sum = 0;
  float pi[256];
  int used[256] = {0};
  for (uint32_t e = 1; e < E; e++) mx = lg[e] > mx ? lg[e] : mx;
  for (uint32_t e = 0; e < E; e++) sum += exp(lg[e] - mx);
  for (uint32_t e = 0; e < E; e++) pi[e] = (float)(exp(lg[e] - mx) / sum);
  uint32_t k = 0;
  float cum = 0;
  while (k < hp->kmax) {
    int best = -1;
    for (uint32_t e = 0; e < E; e++)
      if (!used[e] && (best < 0 || pi[e] > pi[best])) best = (int)e;
    used[best] = 1;
    ex[k++] = (uint32_t)best;
    cum += pi[best];
    if (hp->route_p < 1 && cum >= hp->route_p) break;
  }
  float c = 0;
  for (uint32_t i = 0; i < k; i++) c += pi[ex[i]];
  for (uint32_t i = 0; i < k; i++) w[i] = pi[ex[i]] / c;
  return k;
}

static void naive_forward(const drd_model_file *m, const float *x, uint32_t N, double u, float *out) {
  const drd_hparams *hp = &m->hp;
  const size_t d = hp->d, de = hp->de, dt = hp->dt, H = hp->H, dh = d / H, E = hp->E, dff = hp->dff;
  const drd_model_tensors *T = &m->t;
  /* time embedding */
  float *s = xmalloc(sizeof(float) * dt), *t1 = xmalloc(sizeof(float) * d), *te = xmalloc(sizeof(float) * d);
  for (size_t i = 0; i < dt / 2; i++) {
    const double phi = exp(-log(10000.0) * (double)i / (double)(dt / 2)), t = u * hp->time_scale;
    s[i] = (float)cos(t * phi);
    s[dt / 2 + i] = (float)sin(t * phi);
  }
  float *W = deq(&T->time_mlp0_w), *b = deq(&T->time_mlp0_b);
  lin(s, W, b, t1, 1, d, dt);
  for (size_t i = 0; i < d; i++) t1[i] = (float)(t1[i] / (1 + exp(-(double)t1[i])));
  free(W);
  free(b);
  W = deq(&T->time_mlp2_w);
  b = deq(&T->time_mlp2_b);
  lin(t1, W, b, te, 1, d, d);
  free(W);
  free(b);
  /* h = in_proj(x) + te */
  float *h = xmalloc(sizeof(float) * N * d), *a = xmalloc(sizeof(float) * N * d);
  float *q = xmalloc(sizeof(float) * N * d), *k = xmalloc(sizeof(float) * N * d), *v = xmalloc(sizeof(float) * N * d);
  float *o = xmalloc(sizeof(float) * N * d), *p = xmalloc(sizeof(float) * N * d);
  W = deq(&T->in_proj_w);
  b = deq(&T->in_proj_b);
  lin(x, W, b, h, N, d, de);
  free(W);
  free(b);
  for (size_t n = 0; n < N; n++)
    for (size_t c = 0; c < d; c++) h[n * d + c] += te[c];
  double *sc = xmalloc(sizeof(double) * N);
  for (uint32_t l = 0; l < hp->L; l++) {
    const drd_layer_tensors *lt = &T->layers[l];
    float *nw = deq(&lt->attn_norm);
    rms(h, nw, a, N, d, hp->norm_eps);
    free(nw);
    float *Wq = deq(&lt->attn_q), *Wk = deq(&lt->attn_k), *Wv = deq(&lt->attn_v), *Wo = deq(&lt->attn_output);
    lin(a, Wq, NULL, q, N, d, d);
    lin(a, Wk, NULL, k, N, d, d);
    lin(a, Wv, NULL, v, N, d, d);
    for (size_t n = 0; n < N; n++)
      for (size_t hh = 0; hh < H; hh++)
        for (size_t i = 0; i < dh / 2; i++) {
          const double ang = (double)n * pow(hp->rope_theta, -2.0 * (double)i / (double)dh);
          float *vecs[2] = {q, k};
          for (int t = 0; t < 2; t++) {
            float *r = vecs[t] + n * d + hh * dh;
            const double x0 = r[i], x1 = r[i + dh / 2];
            r[i] = (float)(x0 * cos(ang) - x1 * sin(ang));
            r[i + dh / 2] = (float)(x0 * sin(ang) + x1 * cos(ang));
          }
        }
    for (size_t hh = 0; hh < H; hh++)
      for (uint32_t i = 0; i < N; i++) {
        double mx = -INFINITY, den = 0;
        for (uint32_t j = 0; j < N; j++) {
          sc[j] = -INFINITY;
          if (!drd_test_hsa_sees(hp, N, i, j)) continue;
          double dot = 0;
          for (size_t c = 0; c < dh; c++) dot += (double)q[i * d + hh * dh + c] * k[j * d + hh * dh + c];
          sc[j] = dot / sqrt((double)dh);
          if (sc[j] > mx) mx = sc[j];
        }
        for (uint32_t j = 0; j < N; j++) den += sc[j] == -INFINITY ? 0.0 : exp(sc[j] - mx);
        for (size_t c = 0; c < dh; c++) {
          double acc = 0;
          for (uint32_t j = 0; j < N; j++)
            if (sc[j] != -INFINITY) acc += exp(sc[j] - mx) * v[j * d + hh * dh + c];
          o[i * d + hh * dh + c] = (float)(acc / den);
        }
      }
    lin(o, Wo, NULL, p, N, d, d);
    for (size_t i = 0; i < N * d; i++) h[i] += p[i];
    free(Wq);
    free(Wk);
    free(Wv);
    free(Wo);
    /* DES */
    nw = deq(&lt->ffn_norm);
    rms(h, nw, a, N, d, hp->norm_eps);
    free(nw);
    float *Wr = deq(&lt->ffn_gate_inp), *Wg = deq(&lt->ffn_gate_exps), *Wu = deq(&lt->ffn_up_exps), *Wd = deq(&lt->ffn_down_exps);
    float *lg = xmalloc(sizeof(float) * E), *g = xmalloc(sizeof(float) * dff), *uu = xmalloc(sizeof(float) * dff);
    float *y = xmalloc(sizeof(float) * d);
    double *acc = xmalloc(sizeof(double) * d);
    for (size_t n = 0; n < N; n++) {
      lin(a + n * d, Wr, NULL, lg, 1, E, d);
      uint32_t ex[256];
      double w[256];
      const uint32_t kk = route(lg, hp, ex, w);
      for (size_t c = 0; c < d; c++) acc[c] = 0;
      for (uint32_t s2 = 0; s2 < kk; s2++) {
        const size_t e = ex[s2];
        lin(a + n * d, Wg + e * dff * d, NULL, g, 1, dff, d);
        lin(a + n * d, Wu + e * dff * d, NULL, uu, 1, dff, d);
        for (size_t f = 0; f < dff; f++) g[f] = (float)(g[f] / (1 + exp(-(double)g[f])) * uu[f]);
        lin(g, Wd + e * d * dff, NULL, y, 1, d, dff);
        for (size_t c = 0; c < d; c++) acc[c] += w[s2] * y[c];
      }
      for (size_t c = 0; c < d; c++) h[n * d + c] += (float)acc[c];
    }
    free(Wr);
    free(Wg);
    free(Wu);
    free(Wd);
    free(lg);
    free(g);
    free(uu);
    free(y);
    free(acc);
  }
  float *nw = deq(&T->output_norm);
  rms(h, nw, a, N, d, hp->norm_eps);
  free(nw);
  W = deq(&T->out_proj_w);
  b = deq(&T->out_proj_b);
  lin(a, W, b, out, N, de, d);
  free(W);
  free(b);
  free(s);
  free(t1);
  free(te);
  free(h);
  free(a);
  free(q);
  free(k);
  free(v);
  free(o);
  free(p);
  free(sc);
}

/* SAS and rounding written out: full-vocabulary logits per row, two-pass softmax. */
static void naive_sas(const float *Emb, uint32_t V, uint32_t de, float *D, uint32_t rows, double gamma, double tau) {
  double *z = xmalloc(sizeof(double) * V), *acc = xmalloc(sizeof(double) * de);
  for (uint32_t r = 0; r < rows; r++) {
    double mx = -INFINITY, den = 0;
    for (uint32_t vv = 0; vv < V; vv++) {
      double s = 0;
      for (uint32_t c = 0; c < de; c++) s += (double)D[r * de + c] * Emb[vv * de + c];
      z[vv] = s / tau;
      if (z[vv] > mx) mx = z[vv];
    }
    for (uint32_t c = 0; c < de; c++) acc[c] = 0;
    for (uint32_t vv = 0; vv < V; vv++) {
      const double pv = exp(z[vv] - mx);
      den += pv;
      for (uint32_t c = 0; c < de; c++) acc[c] += pv * Emb[vv * de + c];
    }
    for (uint32_t c = 0; c < de; c++) D[r * de + c] = (float)((1 - gamma) * D[r * de + c] + gamma * (acc[c] / den));
  }
  free(z);
  free(acc);
}

static void naive_generate(const drd_model_file *m, const drd_gen_params *p, const int32_t *prompt, uint32_t P,
                           uint32_t G, int32_t *tokens, float *x_final) {
  const drd_hparams *hp = &m->hp;
  const uint32_t N = P + G, de = hp->de;
  float *Emb = deq(&m->t.token_embd);
  float *x = xmalloc(sizeof(float) * N * de), *D[3];
  for (int i = 0; i < 3; i++) D[i] = xmalloc(sizeof(float) * N * de);
  drd_philox_fill_normal(p->seed, 0, x, (size_t)N * de);
  drd_solver_plan plan;
  drd_solver_plan_make(hp->schedule, p->grid, p->steps, p->order, p->sas_gamma, p->sas_start, &plan);
  for (uint32_t i = 1; i <= p->steps; i++) {
    float *t = D[2];
    D[2] = D[1];
    D[1] = D[0];
    D[0] = t;
    for (uint32_t n = 0; n < P; n++) memcpy(x + n * de, Emb + prompt[n] * de, sizeof(float) * de);
    naive_forward(m, x, N, plan.u[i - 1], D[0]);
    for (uint32_t n = 0; n < P; n++) memcpy(D[0] + n * de, Emb + prompt[n] * de, sizeof(float) * de);
    if (p->sas_gamma > 0 && plan.u[i - 1] <= p->sas_start)
      naive_sas(Emb, hp->V, de, D[0] + P * de, G, p->sas_gamma, p->sas_temperature);
    const float *const dd[3] = {D[0], D[1], D[2]};
    drd_solver_apply(&plan.step[i - 1], x, dd, (size_t)N * de);
  }
  for (uint32_t r = 0; r < G; r++) {
    double best = -INFINITY;
    tokens[r] = 0;
    for (uint32_t vv = 0; vv < hp->V; vv++) {
      double s = 0;
      for (uint32_t c = 0; c < de; c++) s += (double)x[(P + r) * de + c] * Emb[vv * de + c];
      if (s > best) {
        best = s;
        tokens[r] = (int32_t)vv;
      }
    }
  }
  memcpy(x_final, x, sizeof(float) * N * de);
  drd_solver_plan_free(&plan);
  free(Emb);
  free(x);
  for (int i = 0; i < 3; i++) free(D[i]);
}

/* ================================================================== tests */

static drd_model_file *make_model(uint64_t wseed, int mixed, uint8_t **bytes, drd_rng *rng) {
  drd_test_model_desc desc = {.hp = NULL, .seed = wseed, .matrix_type = DRD_DTYPE_F32, .mixed_types = mixed};
  size_t size = 0;
  drd_gguf_builder *b = drd_test_model_builder(&desc);
  if (!b) {
    FAIL("building the tiny model");
    return NULL;
  }
  /* Random routers of fan-in scale give near-uniform expert probabilities, so with p = 0.7
   * every token would take kmax experts. Sharper routers make DES choose 1 or 2. */
  drd_hparams hp;
  drd_test_tiny_hparams(&hp);
  float *wr = xmalloc(sizeof(float) * hp.E * hp.d);
  for (uint32_t l = 0; l < hp.L; l++) {
    char name[64];
    snprintf(name, sizeof name, "blk.%u.ffn_gate_inp.weight", l);
    drd_fill_uniform(rng, wr, (size_t)hp.E * hp.d, -0.6f, 0.6f);
    const uint64_t shape[2] = {hp.E, hp.d};
    if (drd_gguf_add_tensor_f32(b, name, DRD_DTYPE_F32, 2, shape, wr) != 0) FAIL("replacing %s", name);
  }
  free(wr);
  const int werr = drd_gguf_builder_write(b, bytes, &size);
  drd_gguf_builder_destroy(b);
  if (werr != 0) {
    FAIL("writing the tiny model");
    return NULL;
  }
  drd_model_file *m = NULL;
  if (drd_model_file_open_memory(*bytes, size, &m) != DRD_OK) {
    FAIL("opening the tiny model: %s", drd_last_error());
    return NULL;
  }
  return m;
}

typedef struct prog {
  uint32_t calls, last, steps, cancel_at;
} prog;
static int on_progress(uint32_t step, uint32_t steps, double el, void *user) {
  prog *p = user;
  (void)el;
  p->calls++;
  if (step != p->last + 1) p->steps = 0xffffffff; /* mark out of order */
  p->last = step;
  if (p->steps != 0xffffffff) p->steps = steps;
  return p->cancel_at && step >= p->cancel_at;
}

static void test_forward(drd_model_file *m, const char *what, drd_rng *rng) {
  const uint32_t Ns[] = {1, 7, 20, 32, 33, 50, 64, 65, 100, 128, 129, 200};
  const double us[] = {1.0, 0.0625, 0.5, 0.001};
  drd_cpu_model *cm[3] = {NULL, NULL, NULL};
  for (uint32_t t = 0; t < 3; t++)
    if (drd_cpu_model_create(m, t + 1, &cm[t]) != DRD_OK) {
      FAIL("%s: model create: %s", what, drd_last_error());
      return;
    }
  double worst = 0;
  int routes_vary = 0;
  for (size_t i = 0; i < sizeof Ns / sizeof Ns[0]; i++) {
    const uint32_t N = Ns[i];
    const size_t n = (size_t)N * m->hp.de;
    float *x = xmalloc(sizeof(float) * n), *ref = xmalloc(sizeof(float) * n), *y[3];
    for (int t = 0; t < 3; t++) y[t] = xmalloc(sizeof(float) * n);
    for (size_t e = 0; e < n; e++) x[e] = (float)(drd_rng_uniform(rng, -1, 1) * 1.7);
    const double u = us[i % 4];
    naive_forward(m, x, N, u, ref);
    for (int t = 0; t < 3; t++) {
      drd_cpu_forward *fw = NULL;
      for (size_t e = 0; e < n; e++) y[t][e] = NAN;
      if (drd_cpu_forward_create(cm[t], N, &fw) != DRD_OK || drd_cpu_forward_run(fw, x, u, y[t]) != DRD_OK) {
        FAIL("%s: forward N=%u failed: %s", what, N, drd_last_error());
      } else if (t == 0) {
        const uint8_t *rc = drd_cpu_forward_route_counts(fw, 0);
        for (uint32_t r = 1; r < N; r++) routes_vary |= rc[r] != rc[0];
      }
      drd_cpu_forward_destroy(fw);
    }
    const double rel = drd_rel_error(y[0], ref, n);
    if (rel > worst) worst = rel;
    if (!(rel < 1e-5)) FAIL("%s: forward N=%u u=%g: rel error %.3g vs the naive SPEC transcription", what, N, u, rel);
    if (memcmp(y[0], y[1], sizeof(float) * n) || memcmp(y[0], y[2], sizeof(float) * n))
      FAIL("%s: forward N=%u: 1, 2 and 3 threads give different bits", what, N);
    free(x);
    free(ref);
    for (int t = 0; t < 3; t++) free(y[t]);
  }
  if (!routes_vary) FAIL("%s: every token used the same number of experts (DES never varied)", what);
  printf("%s: forward worst rel error vs naive %.2e over N = 1..200\n", what, worst);
  for (int t = 0; t < 3; t++) drd_cpu_model_destroy(cm[t]);
}

static void test_generate(drd_model_file *m, const char *what, drd_rng *rng, uint64_t seed) {
  const drd_hparams *hp = &m->hp;
  struct {
    uint32_t P, G, steps, order;
    drd_grid grid;
    float gamma;
  } cases[] = {
      {0, 12, 4, 2, DRD_GRID_TIME_UNIFORM, 0.5f},   {3, 17, 5, 3, DRD_GRID_LOGSNR_UNIFORM, 0.5f},
      {5, 40, 3, 1, DRD_GRID_TIME_UNIFORM, 0.0f},   {2, 70, 4, 2, DRD_GRID_LOGSNR_UNIFORM, 0.5f},
      {1, 0, 3, 2, DRD_GRID_TIME_UNIFORM, 0.5f},    {7, 1, 11, 3, DRD_GRID_TIME_UNIFORM, 0.5f},
  };
  drd_cpu_model *cm = NULL;
  if (drd_cpu_model_create(m, 0, &cm) != DRD_OK) {
    FAIL("%s: model create", what);
    return;
  }
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const uint32_t P = cases[c].P, G = cases[c].G, N = P + G;
    int32_t prompt[8], tok[80], tok2[80], ref[80];
    for (uint32_t i = 0; i < P; i++) prompt[i] = (int32_t)drd_rng_range(rng, 0, hp->V - 1);
    drd_gen_params p = {.steps = cases[c].steps, .order = cases[c].order, .grid = cases[c].grid,
                        .seed = drd_rng_next(rng), .sas_gamma = cases[c].gamma,
                        .sas_temperature = hp->sas_temperature, .sas_start = hp->sas_start};
    if (c == 1) p.sas_start = 1.0f; /* SAS at every step */
    float *x = xmalloc(sizeof(float) * (N ? N : 1) * hp->de), *xr = xmalloc(sizeof(float) * (N ? N : 1) * hp->de);
    prog pr = {0};
    p.progress = on_progress;
    p.progress_user = &pr;
    drd_status st = drd_cpu_generate_model(cm, &p, prompt, P, G, tok, x);
    if (st != DRD_OK) {
      FAIL("%s: generate case %zu: %s", what, c, drd_last_error());
      free(x);
      free(xr);
      continue;
    }
    if (G == 0) {
      if (pr.calls) FAIL("%s: G = 0 should evaluate nothing", what);
      free(x);
      free(xr);
      continue;
    }
    if (pr.calls != p.steps || pr.steps != p.steps) FAIL("%s: progress called %u times (steps %u) for %u steps", what, pr.calls, pr.steps, p.steps);
    naive_generate(m, &p, prompt, P, G, ref, xr);
    for (uint32_t i = 0; i < G; i++)
      if (tok[i] < 0 || (uint32_t)tok[i] >= hp->V) FAIL("%s: token %d out of range", what, tok[i]);
    const double rel = drd_rel_error(x + (size_t)P * hp->de, xr + (size_t)P * hp->de, (size_t)G * hp->de);
    if (memcmp(tok, ref, sizeof(int32_t) * G) || !(rel < 1e-5)) {
      FAIL("%s: generate case %zu (P=%u G=%u S=%u order %u grid %d gamma %g): tokens %s the naive loop, final x rel error %.3g",
           what, c, P, G, p.steps, p.order, (int)p.grid, (double)p.sas_gamma, memcmp(tok, ref, sizeof(int32_t) * G) ? "differ from" : "match",
           rel);
    }
    /* deterministic, including on another thread count */
    drd_cpu_model *cm1 = NULL;
    if (drd_cpu_model_create(m, 1, &cm1) == DRD_OK) {
      p.progress = NULL;
      if (drd_cpu_generate_model(cm1, &p, prompt, P, G, tok2, NULL) != DRD_OK || memcmp(tok, tok2, sizeof(int32_t) * G))
        FAIL("%s: generate case %zu is not reproducible on 1 thread", what, c);
      drd_cpu_model_destroy(cm1);
    }
    free(x);
    free(xr);
  }
  /* the one-shot entry point equals the model-reusing one */
  {
    int32_t prompt[2] = {5, 9}, a[10], b[10];
    drd_gen_params p = {.steps = 3, .order = 2, .grid = DRD_GRID_TIME_UNIFORM, .seed = seed,
                        .sas_gamma = 0.5f, .sas_temperature = 0.1f, .sas_start = 0.5f};
    if (drd_cpu_generate(m, &p, prompt, 2, 10, a) != DRD_OK || drd_cpu_generate_model(cm, &p, prompt, 2, 10, b, NULL) != DRD_OK ||
        memcmp(a, b, sizeof a))
      FAIL("%s: drd_cpu_generate differs from drd_cpu_generate_model", what);
    /* cancellation after step 2 */
    prog pr = {.cancel_at = 2};
    p.steps = 5;
    p.progress = on_progress;
    p.progress_user = &pr;
    if (drd_cpu_generate(m, &p, prompt, 2, 10, a) != DRD_ERROR_CANCELLED || pr.calls != 2)
      FAIL("%s: cancelling at step 2: status / %u progress calls", what, pr.calls);
    /* invalid arguments */
    p.progress = NULL;
    int32_t badp[1] = {(int32_t)hp->V};
    drd_gen_params q = p;
    if (drd_cpu_generate(m, &p, NULL, 0, 0, a) != DRD_ERROR_INVALID_ARGUMENT) FAIL("P + G = 0 accepted");
    if (drd_cpu_generate(m, &p, badp, 1, 3, a) != DRD_ERROR_INVALID_ARGUMENT) FAIL("prompt id V accepted");
    badp[0] = -1;
    if (drd_cpu_generate(m, &p, badp, 1, 3, a) != DRD_ERROR_INVALID_ARGUMENT) FAIL("prompt id -1 accepted");
    if (drd_cpu_generate(m, &p, NULL, 2, 3, a) != DRD_ERROR_INVALID_ARGUMENT) FAIL("P = 2 without ids accepted");
    if (drd_cpu_generate(m, &p, prompt, 2, 3, NULL) != DRD_ERROR_INVALID_ARGUMENT) FAIL("no output accepted");
    q.order = 4;
    if (drd_cpu_generate(m, &q, prompt, 2, 3, a) != DRD_ERROR_INVALID_ARGUMENT) FAIL("order 4 accepted");
    q = p;
    q.steps = 0;
    if (drd_cpu_generate(m, &q, prompt, 2, 3, a) != DRD_ERROR_INVALID_ARGUMENT) FAIL("steps 0 accepted");
    q = p;
    q.grid = (drd_grid)9;
    if (drd_cpu_generate(m, &q, prompt, 2, 3, a) != DRD_ERROR_INVALID_ARGUMENT) FAIL("grid 9 accepted");
    q = p;
    q.sas_temperature = 0;
    if (drd_cpu_generate(m, &q, prompt, 2, 3, a) != DRD_ERROR_INVALID_ARGUMENT) FAIL("SAS temperature 0 accepted");
    q = p;
    q.sas_gamma = 1.5f;
    if (drd_cpu_generate(m, &q, prompt, 2, 3, a) != DRD_ERROR_INVALID_ARGUMENT) FAIL("SAS gamma 1.5 accepted");
    if (drd_cpu_generate(NULL, &p, prompt, 2, 3, a) != DRD_ERROR_INVALID_ARGUMENT) FAIL("NULL model accepted");
  }
  drd_cpu_model_destroy(cm);
}

static void quiet_log(drd_log_level level, const char *msg, void *user) {
  (void)level;
  (void)msg;
  (void)user;
}

int main(void) {
  const uint64_t seed = drd_test_seed();
  drd_rng rng = {seed};
  drd_log_set(quiet_log, NULL, DRD_LOG_ERROR); /* the invalid-argument checks fail on purpose */
  for (int mixed = 0; mixed < 2; mixed++) {
    uint8_t *bytes = NULL;
    drd_model_file *m = make_model(drd_rng_next(&rng), mixed, &bytes, &rng);
    if (m) {
      const char *what = mixed ? "tiny mixed f32/f16/q8_0/bf16" : "tiny f32";
      test_forward(m, what, &rng);
      test_generate(m, what, &rng, seed);
      drd_model_file_close(m);
    }
    free(bytes);
  }
  if (drd_test_failures) {
    printf("test_host_forward: %d failure(s), seed %llu\n", drd_test_failures, (unsigned long long)seed);
    return 1;
  }
  printf("test_host_forward: ok\n");
  return 0;
}
