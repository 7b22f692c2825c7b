/* Sampler kernels (shaders/sas_*.comp, round_*.comp, solver_update_f32.comp,
 * prompt_clamp_f32.comp, philox_noise_f32.comp, time_features_f32.comp): tile shapes from
 * the device's limits, vocabulary splits and row chunks so that no binding exceeds the
 * device's range, and the push constants of shaders/pc_sampler.h. */
#include "ops_sampler.h"

#include <math.h>
#include <string.h>

#include "pc_sampler.h"

static uint64_t min64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static uint64_t max64(uint64_t a, uint64_t b) { return a > b ? a : b; }
static uint64_t cdiv(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

/* Workgroup size of the element-wise sampler kernels. */
static uint32_t elt_wg(const drd_context *ctx) {
  return ctx->caps.max_workgroup_invocations < 256 ? ctx->caps.max_workgroup_invocations : 256;
}

static drd_status check_etype(drd_dtype etype, const char *op) {
  if (etype != DRD_DTYPE_F32 && etype != DRD_DTYPE_F16)
    return drd_fail(DRD_ERROR_UNSUPPORTED, "%s: token embeddings of type %d are not f32 or f16", op, (int)etype);
  return DRD_OK;
}

/* Binds E's elements [first, first + count) (f32 or f16): *e_off receives the element offset
 * of `first` inside the binding. f16 ranges are rounded up to whole 32-bit words, which the
 * shaders read (the slack stays inside the buffer's aligned allocation). */
static drd_bind bind_e(const drd_context *ctx, const drd_buffer *E, uint64_t esize, uint64_t first, uint64_t count,
                       uint32_t *e_off) {
  uint32_t skip;
  drd_bind b = drd_bind_span(ctx, E, first * esize, count * esize, false, &skip);
  b.range = (b.range + 3) & ~(VkDeviceSize)3;
  *e_off = skip / (uint32_t)esize;
  return b;
}

/* ================================================================== SAS and rounding */

static uint32_t sas_wg(const drd_sas_config *c) { return c->rg * c->ct; }
static uint32_t sas_de4(uint32_t de) { return (de + 3) / 4; }            /* shaders' DE4 */
static uint32_t sas_stride4(uint32_t de) { return sas_de4(de) | 1u; }   /* shaders' ES4 (vec4s) */

/* Shared memory of either kernel (absorb: D rows, E tile, probabilities, per-thread maxima;
 * round: D rows, E tile, per-thread candidates): one configuration serves both ops. */
static uint64_t sas_shared(const drd_sas_config *c, uint32_t de) {
  uint64_t rb = (uint64_t)c->rg * c->tr, es = sas_stride4(de);
  uint64_t common = (c->vt + rb) * es * 16;
  return common + max64(rb * (c->vt + c->ct) * 4, rb * c->ct * 8);
}

bool drd_sas_config_ok(const drd_context *ctx, const drd_sas_config *c, uint32_t de) {
  if (!c->ct || !c->rg || !c->tr || !c->vt || c->vt % c->ct || c->vt % 4 || de == 0 || de > 1024) return false;
  uint32_t nc4 = (sas_de4(de) + c->ct - 1) / c->ct;
  if (c->tr * nc4 * 4 > 256 || c->tr * (c->vt / c->ct) > 256) return false; /* registers */
  const drd_device_caps *caps = &ctx->caps;
  uint32_t wg = sas_wg(c);
  return wg <= caps->max_workgroup_invocations && wg <= caps->max_workgroup_size[0] &&
         sas_shared(c, de) <= caps->max_shared_memory;
}

drd_sas_config drd_sas_pick(const drd_context *ctx, uint32_t rows, uint32_t de) {
  /* Largest first. 128 invocations with 4 x 2 logits and 4 x 4 ceil(de/128) accumulators
   * each reuse every shared-memory vec4 2-4 times; smaller shapes for small shared memory,
   * narrow embeddings (ct <= ceil(de / 4): no idle column threads in the weighted sum) and few
   * rows (rg * tr <= 2 rows: no idle row groups). */
  static const drd_sas_config cand[] = {
      {32, 4, 4, 64, 0}, {32, 4, 4, 32, 0}, {32, 4, 2, 32, 0}, {32, 2, 1, 32, 0}, {32, 1, 1, 32, 0},
      {16, 4, 4, 32, 0}, {16, 4, 2, 16, 0}, {16, 2, 1, 16, 0}, {16, 1, 1, 16, 0}, {8, 4, 2, 16, 0},
      {8, 4, 1, 8, 0},   {8, 1, 1, 8, 0},   {4, 2, 1, 4, 0},   {4, 1, 1, 4, 0},
  };
  uint32_t ctmax = 4;
  while (ctmax < 32 && ctmax < sas_de4(de)) ctmax *= 2;
  uint64_t rbmax = max64(2, 2 * (uint64_t)rows);
  /* a tile of f32 embeddings must fit one binding (small DRDIFF_MAX_BUFFER_RANGE) */
  uint64_t range = drd_max_bind_range(ctx), cap = range > ctx->alloc.alignment + 4 ? range - ctx->alloc.alignment - 4 : 0;
  for (int pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < sizeof cand / sizeof *cand; i++) {
      const drd_sas_config *c = &cand[i];
      if (c->ct > ctmax || (pass == 0 && (uint64_t)c->rg * c->tr > rbmax)) continue;
      if ((uint64_t)c->vt * de * 4 > cap && i + 1 < sizeof cand / sizeof *cand) continue;
      if (drd_sas_config_ok(ctx, c, de)) return *c;
    }
  return cand[sizeof cand / sizeof *cand - 1];
}

typedef struct sas_plan {
  drd_sas_config cfg;
  uint32_t rb;              /* rows per workgroup */
  uint32_t splits;          /* vocabulary splits */
  uint32_t split_len;       /* entries per split, a multiple of vt */
  uint32_t per_dispatch;    /* splits per dispatch (one E binding) */
  uint32_t row_chunk;       /* rows per dispatch */
  uint32_t state;           /* floats per (row, split) state: absorb de + 2, round 2 */
} sas_plan;

#define SAS_TARGET_GROUPS 256  /* split the vocabulary until this many workgroups run... */
#define SAS_MIN_SPLIT 1024     /* ...but keep at least this many entries per split */

/* llvmpipe (lavapipe) ends every shader invocation's loops after 65535 iterations in total,
 * all loops of the shader counted together (gallivm's LP_MAX_TGSI_LOOP_ITERATIONS: a guard
 * against infinite loops), silently: a workgroup streaming too many vocabulary tiles just
 * stops. There, splits are made short enough that an invocation stays within a budget,
 * counting every loop iteration of the kernels as if none were unrolled (an over-estimate;
 * the compiler unrolls many). Other drivers have no such limit. */
#define SAS_LLVMPIPE_LOOP_BUDGET 60000u

static bool is_llvmpipe(const drd_context *ctx) {
  return strstr(ctx->caps.driver_name, "llvmpipe") != NULL || strstr(ctx->caps.name, "llvmpipe") != NULL;
}

/* Loop iterations of one invocation per vocabulary tile (absorb, which exceeds round), and
 * outside the tile loop, without unrolling. */
static uint64_t sas_loop_cost(const drd_sas_config *c, uint32_t de, uint64_t *fixed) {
  const uint64_t wg = sas_wg(c), rb = (uint64_t)c->rg * c->tr, tvc = c->vt / c->ct, tr = c->tr;
  const uint64_t de4 = sas_de4(de), nc4 = (de4 + c->ct - 1) / c->ct;
  *fixed = cdiv(rb * de4, wg) * 5 + 4 * tr * (nc4 * 5 + c->ct + 2) + 2 * c->ct + 16;
  return cdiv((uint64_t)c->vt * de4, wg) * 5                /* tile load */
         + de4 * (1 + tvc + tr * (1 + tvc))                 /* logits */
         + 2 * tr * (tvc + 1)                               /* mask, probabilities */
         + tr * (c->ct + nc4 + 1)                           /* tile maximum, rescale */
         + (uint64_t)c->vt / 4 * (1 + tr + 4 * (1 + nc4 * (1 + tr))) /* weighted sum */
         + 2;
}

/* Plans the dispatches. cfg_in NULL: drd_sas_pick's shape; cfg_in->splits > 0 asks for that
 * many splits (at least; more where the binding range or llvmpipe's loop limit needs them).
 * scratch_bytes: what the caller has (UINT64_MAX: as much as wanted). */
static drd_status sas_plan_make(const drd_context *ctx, const drd_sas_config *cfg_in, drd_dtype etype,
                                uint32_t active, uint32_t V, uint32_t de, bool absorb, uint64_t scratch_bytes,
                                sas_plan *p) {
  p->cfg = cfg_in ? *cfg_in : drd_sas_pick(ctx, active, de);
  const drd_sas_config *c = &p->cfg;
  if (!drd_sas_config_ok(ctx, c, de))
    return drd_fail(DRD_ERROR_UNSUPPORTED, "sas: tile %u x %u x %u / %u does not fit this device for de = %u", c->ct,
                    c->rg, c->tr, c->vt, de);
  p->rb = c->rg * c->tr;
  p->state = absorb ? de + 2 : 2;
  const uint64_t esize = etype == DRD_DTYPE_F16 ? 2 : 4;
  const uint64_t range = drd_max_bind_range(ctx), align = ctx->alloc.alignment;
  if (range < align + 64) return drd_fail(DRD_ERROR_UNSUPPORTED, "sas: binding range %llu too small", (unsigned long long)range);
  /* a binding starts up to align - 1 bytes before its data and f16 ranges round up to words */
  const uint64_t cap = range - align - 4;
  uint64_t vmax = cap / (de * esize) / c->vt * c->vt; /* vocabulary entries one binding holds */
  if (vmax == 0)
    return drd_fail(DRD_ERROR_UNSUPPORTED, "sas: %u embedding rows of %u do not fit one binding", c->vt, de);
  uint64_t vsplit = vmax; /* the longest split */
  if (is_llvmpipe(ctx)) {
    uint64_t fixed, per_tile = sas_loop_cost(c, de, &fixed);
    uint64_t tiles = SAS_LLVMPIPE_LOOP_BUDGET > fixed ? (SAS_LLVMPIPE_LOOP_BUDGET - fixed) / per_tile : 0;
    if (tiles == 0)
      return drd_fail(DRD_ERROR_UNSUPPORTED, "sas: tile %u x %u x %u / %u too long for llvmpipe's loop limit", c->ct,
                      c->rg, c->tr, c->vt);
    vsplit = min64(vsplit, tiles * c->vt);
  }
  uint64_t need = cdiv(V, vsplit);
  uint64_t splits = need;
  if (c->splits) {
    splits = max64(c->splits, need);
  } else {
    uint64_t blocks = cdiv(active, p->rb);
    uint64_t want = min64(cdiv(SAS_TARGET_GROUPS, blocks), V / SAS_MIN_SPLIT);
    splits = max64(need, want);
  }
  splits = max64(1, min64(splits, cdiv(V, c->vt)));
  uint64_t want_scratch = splits > 1 ? (uint64_t)active * splits * p->state * 4 : 0;
  if (want_scratch > scratch_bytes) splits = need; /* no room for optional splits */
  uint64_t len = cdiv(cdiv(V, splits), c->vt) * c->vt;
  p->split_len = (uint32_t)len;
  p->splits = (uint32_t)cdiv(V, len);
  if (p->splits > 1 && (uint64_t)active * p->splits * p->state * 4 > scratch_bytes)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT,
                    "sas: the vocabulary (%u x %u) needs %u splits and a scratch of %llu bytes (have %llu)", V, de,
                    p->splits, (unsigned long long)((uint64_t)active * p->splits * p->state * 4),
                    (unsigned long long)(scratch_bytes == UINT64_MAX ? 0 : scratch_bytes));
  p->per_dispatch = (uint32_t)min64(max64(1, vmax / len), ctx->caps.max_workgroup_count[1]);
  /* rows per dispatch: D / x, the scratch and the tokens each within one binding, and no more
   * row blocks than one dispatch may have */
  uint64_t rc = active;
  rc = min64(rc, cap / ((uint64_t)de * 4));
  if (p->splits > 1) rc = min64(rc, cap / ((uint64_t)p->splits * p->state * 4));
  rc = min64(rc, (uint64_t)ctx->caps.max_workgroup_count[0] * p->rb);
  if (rc == 0)
    return drd_fail(DRD_ERROR_UNSUPPORTED, "sas: one row's state (%u splits) does not fit one binding", p->splits);
  if (rc < active && rc >= p->rb) rc = rc / p->rb * p->rb;
  p->row_chunk = (uint32_t)rc;
  return DRD_OK;
}

uint64_t drd_sas_scratch_bytes_config(const drd_context *ctx, const drd_sas_config *cfg, drd_dtype etype,
                                      uint32_t row_first, uint32_t rows, uint32_t V, uint32_t de) {
  if (rows <= row_first || V == 0 || check_etype(etype, "sas") != DRD_OK) return 0;
  sas_plan p = {0};
  if (sas_plan_make(ctx, cfg, etype, rows - row_first, V, de, true, UINT64_MAX, &p) != DRD_OK) return 0;
  return p.splits > 1 ? (uint64_t)(rows - row_first) * p.splits * p.state * 4 : 0;
}

uint64_t drd_sas_scratch_bytes(const drd_context *ctx, drd_dtype etype, uint32_t row_first, uint32_t rows,
                               uint32_t V, uint32_t de) {
  return drd_sas_scratch_bytes_config(ctx, NULL, etype, row_first, rows, V, de);
}

/* The common driver of both ops. absorb: D in place (gamma, tau); else x -> tokens. */
static drd_status sas_run(drd_seq *s, const drd_sas_config *cfg, const drd_buffer *E, drd_dtype etype,
                          const drd_buffer *Q, const drd_buffer *scratch, uint32_t row_first, uint32_t rows, uint32_t V,
                          uint32_t de, bool absorb, float gamma, float tau, const drd_buffer *tokens) {
  drd_context *ctx = drd_seq_context(s);
  drd_status status = DRD_OK;
  const char *op = absorb ? "sas_absorb" : "round";
  DRD_CHECK(check_etype(etype, op));
  if (rows <= row_first) return DRD_OK;
  if (V == 0 || de == 0) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "%s: V = %u, de = %u", op, V, de);
  if (absorb && !(tau > 0.0f)) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "%s: temperature %g must be > 0", op, (double)tau);
  const uint64_t esize = etype == DRD_DTYPE_F16 ? 2 : 4;
  if (E->size < (uint64_t)V * de * esize || Q->size < (uint64_t)rows * de * 4 ||
      (!absorb && tokens->size < (uint64_t)rows * 4))
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "%s: buffers smaller than rows=%u V=%u de=%u need", op, rows, V, de);
  const uint32_t active = rows - row_first;
  sas_plan p = {0};
  DRD_CHECK(sas_plan_make(ctx, cfg, etype, active, V, de, absorb, scratch ? scratch->size : 0, &p));
  const drd_sas_config *c = &p.cfg;
  const bool direct = p.splits == 1;

  uint32_t spec[6] = {sas_wg(c), c->ct, c->tr, c->vt, de, etype == DRD_DTYPE_F16 ? DRD_SAMPLER_E_F16 : DRD_SAMPLER_E_F32};
  drd_pipeline *main_p, *merge_p = NULL;
  DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){absorb ? "sas_absorb_f32" : "round_argmax_f32", absorb ? 3 : 4,
                                                       sizeof(drd_pc_sas), 6, spec}, &main_p));
  const uint32_t mwg = elt_wg(ctx);
  uint32_t mspec[2] = {mwg, de};
  if (!direct)
    DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){absorb ? "sas_merge_f32" : "round_merge_f32", 2,
                                                         sizeof(drd_pc_sas_merge), absorb ? 2 : 1, mspec}, &merge_p));

  for (uint32_t a0 = 0; a0 < active; a0 += p.row_chunk) {
    const uint32_t rn = (uint32_t)min64(p.row_chunk, active - a0), r0 = row_first + a0;
    uint32_t d_skip, s_skip = 0, t_skip = 0;
    drd_bind qb = drd_bind_span(ctx, Q, (uint64_t)r0 * de * 4, (uint64_t)rn * de * 4, absorb && direct, &d_skip);
    drd_bind sb = qb, tb = qb;
    sb.write = tb.write = false; /* stand-ins the shader does not touch */
    if (!direct)
      sb = drd_bind_span(ctx, scratch, (uint64_t)a0 * p.splits * p.state * 4, (uint64_t)rn * p.splits * p.state * 4,
                         true, &s_skip);
    if (!absorb && direct) tb = drd_bind_span(ctx, tokens, (uint64_t)r0 * 4, (uint64_t)rn * 4, true, &t_skip);
    for (uint32_t sp = 0; sp < p.splits; sp += p.per_dispatch) {
      const uint32_t ns = (uint32_t)min64(p.per_dispatch, p.splits - sp);
      const uint64_t vb = (uint64_t)sp * p.split_len, ve = min64(V, (uint64_t)(sp + ns) * p.split_len);
      uint32_t e_off;
      drd_bind eb = bind_e(ctx, E, esize, vb * de, (ve - vb) * de, &e_off);
      drd_pc_sas pc = {
          .rows = rn, .v_count = (uint32_t)(ve - vb), .split_len = p.split_len, .split_first = sp,
          .n_splits = p.splits, .e_off = e_off, .d_off = d_skip / 4, .s_off = s_skip / 4, .t_off = t_skip / 4,
          .direct = direct, .inv_tau = absorb ? 1.0f / tau : 0.0f, .gamma = gamma,
      };
      drd_bind binds[4] = {eb, qb, sb, tb};
      DRD_CHECK(drd_seq_dispatch(s, main_p, binds, absorb ? 3 : 4, &pc, (uint32_t)cdiv(rn, p.rb), ns, 1, op));
    }
    if (!direct) {
      sb.write = false;
      drd_bind binds[2] = {sb, qb};
      if (absorb) {
        binds[1].write = true;
      } else {
        binds[1] = drd_bind_span(ctx, tokens, (uint64_t)r0 * 4, (uint64_t)rn * 4, true, &t_skip);
      }
      drd_pc_sas_merge mpc = {.rows = rn, .n_splits = p.splits, .d_off = absorb ? d_skip / 4 : t_skip / 4,
                              .s_off = s_skip / 4, .gamma = gamma};
      uint32_t gx, gy;
      drd_grid_1d(ctx, cdiv((uint64_t)rn * (absorb ? de : 1), mwg), &gx, &gy);
      DRD_CHECK(drd_seq_dispatch(s, merge_p, binds, 2, &mpc, gx, gy, 1, absorb ? "sas_merge" : "round_merge"));
    }
  }
cleanup:
  return status;
}

drd_status drd_op_sas_absorb(drd_seq *s, const drd_buffer *E, drd_dtype etype, const drd_buffer *D,
                             const drd_buffer *scratch, uint32_t row_first, uint32_t rows, uint32_t V, uint32_t de,
                             float gamma, float tau) {
  return sas_run(s, NULL, E, etype, D, scratch, row_first, rows, V, de, true, gamma, tau, NULL);
}

drd_status drd_op_sas_absorb_config(drd_seq *s, const drd_sas_config *cfg, const drd_buffer *E, drd_dtype etype,
                                    const drd_buffer *D, const drd_buffer *scratch, uint32_t row_first,
                                    uint32_t rows, uint32_t V, uint32_t de, float gamma, float tau) {
  return sas_run(s, cfg, E, etype, D, scratch, row_first, rows, V, de, true, gamma, tau, NULL);
}

drd_status drd_op_round(drd_seq *s, const drd_buffer *E, drd_dtype etype, const drd_buffer *x,
                        const drd_buffer *scratch, uint32_t row_first, uint32_t rows, uint32_t V, uint32_t de,
                        const drd_buffer *tokens) {
  if (!tokens) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "round: no tokens buffer");
  return sas_run(s, NULL, E, etype, x, scratch, row_first, rows, V, de, false, 0.0f, 1.0f, tokens);
}

drd_status drd_op_round_config(drd_seq *s, const drd_sas_config *cfg, const drd_buffer *E, drd_dtype etype,
                               const drd_buffer *x, const drd_buffer *scratch, uint32_t row_first, uint32_t rows,
                               uint32_t V, uint32_t de, const drd_buffer *tokens) {
  if (!tokens) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "round: no tokens buffer");
  return sas_run(s, cfg, E, etype, x, scratch, row_first, rows, V, de, false, 0.0f, 1.0f, tokens);
}

/* ================================================================== solver update */

drd_status drd_op_solver_update(drd_seq *s, const drd_buffer *x, const drd_buffer *D0, const drd_buffer *D1,
                                const drd_buffer *D2, uint64_t n, float cx, float cd0, float cd1, float cd2,
                                uint32_t order) {
  drd_context *ctx = drd_seq_context(s);
  drd_status status = DRD_OK;
  if (order < 1 || order > 3) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "solver_update: order %u", order);
  const drd_buffer *d[3] = {D0, D1, D2};
  for (uint32_t k = 0; k < order; k++) {
    if (!d[k]) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "solver_update: order %u needs D%u", order, k);
    if (d[k]->size < n * 4) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "solver_update: D%u smaller than %llu floats", k, (unsigned long long)n);
  }
  if (n == 0) return DRD_OK;
  if (x->size < n * 4) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "solver_update: x smaller than %llu floats", (unsigned long long)n);
  const uint32_t wg = elt_wg(ctx);
  uint32_t spec[2] = {wg, order};
  drd_pipeline *p;
  DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){"solver_update_f32", 4, sizeof(drd_pc_solver), 2, spec}, &p));
  const uint64_t chunk = drd_chunk_elems(ctx, 4, 1);
  for (uint64_t first = 0; first < n; first += chunk) {
    const uint64_t len = min64(chunk, n - first);
    drd_bind binds[4] = {drd_out_range(x, first * 4, len * 4), drd_in_range(D0, first * 4, len * 4)};
    /* terms past the order are not read: D0's range stands in for them */
    binds[2] = order >= 2 ? drd_in_range(D1, first * 4, len * 4) : binds[1];
    binds[3] = order >= 3 ? drd_in_range(D2, first * 4, len * 4) : binds[1];
    drd_pc_solver pc = {.n = (uint32_t)len, .cx = cx, .cd0 = cd0, .cd1 = order >= 2 ? cd1 : 0.0f,
                        .cd2 = order >= 3 ? cd2 : 0.0f};
    uint32_t gx, gy;
    drd_grid_1d(ctx, cdiv(len, wg), &gx, &gy);
    DRD_CHECK(drd_seq_dispatch(s, p, binds, 4, &pc, gx, gy, 1, "solver_update"));
  }
cleanup:
  return status;
}

/* ================================================================== prompt clamp */

drd_status drd_op_prompt_clamp(drd_seq *s, const drd_buffer *E, drd_dtype etype, const drd_buffer *prompt_ids,
                               const drd_buffer *x, uint32_t P, uint32_t V, uint32_t de) {
  drd_context *ctx = drd_seq_context(s);
  drd_status status = DRD_OK;
  DRD_CHECK(check_etype(etype, "prompt_clamp"));
  if (P == 0) return DRD_OK;
  if (V == 0 || de == 0) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "prompt_clamp: V = %u, de = %u", V, de);
  const uint64_t esize = etype == DRD_DTYPE_F16 ? 2 : 4;
  if (E->size < (uint64_t)V * de * esize || prompt_ids->size < (uint64_t)P * 4 || x->size < (uint64_t)P * de * 4)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "prompt_clamp: buffers smaller than P=%u V=%u de=%u need", P, V, de);
  const uint32_t wg = elt_wg(ctx);
  uint32_t spec[2] = {wg, etype == DRD_DTYPE_F16 ? DRD_SAMPLER_E_F16 : DRD_SAMPLER_E_F32};
  drd_pipeline *p;
  DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){"prompt_clamp_f32", 3, sizeof(drd_pc_clamp), 2, spec}, &p));
  const uint64_t range = drd_max_bind_range(ctx), align = ctx->alloc.alignment;
  const uint64_t cap = range - align - 4;
  const uint64_t vchunk = cap / ((uint64_t)de * esize), rchunk = cap / ((uint64_t)de * 4);
  if (vchunk == 0 || rchunk == 0) return drd_fail(DRD_ERROR_UNSUPPORTED, "prompt_clamp: one row does not fit a binding");
  for (uint64_t r0 = 0; r0 < P; r0 += rchunk) {
    const uint64_t rn = min64(rchunk, P - r0);
    uint32_t x_skip, id_skip;
    drd_bind xb = drd_bind_span(ctx, x, r0 * de * 4, rn * de * 4, true, &x_skip);
    drd_bind ib = drd_bind_span(ctx, prompt_ids, r0 * 4, rn * 4, false, &id_skip);
    /* one dispatch per vocabulary range E's bindings can cover; each writes only the rows
     * whose id it holds, so the dispatches write disjoint rows */
    for (uint64_t v0 = 0; v0 < V; v0 += vchunk) {
      const uint64_t vn = min64(vchunk, V - v0);
      uint32_t e_off;
      drd_bind binds[3] = {bind_e(ctx, E, esize, v0 * de, vn * de, &e_off), ib, xb};
      drd_pc_clamp pc = {.rows = (uint32_t)rn, .de = de, .v_first = (uint32_t)v0, .v_count = (uint32_t)vn,
                         .e_off = e_off, .x_off = x_skip / 4, .id_off = id_skip / 4};
      uint32_t gx, gy;
      drd_grid_1d(ctx, cdiv(rn * de, wg), &gx, &gy);
      DRD_CHECK(drd_seq_dispatch(s, p, binds, 3, &pc, gx, gy, 1, "prompt_clamp"));
    }
  }
cleanup:
  return status;
}

/* ================================================================== Philox noise */

/* One Philox kernel over items first .. first + n - 1, each `words` u32 wide in out (noise:
 * one f32 per counter; words: one 4-word block per counter), chunked to the binding range
 * at item boundaries. */
static drd_status record_philox(drd_seq *s, const char *shader, const char *op, const drd_buffer *out,
                                uint32_t words, uint64_t first, uint64_t n, uint64_t seed) {
  drd_context *ctx = drd_seq_context(s);
  drd_status status = DRD_OK;
  const uint32_t wg = elt_wg(ctx);
  uint32_t spec[1] = {wg};
  drd_pipeline *p;
  DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){shader, 1, sizeof(drd_pc_philox), 1, spec}, &p));
  const uint64_t chunk = drd_chunk_elems(ctx, 4, words) / words, item = 4ull * words;
  for (uint64_t i0 = 0; i0 < n; i0 += chunk) {
    const uint64_t len = min64(chunk, n - i0), f0 = first + i0;
    drd_bind b = drd_out_range(out, i0 * item, len * item);
    drd_pc_philox pc = {.n = (uint32_t)len, .x_off = 0, .f0_lo = (uint32_t)f0, .f0_hi = (uint32_t)(f0 >> 32),
                        .seed_lo = (uint32_t)seed, .seed_hi = (uint32_t)(seed >> 32)};
    uint32_t gx, gy;
    drd_grid_1d(ctx, cdiv(len, wg), &gx, &gy);
    DRD_CHECK(drd_seq_dispatch(s, p, &b, 1, &pc, gx, gy, 1, op));
  }
cleanup:
  return status;
}

drd_status drd_op_philox_noise_range(drd_seq *s, const drd_buffer *x, uint64_t first, uint64_t n, uint64_t seed) {
  if (n == 0) return DRD_OK;
  if (x->size < n * 4) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "philox_noise: x smaller than %llu floats", (unsigned long long)n);
  return record_philox(s, "philox_noise_f32", "philox_noise", x, 1, first, n, seed);
}

drd_status drd_op_philox_noise(drd_seq *s, const drd_buffer *x, uint64_t n, uint64_t seed) {
  return drd_op_philox_noise_range(s, x, 0, n, seed);
}

drd_status drd_op_philox_words(drd_seq *s, const drd_buffer *out, uint64_t j0, uint64_t n, uint64_t seed) {
  if (n == 0) return DRD_OK;
  if (out->size < n * 16) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "philox_words: output smaller than %llu blocks", (unsigned long long)n);
  return record_philox(s, "philox_words_u32", "philox_words", out, 4, j0, n, seed);
}

/* ================================================================== time features */

drd_status drd_op_time_features_at(drd_seq *s, const drd_buffer *s_out, uint64_t first, uint32_t dt, double t) {
  drd_context *ctx = drd_seq_context(s);
  drd_status status = DRD_OK;
  if (dt < 2 || dt % 2) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "time_features: dt = %u must be even and >= 2", dt);
  if (!isfinite(t)) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "time_features: t is not finite");
  if (t < 0) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "time_features: t = %g < 0", t);
  if (s_out->size < (first + dt) * 4) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "time_features: output smaller than %llu floats", (unsigned long long)(first + dt));
  const uint32_t half = dt / 2;
  const uint32_t wg = 64; /* half <= 128 in every configuration: one or two workgroups */
  uint32_t spec[1] = {wg};
  drd_pipeline *p;
  DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){"time_features_f32", 1, sizeof(drd_pc_time), 1, spec}, &p));
  /* double-float operands: hi = the f32 rounding, lo = the f32 rounding of the rest */
  const double tt = t / (2.0 * 3.14159265358979323846);
  const double r = exp(-log(10000.0) / (double)half);
  uint32_t skip;
  drd_bind b = drd_bind_span(ctx, s_out, first * 4, (uint64_t)dt * 4, true, &skip);
  drd_pc_time pc = {.half_dt = half, .s_off = skip / 4, .tt_hi = (float)tt, .tt_lo = (float)(tt - (double)(float)tt),
                    .r_hi = (float)r, .r_lo = (float)(r - (double)(float)r)};
  DRD_CHECK(drd_seq_dispatch(s, p, &b, 1, &pc, (uint32_t)cdiv(half, wg), 1, 1, "time_features"));
cleanup:
  return status;
}

drd_status drd_op_time_features(drd_seq *s, const drd_buffer *s_out, uint32_t dt, double t) {
  return drd_op_time_features_at(s, s_out, 0, dt, t);
}
