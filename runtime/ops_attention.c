/* RoPE (shaders/rope_f32.comp) and HSA attention (shaders/attn_hsa_*.comp): tables, work
 * planning, kernel choice and dispatch. See ops_attention.h for the scheme. */
#include "ops_attention.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pc_attention.h"
#include "vk_shaders.h"

/* One attention dispatch and, when it has split rows, one merge dispatch after it. */
struct drd_attn_group {
  uint32_t qa0, qa1;       /* query blocks [qa0, qa1): the q / out / stats window */
  uint32_t ka0, ka1;       /* key blocks [ka0, ka1): the k / v window */
  uint32_t col0, col1;     /* CSR entries the items may reference */
  uint32_t item0, n_items; /* attention items */
  uint32_t mitem0, n_mitems;
  uint32_t n_slots;        /* slots used, numbered from 0 (the scratch is reused by every group) */
};

/* A binding of `bytes` bytes that start `offset` bytes into b, from the allocation-aligned
 * offset at or before it (buffers themselves start aligned); *skip receives the elements of
 * `elem` bytes between the binding's start and `offset`, which the shader adds. */
static drd_bind span(const drd_context *ctx, const drd_buffer *b, uint64_t offset, uint64_t bytes, bool write,
                     uint32_t elem, uint32_t *skip) {
  uint64_t base = offset / ctx->alloc.alignment * ctx->alloc.alignment;
  *skip = (uint32_t)((offset - base) / elem);
  return (drd_bind){b, base, offset - base + bytes, write};
}

/* ================================================================== RoPE */

/* positions per host-side block of the table: 4 MiB at dh = 64 */
#define ROPE_BLOCK 16384u

drd_status drd_rope_table_create(drd_context *ctx, uint32_t dh, float theta, uint32_t positions,
                                 drd_rope_table *out) {
  drd_status status = DRD_OK;
  memset(out, 0, sizeof *out);
  out->buf.block = UINT32_MAX;
  if (dh < 2 || dh % 2 || !(theta > 0.0f) || positions == 0)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "rope: head dim %u must be even and >= 2, theta %g > 0, positions %u >= 1",
                    dh, theta, positions);
  const uint32_t half = dh / 2;
  const uint64_t row = (uint64_t)dh * sizeof(float);
  const uint32_t block = positions < ROPE_BLOCK ? positions : ROPE_BLOCK;
  float *t = malloc(block * row);
  double *f = malloc(half * sizeof *f);
  if (!t || !f) {
    status = drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "rope: table for dh=%u", dh);
    goto cleanup;
  }
  /* the same frequency and angle as the reference: f64 pow of the f32 theta, n * f in f64 */
  for (uint32_t i = 0; i < half; i++) f[i] = pow((double)theta, -2.0 * (double)i / (double)dh);
  DRD_CHECK(drd_buffer_create(ctx, positions * row, &out->buf));
  for (uint32_t n0 = 0; n0 < positions; n0 += block) {
    const uint32_t rows = positions - n0 < block ? positions - n0 : block;
    for (uint32_t r = 0; r < rows; r++)
      for (uint32_t i = 0; i < half; i++) {
        const double ang = (double)(n0 + r) * f[i];
        t[(size_t)r * dh + i] = (float)cos(ang);
        t[(size_t)r * dh + half + i] = (float)sin(ang);
      }
    DRD_CHECK(drd_buffer_upload(ctx, &out->buf, n0 * row, t, rows * row));
  }
  out->dh = dh;
  out->positions = positions;
  out->theta = theta;
cleanup:
  free(t);
  free(f);
  if (status != DRD_OK) drd_rope_table_destroy(ctx, out);
  return status;
}

void drd_rope_table_destroy(drd_context *ctx, drd_rope_table *t) {
  if (!t) return;
  drd_buffer_destroy(ctx, &t->buf);
  memset(t, 0, sizeof *t);
  t->buf.block = UINT32_MAX;
}

drd_status drd_op_rope(drd_seq *s, const drd_rope_table *table, const drd_buffer *x, const drd_buffer *out,
                       uint32_t N, uint32_t H) {
  drd_context *ctx = drd_seq_context(s);
  drd_status status = DRD_OK;
  if (!table || table->dh < 2) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "rope: no table");
  if (N == 0 || H == 0) return DRD_OK;
  if (N > table->positions)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "rope: N=%u positions, the table has %u", N, table->positions);
  const uint32_t half = table->dh / 2;
  const uint64_t row = (uint64_t)H * table->dh * 4; /* bytes per token */
  if (x->size < N * row || out->size < N * row)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "rope: buffers smaller than [%u, %u] f32", N, H * table->dh);
  const uint64_t maxb = drd_max_bind_range(ctx), align = ctx->alloc.alignment;
  /* rows per chunk: a chunk bound from the aligned offset before its first row must fit (a
   * token's table row, dh floats, is never larger than its H * dh activations) */
  uint64_t chunk = N * row <= maxb ? N : (maxb > align ? (maxb - align) / row : 0);
  if (chunk == 0)
    return drd_fail(DRD_ERROR_UNSUPPORTED, "rope: one row of %llu bytes exceeds the binding range",
                    (unsigned long long)row);
  uint32_t wg = ctx->caps.max_workgroup_invocations < 256 ? ctx->caps.max_workgroup_invocations : 256;
  drd_pipeline *p;
  DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){"rope_f32", 3, sizeof(drd_pc_rope), 1, &wg}, &p));
  for (uint64_t r0 = 0; r0 < N; r0 += chunk) {
    const uint64_t rows = N - r0 < chunk ? N - r0 : chunk;
    const uint64_t trow = (uint64_t)table->dh * 4;
    drd_pc_rope pc = {.rows = (uint32_t)rows, .heads = H, .n_pairs = half};
    drd_bind b[3] = {span(ctx, x, r0 * row, rows * row, false, 4, &pc.x_off),
                     span(ctx, out, r0 * row, rows * row, true, 4, &pc.o_off),
                     span(ctx, &table->buf, r0 * trow, rows * trow, false, 4, &pc.t_off)};
    uint32_t gx, gy;
    drd_grid_1d(ctx, (rows * H * half + wg - 1) / wg, &gx, &gy);
    DRD_CHECK(drd_seq_dispatch(s, p, b, 3, &pc, gx, gy, 1, "rope"));
  }
cleanup:
  return status;
}

/* ================================================================== HSA attention: planning */

typedef struct u32vec {
  uint32_t *v;
  size_t n, cap;
} u32vec;

static bool vec_push4(u32vec *a, uint32_t x, uint32_t y, uint32_t z, uint32_t w) {
  if (a->n + 4 > a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 256;
    uint32_t *nv = realloc(a->v, cap * sizeof *nv);
    if (!nv) return false;
    a->v = nv;
    a->cap = cap;
  }
  a->v[a->n++] = x, a->v[a->n++] = y, a->v[a->n++] = z, a->v[a->n++] = w;
  return true;
}

static bool push_group(drd_attn_group **groups, uint32_t *n, uint32_t *cap, const drd_attn_group *g) {
  if (*n == *cap) {
    uint32_t nc = *cap ? 2 * *cap : 64;
    drd_attn_group *ng = realloc(*groups, nc * sizeof *ng);
    if (!ng) return false;
    *groups = ng;
    *cap = nc;
  }
  (*groups)[(*n)++] = *g;
  return true;
}

void drd_attention_plan_free(drd_context *ctx, drd_attention_plan *dp) {
  if (!dp) return;
  drd_buffer *bufs[] = {&dp->items, &dp->merge_items, &dp->col, &dp->slot_o, &dp->slot_ml, &dp->stats};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) drd_buffer_destroy(ctx, bufs[i]);
  free(dp->groups);
  memset(dp, 0, sizeof *dp);
}

/* A device buffer holding n u32 (a 16-byte placeholder when n == 0, so it can be bound). */
static drd_status upload_u32(drd_context *ctx, const uint32_t *src, size_t n, drd_buffer *b) {
  drd_status status = drd_buffer_create(ctx, n ? n * 4 : 16, b);
  if (status == DRD_OK && n) status = drd_buffer_upload(ctx, b, 0, src, n * 4);
  return status;
}

drd_status drd_attention_plan_upload(drd_context *ctx, const drd_hsa_plan *plan, uint32_t H, uint32_t dh,
                                     drd_attention_plan *out) {
  drd_status status = DRD_OK;
  memset(out, 0, sizeof *out);
  drd_buffer *bufs[] = {&out->items, &out->merge_items, &out->col, &out->slot_o, &out->slot_ml, &out->stats};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) bufs[i]->block = UINT32_MAX;
  if (!plan || plan->N == 0 || plan->nb == 0 || plan->B == 0 || H == 0)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "attention plan: empty plan or H = 0");
  if (dh < 2 || dh > 128 || dh % 2)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "attention: head dim %u (must be even, 2..128)", dh);
  const drd_device_caps *caps = &ctx->caps;
  if (H > caps->max_workgroup_count[2])
    return drd_fail(DRD_ERROR_UNSUPPORTED, "attention: %u heads exceed the dispatch limit", H);
  const uint32_t N = plan->N, B = plan->B, nb = plan->nb;
  const uint64_t row = (uint64_t)H * dh * 4, blk = (uint64_t)B * row; /* bytes per token / block */
  const uint64_t maxb = drd_max_bind_range(ctx), align = ctx->alloc.alignment;

  /* Windows of whole blocks; a window is bound from the aligned offset before its first row. */
  uint64_t wb = (uint64_t)N * row <= maxb ? nb : (maxb > align ? (maxb - align) / blk : 0);
  if (wb == 0)
    return drd_fail(DRD_ERROR_UNSUPPORTED, "attention: one block (%u tokens x %llu bytes) exceeds the binding range %llu",
                    B, (unsigned long long)row, (unsigned long long)maxb);
  if (wb > nb) wb = nb;
  const uint32_t nw = (uint32_t)((nb + wb - 1) / wb);
  const uint64_t cap_slots64 = maxb / blk; /* slots one dispatch may bind (>= 1: blk <= maxb) */
  const uint32_t cap_slots = cap_slots64 > (1u << 20) ? (1u << 20) : (uint32_t)cap_slots64;
  const uint32_t max_items = caps->max_workgroup_count[0];
  /* Split-K: pieces about as long as the longest ordinary row, so a global query block's
   * workgroups take as long as everybody else's (dense: max_row_ordinary = nb, no split). */
  const uint32_t split = plan->max_row_ordinary ? plan->max_row_ordinary : 1;

  u32vec items = {0}, mitems = {0};
  drd_attn_group *groups = NULL;
  uint32_t n_groups = 0, cap_groups = 0, max_slots = 0;
  uint32_t *ptr = malloc(sizeof(uint32_t) * nb); /* [nb] next CSR entry per query block */
  if (!ptr) goto oom;
  memcpy(ptr, plan->row, sizeof(uint32_t) * nb);

  for (uint32_t kw = 0; kw < nw; kw++) {
    const uint32_t ka0 = (uint32_t)(kw * wb), ka1 = (uint32_t)((uint64_t)ka0 + wb < nb ? ka0 + wb : nb);
    for (uint32_t qw = 0; qw < nw; qw++) {
      const uint32_t qa0 = (uint32_t)(qw * wb), qa1 = (uint32_t)((uint64_t)qa0 + wb < nb ? qa0 + wb : nb);
      drd_attn_group g = {0};
      bool open = false;
      for (uint32_t a = qa0; a < qa1; a++) {
        /* CSR columns ascend and windows are contiguous: this window's keys are the next run */
        const uint32_t c0 = ptr[a];
        uint32_t c1 = c0;
        while (c1 < plan->row[a + 1] && plan->col[c1] < ka1) c1++;
        ptr[a] = c1;
        if (c1 == c0) continue;
        const bool first = c0 == plan->row[a], last = c1 == plan->row[a + 1];
        const uint32_t L = c1 - c0;
        const bool direct = first && last && L <= split;
        uint32_t ps = split, P = 1;
        if (!direct) {
          if ((L + cap_slots - 1) / cap_slots > ps) ps = (L + cap_slots - 1) / cap_slots;
          P = (L + ps - 1) / ps;
        }
        if (open && (g.n_items + P > max_items || (!direct && (g.n_slots + P > cap_slots || g.n_mitems + 1 > max_items)))) {
          if (!push_group(&groups, &n_groups, &cap_groups, &g)) goto oom; /* the next one reuses the slots */
          open = false;
        }
        if (!open) {
          g = (drd_attn_group){.qa0 = qa0, .qa1 = qa1, .ka0 = ka0, .ka1 = ka1, .col0 = plan->row[qa0],
                               .col1 = plan->row[qa1], .item0 = (uint32_t)(items.n / 4),
                               .mitem0 = (uint32_t)(mitems.n / 4)};
          open = true;
        }
        if (direct) {
          if (!vec_push4(&items, a, c0, c1, UINT32_MAX)) goto oom;
          g.n_items++;
          continue;
        }
        for (uint32_t k = 0; k < P; k++) {
          const uint32_t e0 = c0 + k * ps, e1 = e0 + ps < c1 ? e0 + ps : c1;
          if (!vec_push4(&items, a, e0, e1, g.n_slots + k)) goto oom;
        }
        const uint32_t flags = (first ? 0u : DRD_ATTN_MERGE_LOAD) | (last ? DRD_ATTN_MERGE_FINAL : 0u);
        if (!vec_push4(&mitems, a, g.n_slots, g.n_slots + P, flags)) goto oom;
        g.n_items += P;
        g.n_mitems++;
        g.n_slots += P;
        if (g.n_slots > max_slots) max_slots = g.n_slots;
      }
      if (open && !push_group(&groups, &n_groups, &cap_groups, &g)) goto oom;
    }
  }
  free(ptr);
  ptr = NULL;
  for (uint32_t i = 0; i < n_groups; i++) {
    const drd_attn_group *g = &groups[i];
    if ((uint64_t)(g->col1 - g->col0) * 4 + align > maxb || (uint64_t)g->n_items * 16 + align > maxb ||
        (uint64_t)g->n_mitems * 16 + align > maxb) {
      status = drd_fail(DRD_ERROR_UNSUPPORTED, "attention: the work lists of one window exceed the binding range");
      goto cleanup;
    }
  }

  /* visited (query, key) pairs, for FLOP counts */
  uint64_t pairs = 0;
  for (uint32_t a = 0; a < nb; a++) {
    const uint64_t qrows = a + 1 < nb ? B : N - (uint64_t)a * B;
    for (uint32_t c = plan->row[a]; c < plan->row[a + 1]; c++)
      pairs += qrows * (plan->col[c] + 1 < nb ? B : N - (uint64_t)plan->col[c] * B);
  }

  *out = (drd_attention_plan){.N = N, .H = H, .dh = dh, .B = B, .nb = nb, .window_blocks = (uint32_t)wb,
                              .split = split, .n_groups = n_groups, .groups = groups,
                              .n_items = (uint32_t)(items.n / 4), .n_merge_items = (uint32_t)(mitems.n / 4),
                              .max_slots = max_slots, .pairs = pairs};
  groups = NULL; /* owned by out now */
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) bufs[i]->block = UINT32_MAX;
  DRD_CHECK(upload_u32(ctx, items.v, items.n, &out->items));
  DRD_CHECK(upload_u32(ctx, mitems.v, mitems.n, &out->merge_items));
  DRD_CHECK(upload_u32(ctx, plan->col, (size_t)plan->nnz, &out->col));
  DRD_CHECK(drd_buffer_create(ctx, max_slots ? max_slots * blk : 16, &out->slot_o));
  DRD_CHECK(drd_buffer_create(ctx, max_slots ? (uint64_t)max_slots * B * H * 8 : 16, &out->slot_ml));
  /* the running state between key windows; unused (a placeholder) when one window holds all */
  DRD_CHECK(drd_buffer_create(ctx, nw > 1 ? (uint64_t)N * H * 8 : 16, &out->stats));
  goto cleanup;
oom:
  status = drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "attention plan: N=%u", N);
cleanup:
  free(ptr);
  free(items.v);
  free(mitems.v);
  free(groups);
  if (status != DRD_OK) drd_attention_plan_free(ctx, out);
  return status;
}

uint32_t drd_attention_dispatch_count(const drd_attention_plan *dp) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < dp->n_groups; i++) n += 1 + (dp->groups[i].n_mitems > 0);
  return n;
}

/* ================================================================== HSA attention: dispatch */

/* Sizes the scalar kernel for the device. TC threads share a query row (partial dots summed by
 * shuffles, or through shared memory without them), each holding V4 vec4 of q and of the
 * output in registers; BR rows per workgroup (the whole block when it fits in 128
 * invocations: every K/V tile loaded is reused by BR rows); BC keys per K/V tile, within
 * shared memory. Measured on an H100 (N = 8192, base-220m pattern): TC = 2 beat TC = 1 and
 * TC = 4 for dh 32..128 (the shuffle stage is short and the registers stay <= 64 floats per
 * array), BC = 16 beat 32 by 25% (fewer live scores, more resident workgroups), and dh = 128
 * preferred BC = 8. */
static drd_status scalar_config(const drd_context *ctx, uint32_t dh, uint32_t B, drd_attn_kernel *cfg) {
  const drd_device_caps *c = &ctx->caps;
  const uint32_t dp4 = (dh + 3) / 4;
  cfg->kind = DRD_ATTN_SCALAR;
  cfg->shuffle = (c->subgroup_ops & VK_SUBGROUP_FEATURE_SHUFFLE_BIT) &&
                 (c->subgroup_stages & VK_SHADER_STAGE_COMPUTE_BIT) && c->subgroup_size >= 4;
  cfg->tc = dp4 >= 8 ? 2 : 1; /* a power of two that divides every subgroup size */
  cfg->v4 = (dp4 + cfg->tc - 1) / cfg->tc; /* <= 16 for dh <= 128 */
  uint32_t maxwg = c->max_workgroup_invocations < 128 ? c->max_workgroup_invocations : 128;
  cfg->br = maxwg / cfg->tc;
  if (cfg->br > B) cfg->br = B;
  if (cfg->br == 0) cfg->br = 1;
  cfg->wg = cfg->br * cfg->tc;
  /* K and V vec4 rows (+ the partial dots when they are summed in shared memory) */
  const uint32_t per_key = 2 * cfg->tc * cfg->v4 * 16 + (!cfg->shuffle && cfg->tc > 1 ? cfg->wg * 4 : 0);
  uint32_t bc = c->max_shared_memory / per_key;
  const uint32_t want = cfg->v4 > 8 ? 8 : 16;
  if (bc > want) bc = want;
  if (bc >= 8) bc &= ~7u;
  if (bc == 0)
    return drd_fail(DRD_ERROR_UNSUPPORTED, "attention: %u bytes of shared memory hold no key of dim %u",
                    c->max_shared_memory, dh);
  cfg->bc = bc;
  cfg->shared = bc * per_key;
  return DRD_OK;
}

/* The CPU-device kernel (attn_hsa_sg.comp): workgroups of a subgroup's width, R query rows per
 * invocation, BC keys per online-softmax step, one per lane, passed on by shuffles; no shared
 * memory. CPU devices only: a GPU would run its 4 - 8 invocations per workgroup far from full.
 * ms per layer on this project's 2-core machine, `DRDIFF_ATTN_KERNEL=scalar|subgroup
 * tool_bench_attention ...`, the shipped model's shape at 1K tokens (`1024 4 64 16 256 512 1024
 * 3 3 3 2 4 8 3 3 3 1 2 4`, B 16) / base-220m's at 4K (`4096 2 64`, B 64):
 *   2026-12-05, every lane loading the same key, BC keys per step:
 *   Mesa 22.3: scalar 77 - 78 / 469 - 489; R = 1, BC 8: 61 / -; R = 2, 4: 34 / 140;
 *              R = 2, 8 with BC 8: - / 86 - 91, BC 16: 39 / 95 - 100, BC 4: 29 - 30 / 79 - 83,
 *              BC 2: 30 - 31 / 85, BC 1: 27 / 99
 *   Mesa 26.1: scalar 28 - 30 / 126 - 140; R = 2, 8 with BC 4: 7.5 - 7.7 / 81 - 86
 *   thirty-third session, a key per lane and shuffles (BC = SG = 8) against BC 4 above:
 *   Mesa 22.3: 28.1 - 28.3 -> 11.3 - 11.7 / 84 -> 61; Mesa 26.1: 7.3 - 7.6 -> 6.2 - 6.3 / -
 * So R = the block's rows, at most 8 (each key load feeds R rows), and BC = SG. */
static bool sg_config(const drd_context *ctx, uint32_t dh, uint32_t B, drd_attn_kernel *cfg) {
  const uint32_t sg = drd_cpu_sg_wg(ctx);
  if (!sg || dh > 128 || !drd_shader_find("attn_hsa_sg")) return false;
  uint32_t r = (B + sg - 1) / sg; /* >= 1: B >= 1 */
  if (r > 8) r = 8;
  *cfg = (drd_attn_kernel){.kind = DRD_ATTN_SUBGROUP, .wg = sg, .br = sg * r, .bc = sg, .tc = 1, .v4 = (dh + 3) / 4};
  return true;
}

drd_attn_kind drd_attention_f32_kind(const drd_context *ctx, uint32_t dh) {
  drd_attn_kernel k;
  return sg_config(ctx, dh, 1, &k) ? DRD_ATTN_SUBGROUP : DRD_ATTN_SCALAR;
}

#define ATTN_CM_SLACK 8u /* log2 units a score may exceed its row's reference max (attn_cm.glsl) */

static uint32_t gcd_u32(uint32_t a, uint32_t b) {
  while (b) {
    uint32_t r = a % b;
    a = b;
    b = r;
  }
  return a;
}

/* Bytes of shared memory attn_cm.glsl declares: K and V tiles (f16, rows padded by 8
 * halves), P (f16, padded by 8; not with the conversion), an accumulator's f32 scratch per
 * subgroup. */
static uint64_t cm_shared(uint32_t ns, uint32_t br, uint32_t bc, uint32_t dhp, uint32_t cm, uint32_t cn,
                          bool convert) {
  return 4ull * bc * (dhp + 8) + (convert ? 0 : 2ull * br * (bc + 8)) + 4ull * ns * cm * cn;
}

/* The cooperative-matrix kernel's tile from k's request fields (ns, tms, bc: 0 = automatic);
 * false when the device or the shape does not suit it (automatic: also when padding the head
 * dim to the matrix shape would waste more than a quarter of the products).
 * Automatic tile: a query block's rows (up to 64) in at most 4 subgroups, one row tile of
 * CM each where that covers them (H100, CM = 16: B = 64 in 4 x 32 invocations, B = 16 in one
 * subgroup; lavapipe, CM = 8: two row tiles each); ATTN_CM_BC keys per tile (or the smallest
 * multiple of the matrix shape above that), halved until it fits.
 * Measured on an H200 (driver 580, tool_bench_attention 16384 16 64, base-220m's B 64, ms per
 * layer): 4 sg x 1 row tile with bc 16 1.68, bc 32 2.05, bc 64 3.18 (bc 128 does not fit 48 KiB);
 * 2 sg x 2 with bc 16 2.18, bc 32 3.06, bc 64 6.18; 2 sg x 1 with bc 16 2.88, bc 64 8.98; 1 sg
 * x 1 with bc 16 5.53; 4 sg x 2 (half the rows empty) 3.26. The previous kernel (softmax through
 * shared memory, three workgroup barriers per tile) took 2.84 - 2.92 at its best (bc 16). Two
 * K/V buffers (one barrier per tile instead of two) made bc 16 slower: 2.67. Since each tile is
 * loaded in its own iteration (no prefetch into registers; eighth session): 4 x 1 with bc 16
 * 1.61, bc 32 2.00 - 2.03 (150 registers, 3 workgroups per SM), bc 64 3.07 - 3.10; 2 x 2 with
 * bc 16 2.10, bc 32 2.94 - 2.95. Since tiles stay inside one key block (fifteenth session): 4 x 1
 * with bc 16 1.14, bc 32 1.43, bc 64 1.83. So bc 16 stays.
 * The head dim may span at most 8 matrices (dh <= 128 with 16 x 16 x 16, <= 64 with
 * lavapipe's 8 x 8 x 8), and so may a tile of keys. */
#define ATTN_CM_BC 16u
/* With P in registers (attn_hsa_cm2.comp; the same tool, ms per layer at 16K / 64K tokens, two
 * rounds): 4 x 1 with bc 16 1.05 - 1.09 / 4.08 - 4.10, bc 32 1.02 - 1.06 / 4.08, bc 64 1.09 - 1.10 /
 * 4.36 - 4.37; 2 x 2 with bc 16 1.17 - 1.18 / 4.55, bc 32 1.01 - 1.03 / 3.85 - 3.87; 2 x 1 with bc 16
 * 1.27 - 1.29 / 5.18 - 5.24 (P through shared memory, 4 x 1, bc 16: 1.11 - 1.13 / 4.33 - 4.36).
 * 2 x 2 with bc 32 loses at 4K (0.24 - 0.26 against 0.22 - 0.23) and in a whole 4K step, gains
 * 0.2 - 1 % of a step at 16K - 64K, and changes the sums' order (other tokens); so the same tile
 * either way. */

static bool cm_config(const drd_context *ctx, uint32_t dh, uint32_t B, bool automatic, drd_attn_kernel *k) {
  const drd_device_caps *c = &ctx->caps;
  const uint32_t cm = c->coopmat_m, cn = c->coopmat_n, ck = c->coopmat_k, sg = c->subgroup_size;
  const uint32_t ops = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_VOTE_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT;
  /* fragment offsets in f16 must be 16-byte aligned: columns in steps of CN and CK halves */
  if (!cm || !cn || !ck || cn % 8 || ck % 8 || !sg || !c->storage_16bit || (c->subgroup_ops & ops) != ops ||
      !(c->subgroup_stages & VK_SHADER_STAGE_COMPUTE_BIT) || !drd_shader_find("attn_hsa_cm"))
    return false;
  /* P's accumulators (CM x CN) become the A operands of P V steps CK deep: CK == CN. Chosen
   * automatically on GPUs only: an H200 (driver 580) runs the layer 5 - 8 % faster with it, and
   * lavapipe (Mesa 26.1), which emulates it, compiles and runs it far slower (the kernel test
   * 46 s without it, ~600 s with it; docs/performance.md). */
  const bool can_convert = c->coopmat_convert && ck == cn;
  if (k->convert > DRD_ATTN_CONVERT_OFF || (k->convert == DRD_ATTN_CONVERT_ON && !can_convert)) return false;
  const bool convert = k->convert == DRD_ATTN_CONVERT_AUTO ? can_convert && c->type != DRD_DEVICE_CPU
                                                           : k->convert == DRD_ATTN_CONVERT_ON;
  const uint32_t step = cn / gcd_u32(cn, ck) * ck;
  const uint32_t dhp = (dh + step - 1) / step * step;
  if (automatic && 4 * (dhp - dh) > dhp) return false;
  const uint32_t tiles = ((B < 64 ? B : 64) + cm - 1) / cm;
  const uint32_t ns = k->ns ? k->ns : tiles < 4 ? tiles : 4;
  const uint32_t tms = k->tms ? k->tms : (tiles + ns - 1) / ns;
  const uint64_t wg = (uint64_t)ns * sg;
  /* the shader writes its matrices out for at most 2 row tiles and 8 matrices along dh */
  if (tms > 2 || dhp / cn > 8 || dhp / ck > 8 || wg > c->max_workgroup_invocations || wg > c->max_workgroup_size[0])
    return false;
  /* keys per tile: a multiple of CN and CK (S columns, P.V steps) and CM (Q staging), at most
   * 8 matrices of S per row tile */
  const uint32_t unit = cm / gcd_u32(cm, step) * step, br = ns * tms * cm;
  uint32_t bc = k->bc ? k->bc : unit > ATTN_CM_BC ? unit : ATTN_CM_BC;
  while (bc && (bc % unit || bc / cn > 8 || cm_shared(ns, br, bc, dhp, cm, cn, convert) > c->max_shared_memory))
    bc = k->bc ? 0 : bc / 2;
  if (!bc) return false;
  *k = (drd_attn_kernel){.kind = DRD_ATTN_COOPMAT, .wg = (uint32_t)wg, .br = br, .bc = bc,
                         .shared = (uint32_t)cm_shared(ns, br, bc, dhp, cm, cn, convert), .ns = ns, .tms = tms,
                         .dhp = dhp, .eager = k->eager != 0,
                         .convert = convert ? DRD_ATTN_CONVERT_ON : DRD_ATTN_CONVERT_OFF};
  return true;
}

drd_status drd_attention_kernel(const drd_context *ctx, const drd_attention_plan *dp, drd_attn_kernel *out) {
  drd_attn_kernel k = dp->request;
  const drd_attn_kind kind = k.kind;
  memset(out, 0, sizeof *out);
  switch (kind) {
  case DRD_ATTN_AUTO:
    k = (drd_attn_kernel){0};
    if (cm_config(ctx, dp->dh, dp->B, true, &k) || sg_config(ctx, dp->dh, dp->B, &k)) break;
    return scalar_config(ctx, dp->dh, dp->B, out);
  case DRD_ATTN_SUBGROUP:
    if (sg_config(ctx, dp->dh, dp->B, &k)) break;
    return drd_fail(DRD_ERROR_UNSUPPORTED, "attention: the subgroup kernel runs on CPU devices with subgroups of "
                    "at most 64, head dim <= 128 (dh %u)", dp->dh);
  case DRD_ATTN_COOPMAT:
    if (cm_config(ctx, dp->dh, dp->B, false, &k)) break;
    return drd_fail(DRD_ERROR_UNSUPPORTED,
                    "attention: the cooperative-matrix kernel (ns %u, tms %u, bc %u) cannot run for dh %u, B %u "
                    "on this device",
                    k.ns, k.tms, k.bc, dp->dh, dp->B);
  case DRD_ATTN_SCALAR:
    return scalar_config(ctx, dp->dh, dp->B, out);
  default:
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "attention: unknown kernel kind %d", (int)kind);
  }
  *out = k;
  return DRD_OK;
}

static drd_status record_attention(drd_seq *s, const drd_attention_plan *dp, const drd_buffer *q,
                                   const drd_buffer *k, const drd_buffer *v, bool in16, const drd_buffer *out,
                                   bool out16);

float drd_attention_q_scale(uint32_t dh) { return (float)(1.4426950408889634 / sqrt((double)dh)); }

bool drd_attention_f16_out(const drd_context *ctx, const drd_attention_plan *dp) {
  drd_attn_kernel k;
  /* the coopmat kernel needs 16-bit storage (cm_config), which the f16 out needs too */
  return dp && dp->groups && dp->window_blocks >= dp->nb && drd_attention_kernel(ctx, dp, &k) == DRD_OK &&
         k.kind == DRD_ATTN_COOPMAT;
}

drd_status drd_op_attention_hsa(drd_seq *s, const drd_attention_plan *dp, const drd_buffer *q,
                                const drd_buffer *k, const drd_buffer *v, const drd_buffer *out) {
  return record_attention(s, dp, q, k, v, false, out, false);
}

drd_status drd_op_attention_hsa_f16(drd_seq *s, const drd_attention_plan *dp, const drd_buffer *q,
                                    const drd_buffer *k, const drd_buffer *v, bool in16, const drd_buffer *out16) {
  if (!drd_attention_f16_out(drd_seq_context(s), dp))
    return drd_fail(DRD_ERROR_UNSUPPORTED, "attention: f16 out needs the cooperative-matrix kernel, 16-bit storage "
                    "and keys within one binding window");
  return record_attention(s, dp, q, k, v, in16, out16, true);
}

static drd_status record_attention(drd_seq *s, const drd_attention_plan *dp, const drd_buffer *q,
                                   const drd_buffer *k, const drd_buffer *v, bool in16, const drd_buffer *out,
                                   bool out16) {
  drd_context *ctx = drd_seq_context(s);
  drd_status status = DRD_OK;
  if (!dp || !dp->groups) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "attention: no plan");
  const uint32_t N = dp->N, H = dp->H, dh = dp->dh, B = dp->B;
  const uint64_t blk = (uint64_t)B * H * dh * 4; /* a block of f32 rows (the slots' partial outputs) */
  const uint32_t oes = out16 ? 2 : 4, ies = in16 ? 2 : 4; /* bytes per element of out, of q, k and v */
  const uint64_t orow = (uint64_t)H * dh * oes, row = (uint64_t)H * dh * ies;
  if (q->size < N * row || k->size < N * row || v->size < N * row || out->size < N * orow)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "attention: buffers smaller than [%u, %u] (q, k and v %s, out %s)",
                    N, H * dh, in16 ? "f16" : "f32", out16 ? "f16" : "f32");
  const drd_buffer *in[3] = {q, k, v};
  for (int i = 0; i < 3; i++)
    if (drd_bytes_overlap(out, N * orow, in[i], N * row))
      return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "attention: out must not alias q, k or v");
  drd_attn_kernel cfg;
  DRD_CHECK(drd_attention_kernel(ctx, dp, &cfg));
  drd_pipeline *pa, *pm;
  if (cfg.kind == DRD_ATTN_COOPMAT) {
    const drd_device_caps *c = &ctx->caps;
    const uint32_t spec[14] = {cfg.wg, dh, cfg.dhp, cfg.bc, cfg.ns, cfg.tms, c->subgroup_size, c->coopmat_m,
                               c->coopmat_n, c->coopmat_k, dh % 4 == 0, cfg.eager ? 0 : ATTN_CM_SLACK, out16, in16};
    const char *shader = cfg.convert == DRD_ATTN_CONVERT_ON ? "attn_hsa_cm2" : "attn_hsa_cm";
    DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){shader, 8, sizeof(drd_pc_attn), 14, spec}, &pa));
  } else if (out16 || in16) {
    return drd_fail(DRD_ERROR_UNSUPPORTED, "attention: f16 out, q, k and v need the cooperative-matrix kernel");
  } else {
    const uint32_t spec[7] = {cfg.wg, dh, cfg.tc, cfg.v4, cfg.bc, cfg.br, dh % 4 == 0};
    const char *shader = cfg.kind == DRD_ATTN_SUBGROUP ? "attn_hsa_sg"
                         : cfg.shuffle                 ? "attn_hsa_f32"
                                                       : "attn_hsa_f32_noshuffle";
    DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){shader, 8, sizeof(drd_pc_attn), 7, spec}, &pa));
  }
  const uint32_t mwg = 128, mspec[2] = {mwg, dh}, mrows = mwg / dh; /* rows per merge workgroup */
  DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){out16 ? "attn_hsa_merge_f16" : "attn_hsa_merge", 5,
                                                       sizeof(drd_pc_attn_merge), 2, mspec}, &pm));
  const uint32_t tiles = (B + cfg.br - 1) / cfg.br;
  const float scale_log2 = drd_attention_q_scale(dh);

  for (uint32_t gi = 0; gi < dp->n_groups; gi++) {
    const drd_attn_group *g = &dp->groups[gi];
    const uint64_t q0 = (uint64_t)g->qa0 * B, q1 = (uint64_t)g->qa1 * B < N ? (uint64_t)g->qa1 * B : N;
    const uint64_t k0 = (uint64_t)g->ka0 * B, k1 = (uint64_t)g->ka1 * B < N ? (uint64_t)g->ka1 * B : N;
    drd_pc_attn pc = {.N = N, .H = H, .B = B, .q_row0 = (uint32_t)q0, .kv_row0 = (uint32_t)k0, .scale_log2 = scale_log2};
    uint32_t skip_v;
    const uint32_t slots = g->n_slots;
    drd_bind b[8] = {
        span(ctx, q, q0 * row, (q1 - q0) * row, false, ies, &pc.q_off),
        span(ctx, k, k0 * row, (k1 - k0) * row, false, ies, &pc.kv_off),
        span(ctx, v, k0 * row, (k1 - k0) * row, false, ies, &skip_v),
        span(ctx, out, q0 * orow, (q1 - q0) * orow, true, oes, &pc.o_off),
        span(ctx, &dp->items, (uint64_t)g->item0 * 16, (uint64_t)g->n_items * 16, false, 16, &pc.item_off),
        span(ctx, &dp->col, (uint64_t)g->col0 * 4, (uint64_t)(g->col1 - g->col0) * 4, false, 4, &pc.col_base),
        slots ? drd_out_range(&dp->slot_o, 0, slots * blk) : drd_out(&dp->slot_o),
        slots ? drd_out_range(&dp->slot_ml, 0, (uint64_t)slots * B * H * 8) : drd_out(&dp->slot_ml),
    };
    /* k and v have the same shape and aligned starts, so the same skips */
    if (skip_v != pc.kv_off)
      return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "attention: k and v buffers are not equally aligned");
    pc.col_base = g->col0 - pc.col_base; /* CSR index of the binding's first element */
    DRD_CHECK(drd_seq_dispatch(s, pa, b, 8, &pc, g->n_items, tiles, H, "attention"));
    if (!g->n_mitems) continue;

    drd_pc_attn_merge mc = {.N = N, .H = H, .B = B, .q_row0 = (uint32_t)q0};
    drd_bind m[5] = {
        drd_in_range(&dp->slot_o, 0, slots * blk),
        drd_in_range(&dp->slot_ml, 0, (uint64_t)slots * B * H * 8),
        span(ctx, out, q0 * orow, (q1 - q0) * orow, true, oes, &mc.q_off),
        dp->window_blocks < dp->nb ? span(ctx, &dp->stats, q0 * H * 8, (q1 - q0) * H * 8, true, 4, &mc.st_off)
                            : drd_out(&dp->stats),
        span(ctx, &dp->merge_items, (uint64_t)g->mitem0 * 16, (uint64_t)g->n_mitems * 16, false, 16, &mc.item_off),
    };
    DRD_CHECK(drd_seq_dispatch(s, pm, m, 5, &mc, g->n_mitems, H, (B + mrows - 1) / mrows, "attention_merge"));
  }
cleanup:
  return status;
}
