/* Dynamic Expert Scheduling: planning, scratch and recording of the MoE FFN (ops_des.h),
 * shaders/des_*.comp. */
#include "ops_des.h"

#include <stdio.h>
#include <string.h>

#include "pc_des.h"
#include "push_constants.h"
#include "vk_shaders.h"

#define DES_MAX_E 256u /* shared-memory histograms in des_route / des_scan */
/* the subgroup kernels' tile on CPU devices (des_sg.glsl): SG_TM groups of a subgroup's width
 * of rows, SG_TN columns per lane */
#define SG_TM 2u
#define SG_TN 4u

static uint32_t elem_size(uint32_t type) { return type == DRD_DES_F16 ? 2u : 4u; }

/* f16 weights go through 16-bit storage where the device has it, else packed words; the CPU
 * devices' kernels (sg) read words only: lavapipe loads each 16-bit element on its own
 * (des_gemm1_sg_f16p.comp) */
static const char *wvariant(const drd_context *ctx, uint32_t type, bool sg) {
  if (type == DRD_DES_F32) return "f32";
  return ctx->caps.storage_16bit && !sg ? "f16" : "f16p";
}

/* des_logits.glsl's shape (its LN, TOK, EC): groups of 32 invocations, 2 tokens per group, 8
 * experts at a time; each (group, token, expert) has a shared row of 32 partial sums + 1 pad */
enum { LOGITS_LN = 32, LOGITS_TOK = 2, LOGITS_EC = 8 };
/* des_logits_sg.glsl's tokens per lane */
enum { LOGITS_SG_TOKS = 4 };
static uint32_t logits_shared(uint32_t wg) { return wg / LOGITS_LN * LOGITS_TOK * LOGITS_EC * (LOGITS_LN + 1) * 4; }

static uint32_t pow2_floor(uint32_t x) {
  uint32_t p = 1;
  while (p * 2 <= x) p *= 2;
  return p;
}

static uint64_t ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

/* Bytes [begin, end) of buf as one binding that starts at the aligned offset at or before
 * begin and ends on a 4-byte boundary (packed f16 reads whole words); *lead = begin - start. */
static drd_bind bind_bytes(const drd_context *ctx, const drd_buffer *buf, uint64_t begin, uint64_t end, bool write,
                           uint64_t *lead) {
  uint64_t a = ctx->alloc.alignment;
  uint64_t start = begin / a * a;
  uint64_t stop = (end + 3) / 4 * 4;
  *lead = begin - start;
  return (drd_bind){buf, start, stop - start, write};
}

static drd_status check_weights(const drd_des_weights *w) {
  if (!w || !w->router || !w->gate || !w->up || !w->down)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "des: missing weight buffers");
  if (w->d == 0 || w->dff == 0 || w->E == 0 || w->E > DES_MAX_E || w->kmax == 0 || w->kmax > w->E)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "des: bad shape d=%u dff=%u E=%u kmax=%u (need 1 <= kmax <= E <= %u)",
                    w->d, w->dff, w->E, w->kmax, DES_MAX_E);
  if (!(w->p > 0.0f)) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "des: p must be > 0");
  if ((w->router_type != DRD_DES_F32 && w->router_type != DRD_DES_F16) ||
      (w->expert_type != DRD_DES_F32 && w->expert_type != DRD_DES_F16))
    return drd_fail(DRD_ERROR_UNSUPPORTED, "des: weight types %u/%u (only f32 and f16)", w->router_type,
                    w->expert_type);
  uint64_t ne = (uint64_t)w->E * w->dff * w->d;
  if (ne >= (1ull << 32)) return drd_fail(DRD_ERROR_UNSUPPORTED, "des: expert tensors over 2^32 elements");
  uint64_t es = elem_size(w->expert_type);
  if (w->router->size < (uint64_t)w->E * w->d * elem_size(w->router_type) || w->gate->size < ne * es ||
      w->up->size < ne * es || w->down->size < ne * es)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "des: weight buffers smaller than their shapes");
  return DRD_OK;
}

/* Output rows of one expert per weight binding: the whole expert when it fits, else the most
 * rows that fit, a multiple of the tile width. 0 when not even one tile width fits. */
static uint32_t chunk_rows(uint64_t bind, uint64_t align, uint32_t N, uint32_t K, uint32_t es, uint32_t bn) {
  uint64_t row = (uint64_t)K * es;
  if (bind <= align + 4) return 0;
  uint64_t r = (bind - align - 4) / row;
  if (r >= N) return N;
  r = r / bn * bn;
  return (uint32_t)r;
}

/* Bytes of the largest activation binding of one pass over tc tokens. */
static uint64_t pass_bytes(const drd_des_scratch *s, uint64_t align, uint32_t tc, uint64_t *rows) {
  uint64_t r = ceil_div((uint64_t)tc * s->kmax + (uint64_t)s->E * (s->bm - 1), s->bm) * s->bm;
  *rows = r;
  uint64_t m = (uint64_t)tc * s->d * 4 + align + 4; /* b / out slices */
  /* h counted as f32 (it is f16 under the cooperative-matrix kernels: an upper bound) */
  uint64_t c[] = {r * s->dff * 4, r * s->d * 4, r * 4, (uint64_t)tc * s->E * 4, (uint64_t)tc * s->kmax * 4};
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
    if (c[i] > m) m = c[i];
  return m;
}

/* The subgroup kernels (des_sg.glsl) for tile {bm, bn, -, tm, tn}: a CPU device whose
 * subgroups shuffle, one subgroup of tm x tn lanes' rows and columns (f32 weights, or f16 ones
 * read as 32-bit words: no 16-bit storage needed). */
static bool sg_tile_ok(const drd_context *ctx, const uint32_t t[5]) {
  const drd_device_caps *c = &ctx->caps;
  const uint32_t sg = drd_cpu_sg_wg(ctx);
  return sg && t[0] == t[3] * sg && t[1] == t[4] * sg && t[3] * t[4] <= 16 && 4ull * t[0] <= c->max_shared_memory &&
         drd_shader_find("des_gemm1_sg_f32");
}

/* Whether tile t = {bm, bn, bk, tm, tn} of the scalar kernels (kind 0), the cooperative-
 * matrix kernels (kind 1: tm x tn subgroups) or the subgroup kernels (kind 2, sg_tile_ok)
 * fits the device, and one token's padded activations fit a binding; if so it becomes s's
 * tile. */
enum { TILE_SCALAR, TILE_CM, TILE_SG };
static bool try_tile(const drd_context *ctx, const uint32_t t[5], int kind, drd_des_scratch *s) {
  const drd_device_caps *c = &ctx->caps;
  uint32_t bm = t[0], bn = t[1], bk = t[2], tm = t[3], tn = t[4];
  const int cm = kind == TILE_CM;
  if (!bm || !bn || !bk || !tm || !tn || bm % 4 || bn % 4 || bk % 4) return false;
  if (kind == TILE_SG) {
    if (!sg_tile_ok(ctx, t)) return false;
  } else if (cm) {
    /* gate/up: two weight slices and accumulators, and the row tokens */
    if (s->expert_type != DRD_DES_F16 || !c->storage_16bit || !drd_cm_tile_ok(ctx, bm, bn, bk, tm, tn, 2, 1, 4ull * bm))
      return false;
  } else {
    if (bm % tm || bn % tn) return false;
    uint32_t wg = (bm / tm) * (bn / tn);
    /* des_common.glsl: As[bk][bm/4 + 1] and two W[bk][bn/4 + 1] vec4 slices, bm row tokens */
    uint64_t shared = 16ull * bk * (bm / 4 + 1) + 32ull * bk * (bn / 4 + 1) + 4ull * bm;
    if (wg > c->max_workgroup_invocations || wg > c->max_workgroup_size[0] || shared > c->max_shared_memory)
      return false;
  }
  uint64_t rows;
  s->bm = bm;
  if (pass_bytes(s, ctx->alloc.alignment, 1, &rows) > drd_max_bind_range(ctx)) return false; /* padding alone overflows */
  s->bn = bn, s->bk = bk, s->tm = tm, s->tn = tn, s->cm = cm, s->sg = kind == TILE_SG;
  s->tm2 = tm, s->tn2 = tn;
  if (cm) {
    /* The down GEMM has one weight operand, so each subgroup can hold twice the matrices: the
     * fewest subgroups that keep within 4 x 4 each. H200 (driver 580), dense 16384x1024x1024
     * on a 128 x 128 x 32 tile: 2 x 2 subgroups 184 TFLOP/s, 2 x 4 125 (docs/performance.md). */
    uint32_t tm2 = bm / (4 * c->coopmat_m), tn2 = bn / (4 * c->coopmat_n);
    tm2 = tm2 ? tm2 : 1, tn2 = tn2 ? tn2 : 1;
    if (drd_cm_tile_ok(ctx, bm, bn, bk, tm2, tn2, 1, 1, 0)) s->tm2 = tm2, s->tn2 = tn2;
  }
  return true;
}

/* Grouped-GEMM tile: the first preferred shape that fits the device. Cooperative matrices
 * first where the device has them (f16 weights). H200 (driver 580), whole FFN of d 1024,
 * dff 2304, E 8 at T = 16384 / 4096: 128 x 128 in 2 x 4 subgroups (64 x 32 each, 4 x 2
 * matrices of 16 x 16 per weight) 3.49 / 0.99 ms, 64 x 128 in 2 x 4 4.09 / 1.14, 64 x 64 in
 * 2 x 2 4.11 / 1.18, 64 x 128 in 2 x 2 5.72 / 1.67 (docs/performance.md). Every expert's rows
 * are padded to the tile height, so 128-row tiles only once the pairs fill them (rows >= 8
 * tiles per expert: 12 % padding at most) or give a large GPU one 128 x 128 tile of the
 * gate/up product per SM or more, padding aside: base-220m's gate/up at T = 512 / 1024 / 2048
 * took 88 / 122 / 194 us on them against 108 / 166 / 295 on 64 x 128 tiles, while the
 * shipped model's 1024 tokens (2 columns of tiles) ran 1 % slower (twenty-first session);
 * smaller tiles for small matrices (lavapipe's 8 x 8).
 * Scalar kernels: on an H100 (driver 580) the 64 x 128 / 4 x 8 tile that an earlier
 * measurement preferred for many pairs made the gate/up kernel (two 4 x 8 accumulators per
 * invocation) 9x slower than the down kernel per FLOP, 78 ms for T = 16384 (tool_bench_des,
 * 2026-11-25, docs/performance.md): so GPUs use 64 x 64 / 4 x 4 at every size. CPU devices
 * (lavapipe) prefer small tiles. */
static drd_status choose_tile(const drd_context *ctx, const drd_des_scratch_desc *desc,
                              drd_des_scratch *s) {
  const drd_device_caps *c = &ctx->caps;
  /* The short tiles at the end are for small binding ranges: every expert segment is padded
   * to the tile height, so one pass holds at least E * (bm - 1) rows of h, which must fit one
   * binding (base-220m under a 1 MiB range needs bm = 8). */
  static const uint32_t coop[][5] = {{128, 128, 32, 2, 4}, {64, 128, 32, 2, 4}, {64, 64, 32, 2, 2},
                                     {32, 64, 16, 2, 2},   {32, 32, 16, 2, 2}};
  static const uint32_t gpu[][5] = {{64, 64, 16, 4, 4}, {64, 64, 8, 4, 4}, {32, 64, 8, 4, 4}, {32, 32, 8, 4, 4},
                                    {16, 16, 8, 2, 2},  {8, 32, 8, 2, 4},  {4, 32, 8, 1, 4}};
  static const uint32_t cpu[][5] = {{32, 32, 16, 4, 4}, {32, 32, 8, 4, 4}, {16, 16, 8, 2, 2},
                                    {8, 32, 8, 2, 4},   {4, 32, 8, 1, 4}};
  if (desc->bm) {
    uint32_t want[5] = {desc->bm, desc->bn, desc->bk, desc->tm, desc->tn};
    if (try_tile(ctx, want, desc->sg ? TILE_SG : desc->cm ? TILE_CM : TILE_SCALAR, s)) return DRD_OK;
  } else {
    const uint64_t rows = (uint64_t)desc->max_T * s->kmax;
    const bool big = rows >= 8ull * 128 * s->E || rows / 128 * ((s->dff + 127) / 128) >= 128;
    for (size_t i = 0; c->coopmat_m && i < sizeof coop / sizeof coop[0]; i++)
      if ((coop[i][0] < 128 || big) && try_tile(ctx, coop[i], TILE_CM, s)) return DRD_OK;
    const uint32_t sgs = c->subgroup_size, sg_tile[5] = {SG_TM * sgs, SG_TN * sgs, 4, SG_TM, SG_TN};
    if (try_tile(ctx, sg_tile, TILE_SG, s)) return DRD_OK;
    const uint32_t(*list)[5] = c->type == DRD_DEVICE_CPU ? cpu : gpu;
    size_t n = c->type == DRD_DEVICE_CPU ? sizeof cpu / sizeof cpu[0] : sizeof gpu / sizeof gpu[0];
    for (size_t i = 0; i < n; i++)
      if (try_tile(ctx, list[i], TILE_SCALAR, s)) return DRD_OK;
  }
  return drd_fail(DRD_ERROR_UNSUPPORTED,
                  "des: no grouped-GEMM tile fits %u bytes of shared memory, %u invocations and a %llu-byte "
                  "binding for one token's activations%s",
                  c->max_shared_memory, c->max_workgroup_invocations, (unsigned long long)drd_max_bind_range(ctx),
                  desc->bm ? " (the requested tile)" : "");
}

void drd_des_scratch_destroy(drd_context *ctx, drd_des_scratch *s) {
  if (!s) return;
  drd_buffer *all[] = {&s->logits, &s->probs, &s->sel, &s->wts, &s->pos, &s->blk, &s->counts,
                       &s->offsets, &s->tile_expert, &s->args, &s->pair_tok, &s->h, &s->y};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    if (all[i]->size) drd_buffer_destroy(ctx, all[i]);
  memset(s, 0, sizeof *s);
}

drd_status drd_des_scratch_create(drd_context *ctx, const drd_des_weights *w, const drd_des_scratch_desc *desc,
                                  drd_des_scratch *out) {
  drd_status status = DRD_OK;
  drd_des_scratch_desc dflt = {0};
  if (!desc) desc = &dflt;
  memset(out, 0, sizeof *out);
  DRD_CHECK(check_weights(w));
  if (desc->max_T == 0) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "des: max_T must be > 0");
  const drd_device_caps *c = &ctx->caps;
  drd_des_scratch *s = out;
  s->d = w->d, s->dff = w->dff, s->E = w->E, s->kmax = w->kmax;
  s->router_type = w->router_type, s->expert_type = w->expert_type;
  s->max_T = desc->max_T;
  DRD_CHECK(choose_tile(ctx, desc, s));
  uint32_t inv = c->max_workgroup_invocations < c->max_workgroup_size[0] ? c->max_workgroup_invocations
                                                                        : c->max_workgroup_size[0];
  s->tb = 64;
  /* a CPU device whose subgroups shuffle takes its own router kernel, whatever the tile (so that
   * a token's bits do not depend on the tile): des_logits_sg.glsl */
  s->logits_sg = !desc->gpu_logits && drd_cpu_sg_wg(ctx) != 0;
  /* des_logits.glsl: 128 invocations unless the device allows fewer */
  s->wg_logits = pow2_floor(inv < 128 ? inv : 128);
  while (s->wg_logits > LOGITS_LN && logits_shared(s->wg_logits) > c->max_shared_memory) s->wg_logits /= 2;
  if (s->wg_logits < LOGITS_LN || logits_shared(s->wg_logits) > c->max_shared_memory)
    return drd_fail(DRD_ERROR_UNSUPPORTED, "des: the router kernel needs %u invocations and %u bytes of shared memory",
                    (unsigned)LOGITS_LN, logits_shared(LOGITS_LN));
  /* des_scan.comp: (8 x wg + 513) words of shared memory, 10 KiB at 256, inside Vulkan's 16 KiB minimum */
  s->wg_scan = pow2_floor(inv < 256 ? inv : 256);
  s->wg_combine = pow2_floor(inv < 256 ? inv : 256);

  const uint64_t align = ctx->alloc.alignment;
  const uint64_t act_bind = drd_max_bind_range(ctx);
  s->weight_bind = desc->weight_bind && desc->weight_bind < act_bind ? desc->weight_bind : act_bind;
  if ((uint64_t)w->E * w->d * elem_size(w->router_type) + align + 4 > act_bind)
    return drd_fail(DRD_ERROR_UNSUPPORTED, "des: the router [%u, %u] exceeds one binding", w->E, w->d);

  /* weights: one binding for the whole tensor, else per expert, else per chunk of rows */
  const uint32_t es = elem_size(w->expert_type);
  const uint64_t tensor = (uint64_t)w->E * w->dff * w->d * es;
  s->fused1 = s->fused2 = tensor + 4 <= s->weight_bind;
  s->rows1 = chunk_rows(s->weight_bind, align, w->dff, w->d, es, s->bn);
  s->rows2 = chunk_rows(s->weight_bind, align, w->d, w->dff, es, s->bn);
  if ((!s->fused1 && s->rows1 == 0) || (!s->fused2 && s->rows2 == 0))
    return drd_fail(DRD_ERROR_UNSUPPORTED, "des: a binding of %llu bytes holds less than %u weight rows",
                    (unsigned long long)s->weight_bind, s->bn);
  s->chunks1 = (uint32_t)ceil_div(w->dff, s->rows1 ? s->rows1 : 1);
  s->chunks2 = (uint32_t)ceil_div(w->d, s->rows2 ? s->rows2 : 1);

  /* tokens per pass: all, or the most whose activations each fit one binding */
  uint64_t rows = 0;
  uint32_t tc = desc->chunk_T && desc->chunk_T < desc->max_T ? desc->chunk_T : desc->max_T;
  while (tc > 1 && pass_bytes(s, align, tc, &rows) > act_bind) tc = tc * 3 / 4 > 1 ? tc * 3 / 4 : 1;
  if (pass_bytes(s, align, tc, &rows) > act_bind)
    return drd_fail(DRD_ERROR_UNSUPPORTED, "des: one token's activations exceed a %llu-byte binding",
                    (unsigned long long)act_bind);
  s->chunk_T = tc;
  s->max_rows = (uint32_t)rows;
  s->max_tiles = s->max_rows / s->bm;
  s->max_blocks = (uint32_t)ceil_div(tc, s->tb);
  uint32_t ntn = (uint32_t)ceil_div(w->dff > w->d ? w->dff : w->d, s->bn);
  if (s->max_tiles > c->max_workgroup_count[1] || ntn > c->max_workgroup_count[0] ||
      s->max_blocks > c->max_workgroup_count[0])
    return drd_fail(DRD_ERROR_UNSUPPORTED, "des: %u tiles / %u blocks exceed the device's workgroup counts",
                    s->max_tiles, s->max_blocks);

  const uint64_t T = tc, E = w->E, km = w->kmax;
  DRD_CHECK(drd_buffer_create(ctx, T * E * 4, &s->logits));
  DRD_CHECK(drd_buffer_create(ctx, T * E * 4, &s->probs));
  DRD_CHECK(drd_buffer_create(ctx, T * km * 4, &s->sel));
  DRD_CHECK(drd_buffer_create(ctx, T * km * 4, &s->wts));
  DRD_CHECK(drd_buffer_create(ctx, T * km * 4, &s->pos));
  DRD_CHECK(drd_buffer_create(ctx, (uint64_t)s->max_blocks * E * 4, &s->blk));
  DRD_CHECK(drd_buffer_create(ctx, E * 4, &s->counts));
  DRD_CHECK(drd_buffer_create(ctx, (E + 1) * 4, &s->offsets));
  DRD_CHECK(drd_buffer_create(ctx, (uint64_t)s->max_tiles * 4, &s->tile_expert));
  DRD_CHECK(drd_buffer_create(ctx, (DRD_DES_ARGS_FIXED + 2 * E) * 3 * 4, &s->args));
  DRD_CHECK(drd_buffer_create(ctx, (uint64_t)s->max_rows * 4, &s->pair_tok));
  DRD_CHECK(drd_buffer_create(ctx, (uint64_t)s->max_rows * w->dff * (s->cm ? 2 : 4), &s->h));
  DRD_CHECK(drd_buffer_create(ctx, (uint64_t)s->max_rows * w->d * (s->cm ? 2 : 4), &s->y));
  return DRD_OK;
cleanup:
  drd_des_scratch_destroy(ctx, out);
  return status;
}

static drd_status check_scratch(const drd_des_weights *w, const drd_des_scratch *s) {
  if (!s || !s->chunk_T || s->d != w->d || s->dff != w->dff || s->E != w->E || s->kmax != w->kmax ||
      s->router_type != w->router_type || s->expert_type != w->expert_type)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "des: scratch was planned for other weights");
  return DRD_OK;
}

/* route + scan + scatter of tc tokens whose logits are in s->logits */
static drd_status record_route(drd_seq *q, const drd_des_weights *w, uint32_t tc, drd_des_scratch *s) {
  drd_status status = DRD_OK;
  drd_context *ctx = drd_seq_context(q);
  drd_pipeline *p_route, *p_scan, *p_scatter;
  DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){"des_route", 5, sizeof(drd_pc_des_route), 1, &s->tb}, &p_route));
  DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){"des_scan", 6, sizeof(drd_pc_des_scan), 1, &s->wg_scan}, &p_scan));
  DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){"des_scatter", 5, sizeof(drd_pc_des_scatter), 1, &s->tb},
                             &p_scatter));
  const uint32_t nb = (uint32_t)ceil_div(tc, s->tb);

  drd_pc_des_route pr = {.T = tc, .E = w->E, .kmax = w->kmax, .p = w->p};
  drd_bind br[5] = {drd_in(&s->logits), drd_out(&s->probs), drd_out(&s->sel), drd_out(&s->wts), drd_out(&s->blk)};
  DRD_CHECK(drd_seq_dispatch(q, p_route, br, 5, &pr, nb, 1, 1, "des_route"));

  drd_pc_des_scan ps = {
      .E = w->E,
      .n_blocks = nb,
      .bm = s->bm,
      .max_tiles = s->max_tiles,
      .ntn1 = (uint32_t)ceil_div(w->dff, s->bn),
      .ntn2 = (uint32_t)ceil_div(w->d, s->bn),
      .ctn1 = (uint32_t)ceil_div(s->rows1 ? s->rows1 : w->dff, s->bn),
      .ctn2 = (uint32_t)ceil_div(s->rows2 ? s->rows2 : w->d, s->bn),
  };
  drd_bind bs[6] = {drd_out(&s->blk),         drd_out(&s->counts),   drd_out(&s->offsets),
                    drd_out(&s->tile_expert), drd_out(&s->pair_tok), drd_out(&s->args)};
  DRD_CHECK(drd_seq_dispatch(q, p_scan, bs, 6, &ps, 1, 1, 1, "des_scan"));

  drd_pc_des_scatter pt = {.T = tc, .E = w->E, .kmax = w->kmax};
  drd_bind bt[5] = {drd_in(&s->sel), drd_in(&s->blk), drd_in(&s->offsets), drd_out(&s->pair_tok), drd_out(&s->pos)};
  DRD_CHECK(drd_seq_dispatch(q, p_scatter, bt, 5, &pt, nb, 1, 1, "des_scatter"));
cleanup:
  return status;
}

drd_status drd_op_des_route(drd_seq *q, const drd_des_weights *w, uint32_t T, drd_des_scratch *s) {
  drd_status status = check_scratch(w, s);
  if (status != DRD_OK) return status;
  if (T == 0) return DRD_OK;
  if (T > s->chunk_T) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "des_route: T=%u over chunk_T=%u", T, s->chunk_T);
  return record_route(q, w, T, s);
}

/* The grouped-GEMM pipeline for one dispatch: vector loads (a specialization constant) when K
 * and every element offset allow them. */
static drd_status gemm_pipeline(drd_context *ctx, const char *name, const drd_des_scratch *s, const drd_pc_des_gemm *pc,
                                int mode, bool a16, drd_pipeline **p) {
  uint32_t vec4 = pc->K % 4 == 0 && pc->a_off % 4 == 0 && pc->w_off % 4 == 0 && pc->w2_off % 4 == 0;
  if (s->cm) { /* 8-element (16-byte) loads: b rows, h rows and weights 16-byte aligned */
    bool vec = pc->K % 8 == 0 && pc->a_off % (a16 ? 8 : 4) == 0 && pc->w_off % 8 == 0 && pc->w2_off % 8 == 0;
    uint32_t spec[DRD_CM_SPEC + 1];
    const uint32_t tm = mode == 1 ? s->tm : s->tm2, tn = mode == 1 ? s->tn : s->tn2;
    uint32_t n = drd_cm_spec(ctx, s->bm, s->bn, s->bk, tm, tn, vec, spec);
    spec[n++] = a16; /* des_cm.glsl A16_SPEC */
    return drd_pipeline_get(ctx, &(drd_pipeline_desc){name, 7, sizeof(drd_pc_des_gemm), n, spec}, p);
  }
  if (s->sg) {
    const uint32_t spec[4] = {ctx->caps.subgroup_size, s->tm, s->tn, vec4};
    return drd_pipeline_get(ctx, &(drd_pipeline_desc){name, 7, sizeof(drd_pc_des_gemm), 4, spec}, p);
  }
  uint32_t spec[7] = {(s->bm / s->tm) * (s->bn / s->tn), s->bm, s->bn, s->bk, s->tm, s->tn, vec4};
  return drd_pipeline_get(ctx, &(drd_pipeline_desc){name, 7, sizeof(drd_pc_des_gemm), 7, spec}, p);
}

/* One grouped GEMM (mode 1: gate/up + SwiGLU into h; mode 2: down into y) over the tiles the
 * scan counted: one indirect dispatch over all experts when the weights fit one binding,
 * else one per expert and chunk of output rows, each bound alone. a: the A operand's binding
 * (b rows for mode 1, h for mode 2), a_off its element offset, a16: mode 1's b is f16. */
static drd_status record_gemm(drd_seq *q, const drd_des_weights *w, drd_des_scratch *s, int mode, drd_bind a,
                              uint32_t a_off, bool a16) {
  drd_status status = DRD_OK;
  drd_context *ctx = drd_seq_context(q);
  char name[32];
  snprintf(name, sizeof name, "des_gemm%d_%s%s", mode, s->sg ? "sg_" : "",
           s->cm ? "cm" : wvariant(ctx, w->expert_type, s->sg));
  const uint32_t N = mode == 1 ? w->dff : w->d, K = mode == 1 ? w->d : w->dff;
  const drd_buffer *w1 = mode == 1 ? w->gate : w->down, *w2 = mode == 1 ? w->up : w->down;
  const drd_buffer *o = mode == 1 ? &s->h : &s->y;
  const uint64_t es = elem_size(w->expert_type);
  const char *op = mode == 1 ? "des_gemm_gate_up" : "des_gemm_down";
  int fused = mode == 1 ? s->fused1 : s->fused2;
  drd_pipeline *p;
  if (fused) {
    drd_pc_des_gemm pc = {.N = N, .K = K, .expert = DRD_DES_NONE, .n_base = 0, .n_end = N,
                          .w_off = 0, .w2_off = 0, .w_estride = N * K, .a_off = a_off};
    const uint64_t bytes = ((uint64_t)w->E * N * K * es + 3) / 4 * 4;
    drd_bind b[7] = {a, drd_in(&s->pair_tok), drd_in(&s->tile_expert), drd_in(&s->offsets),
                     drd_in_range(w1, 0, bytes), drd_in_range(w2, 0, bytes), drd_out(o)};
    uint64_t rec = mode == 1 ? DRD_DES_ARGS_GEMM1 : DRD_DES_ARGS_GEMM2;
    DRD_CHECK(gemm_pipeline(ctx, name, s, &pc, mode, a16, &p));
    return drd_seq_dispatch_indirect(q, p, b, 7, &pc, &s->args, rec * 12, op);
  }
  const uint32_t rows = mode == 1 ? s->rows1 : s->rows2;
  for (uint32_t e = 0; e < w->E; e++) {
    for (uint32_t n_base = 0; n_base < N; n_base += rows) {
      uint32_t n_end = n_base + rows < N ? n_base + rows : N;
      uint64_t begin = ((uint64_t)e * N + n_base) * K * es, end = ((uint64_t)e * N + n_end) * K * es;
      uint64_t lead1, lead2;
      drd_bind bw1 = bind_bytes(ctx, w1, begin, end, false, &lead1);
      drd_bind bw2 = bind_bytes(ctx, w2, begin, end, false, &lead2);
      drd_pc_des_gemm pc = {.N = N, .K = K, .expert = e, .n_base = n_base, .n_end = n_end,
                            .w_off = (uint32_t)(lead1 / es), .w2_off = (uint32_t)(lead2 / es), .w_estride = 0,
                            .a_off = a_off};
      drd_bind b[7] = {a, drd_in(&s->pair_tok), drd_in(&s->tile_expert), drd_in(&s->offsets), bw1, bw2, drd_out(o)};
      uint64_t rec = (mode == 1 ? DRD_DES_ARGS_FIXED : DRD_DES_ARGS_FIXED + w->E) + e;
      DRD_CHECK(gemm_pipeline(ctx, name, s, &pc, mode, a16, &p));
      DRD_CHECK(drd_seq_dispatch_indirect(q, p, b, 7, &pc, &s->args, rec * 12, op));
    }
  }
cleanup:
  return status;
}

drd_status drd_op_des_ffn(drd_seq *q, const drd_des_weights *w, const drd_buffer *b, const drd_buffer *out,
                          uint32_t T, drd_des_scratch *s) {
  return drd_op_des_ffn_ex(q, w, b, NULL, out, T, s, false);
}

const drd_buffer *drd_des_logits_in(const drd_des_scratch *s, uint32_t T) {
  return s && s->cm && T && T <= s->chunk_T && T <= s->max_T ? &s->logits : NULL;
}

/* des_combine.glsl's arrays are unrolled over 4 slots at a time; des_combine_norm.comp holds
 * all of a token's slots for a whole row segment in registers, so it takes at most 4 */
#define NORM_MAX_SLOTS 4u

bool drd_des_norm_fits(const drd_context *ctx, const drd_des_scratch *s, uint32_t T) {
  const uint32_t wg = s ? drd_rows_sg_wg(ctx, s->d) : 0;
  if (!wg || !T || T > s->max_T || s->kmax > NORM_MAX_SLOTS || !ctx->caps.storage_16bit ||
      !drd_rmsnorm_on_subgroups(ctx, T, s->d))
    return false;
  uint32_t gx, gy;
  drd_grid_1d(ctx, ceil_div(s->chunk_T, wg / ctx->caps.subgroup_size), &gx, &gy);
  return gy <= ctx->caps.max_workgroup_count[1];
}

/* out[t0 .. t0 + tc) (+)= the pass's DES sum (des_combine.glsl; des_combine_y16.comp for f16 y),
 * or with norm, += and the norm's f16 rows of the same tokens (des_combine_norm.comp) */
static drd_status record_combine(drd_seq *q, const drd_des_weights *w, drd_des_scratch *s, const drd_buffer *out,
                                 uint32_t t0, uint32_t tc, bool accumulate, const drd_des_next_norm *norm) {
  drd_status status = DRD_OK;
  drd_context *ctx = drd_seq_context(q);
  const uint64_t d4 = (uint64_t)w->d * 4;
  uint64_t o_lead, h_lead = 0;
  const drd_bind bo = bind_bytes(ctx, out, t0 * d4, (t0 + tc) * d4, true, &o_lead);
  drd_pipeline *p;
  uint32_t gx, gy;
  if (norm) {
    const drd_bind bh = bind_bytes(ctx, norm->out16, t0 * d4 / 2, (t0 + tc) * d4 / 2, true, &h_lead);
    const drd_pc_rows pc = {.rows = tc, .cols = w->d, .x_off = (uint32_t)(o_lead / 4), .eps = norm->eps,
                            .h_off = (uint32_t)(h_lead / 2)};
    if (pc.x_off % 4 || pc.h_off % 4) /* rmsnorm_sg.glsl reads and writes whole vec4s */
      return drd_fail(DRD_ERROR_UNSUPPORTED, "des: out or out16 of the fused norm not 16-byte aligned");
    const uint32_t wg = drd_rows_sg_wg(ctx, w->d), spec[3] = {wg, w->kmax, s->cm};
    DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){"des_combine_norm", 7, sizeof(drd_pc_rows), 3, spec}, &p));
    /* binding 2 (the f32 rows, which this variant does not declare) repeats out16's */
    const drd_bind binds[7] = {bo, drd_in_range(norm->w, 0, d4), bh, bh, drd_in(&s->y), drd_in(&s->wts),
                               drd_in(&s->pos)};
    drd_grid_1d(ctx, ceil_div(tc, wg / ctx->caps.subgroup_size), &gx, &gy);
    DRD_CHECK(drd_seq_dispatch(q, p, binds, 7, &pc, gx, gy, 1, "des_combine"));
    return DRD_OK;
  }
  drd_pc_des_combine pc = {.T = tc, .d = w->d, .kmax = w->kmax, .o_off = (uint32_t)(o_lead / 4),
                           .accumulate = accumulate};
  drd_bind bc[4] = {drd_in(&s->y), drd_in(&s->wts), drd_in(&s->pos), bo};
  /* 4 elements per invocation where the rows and this chunk's offset allow (V4) */
  const uint32_t v4 = w->d % 4 == 0 && pc.o_off % 4 == 0, cspec[2] = {s->wg_combine, v4};
  /* y is f16 where the cooperative-matrix down GEMM wrote it */
  DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){s->cm ? "des_combine_y16" : "des_combine", 4,
                                                        sizeof(drd_pc_des_combine), 2, cspec},
                             &p));
  drd_grid_1d(ctx, ceil_div((uint64_t)tc * w->d / (v4 ? 4 : 1), s->wg_combine), &gx, &gy);
  DRD_CHECK(drd_seq_dispatch(q, p, bc, 4, &pc, gx, gy, 1, "des_combine"));
cleanup:
  return status;
}

static drd_status record_ffn(drd_seq *q, const drd_des_weights *w, const drd_buffer *b, const drd_buffer *b16,
                             const drd_buffer *out, uint32_t T, drd_des_scratch *s, bool accumulate,
                             const drd_des_next_norm *norm) {
  drd_status status = check_weights(w);
  if (status != DRD_OK) return status;
  DRD_CHECK(check_scratch(w, s));
  if (T == 0) return DRD_OK;
  if (T > s->max_T) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "des: T=%u over the scratch's max_T=%u", T, s->max_T);
  /* b NULL: the logits are in the scratch already (drd_des_logits_in), b16 the input */
  if (!b && (!drd_des_logits_in(s, T) || !b16))
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "des: without b, the logits must fit the scratch in one pass of the "
                    "cooperative-matrix kernels and b16 must be given");
  if (!out || (b && b->size < (uint64_t)T * w->d * 4) || out->size < (uint64_t)T * w->d * 4)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "des: b / out smaller than [%u, %u] f32", T, w->d);
  if (b && b->buffer == out->buffer && b->offset == out->offset)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "des: out must not alias b");
  if (b16 && b16->size < (uint64_t)T * w->d * 2)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "des: b16 smaller than [%u, %u] f16", T, w->d);
  drd_context *ctx = drd_seq_context(q);
  const uint64_t d4 = (uint64_t)w->d * 4;
  if (norm && (!norm->w || !norm->out16 || norm->w->size < d4 || norm->out16->size < T * d4 / 2))
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "des: the norm's weights / f16 rows smaller than [%u] / [%u, %u]",
                    w->d, T, w->d);
  /* out16's bytes must not be out's (written in the same pass) nor b's (read by later passes);
   * b16's may be (each pass writes its own rows) */
  if (norm && (drd_bytes_overlap(norm->out16, T * d4 / 2, out, T * d4) ||
               (b && drd_bytes_overlap(norm->out16, T * d4 / 2, b, T * d4))))
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "des: the norm's f16 rows must not overlap out or b");
  if (norm && !drd_des_norm_fits(ctx, s, T))
    return drd_fail(DRD_ERROR_UNSUPPORTED, "des: the combine cannot do the next norm for %u tokens of %u with kmax "
                    "%u on this device", T, w->d, w->kmax);
  if (!s->cm) b16 = NULL; /* the scalar kernels read b */
  drd_pipeline *p_logits = NULL;
  char name[32];
  /* des_logits_sg.glsl: LOGITS_SG_TOKS tokens per lane */
  const uint32_t logits_spec[2] = {ctx->caps.subgroup_size, LOGITS_SG_TOKS};
  const uint32_t logits_tokens = s->logits_sg ? logits_spec[0] * LOGITS_SG_TOKS : s->wg_logits / LOGITS_LN * LOGITS_TOK;
  snprintf(name, sizeof name, "des_logits_%s%s", s->logits_sg ? "sg_" : "",
           wvariant(ctx, w->router_type, s->logits_sg));
  if (b) /* else the logits are given */
    DRD_CHECK(drd_pipeline_get(ctx,
                               &(drd_pipeline_desc){name, 3, sizeof(drd_pc_des_logits), s->logits_sg ? 2 : 1,
                                                    s->logits_sg ? logits_spec : &s->wg_logits},
                               &p_logits));
  const uint64_t rsize = (uint64_t)w->E * w->d * elem_size(w->router_type);
  for (uint32_t t0 = 0; t0 < T; t0 += s->chunk_T) {
    const uint32_t tc = T - t0 < s->chunk_T ? T - t0 : s->chunk_T;
    uint64_t b_lead = 0;
    drd_bind bb = {0};
    if (b) {
      uint32_t gx, gy;
      bb = bind_bytes(ctx, b, t0 * d4, (t0 + tc) * d4, false, &b_lead);
      drd_pc_des_logits pl = {.T = tc, .d = w->d, .E = w->E, .b_off = (uint32_t)(b_lead / 4), .r_off = 0};
      drd_bind bl[3] = {bb, drd_in_range(w->router, 0, (rsize + 3) / 4 * 4), drd_out(&s->logits)};
      drd_grid_1d(ctx, ceil_div(tc, logits_tokens), &gx, &gy);
      DRD_CHECK(drd_seq_dispatch(q, p_logits, bl, 3, &pl, gx, gy, 1, "des_logits"));
    }

    DRD_CHECK(record_route(q, w, tc, s));
    if (b16) {
      uint64_t h_lead;
      drd_bind bh = bind_bytes(ctx, b16, t0 * d4 / 2, (t0 + tc) * d4 / 2, false, &h_lead);
      DRD_CHECK(record_gemm(q, w, s, 1, bh, (uint32_t)(h_lead / 2), true));
    } else {
      DRD_CHECK(record_gemm(q, w, s, 1, bb, (uint32_t)(b_lead / 4), false));
    }
    DRD_CHECK(record_gemm(q, w, s, 2, drd_in(&s->h), 0, false));
    DRD_CHECK(record_combine(q, w, s, out, t0, tc, accumulate, norm));
  }
cleanup:
  return status;
}

drd_status drd_op_des_ffn_ex(drd_seq *q, const drd_des_weights *w, const drd_buffer *b, const drd_buffer *b16,
                             const drd_buffer *out, uint32_t T, drd_des_scratch *s, bool accumulate) {
  return record_ffn(q, w, b, b16, out, T, s, accumulate, NULL);
}

drd_status drd_op_des_ffn_norm(drd_seq *q, const drd_des_weights *w, const drd_buffer *b, const drd_buffer *b16,
                               const drd_buffer *out, uint32_t T, drd_des_scratch *s, const drd_des_next_norm *norm) {
  if (!norm) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "des: no norm given");
  return record_ffn(q, w, b, b16, out, T, s, true, norm);
}
