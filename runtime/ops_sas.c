/* SAS soft absorption and rounding (SPEC 8): attention over the vocabulary, streamed in
 * tiles (shaders/sas_absorb_f32.comp, round_argmax_f32.comp, or the cooperative-matrix
 * sas_absorb_cm.comp, round_argmax_cm.comp), vocabulary splits merged exactly
 * (sas_merge_f32.comp, round_merge_f32.comp): tile shapes from the device's limits, splits
 * and row chunks so that no binding exceeds the device's range. */
#include <math.h>
#include <string.h>

#include "ops_sampler.h"
#include "pc_sampler.h"
#include "vk_shaders.h"

static uint64_t min64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static uint64_t max64(uint64_t a, uint64_t b) { return a > b ? a : b; }
static uint64_t cdiv(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

/* Workgroup size of the merge kernels. */
static uint32_t elt_wg(const drd_context *ctx) {
  return ctx->caps.max_workgroup_invocations < 256 ? ctx->caps.max_workgroup_invocations : 256;
}

/* ================================================================== SAS and rounding */

#define SAS_CM_SLACK 8u /* sas_absorb_cm.comp: natural-log units a logit may exceed its row's reference */

static uint32_t sas_de4(uint32_t de) { return (de + 3) / 4; }            /* shaders' DE4 */
static uint32_t sas_stride4(uint32_t de) { return sas_de4(de) | 1u; }   /* shaders' ES4 (vec4s) */
static uint32_t gcd32(uint32_t a, uint32_t b) { return b ? gcd32(b, a % b) : a; }
static uint32_t lcm32(uint32_t a, uint32_t b) { return a / gcd32(a, b) * b; }
static bool pow2(uint32_t x) { return x && !(x & (x - 1)); }

/* The cooperative-matrix kernels' geometry (sas_cm.glsl's constants) on this device for de:
 * false when they cannot run. Their matrices are written out by macros (no arrays: see
 * sas_cm.glsl), which bounds the fragment counts: DEP / CK query fragments <= 16, DEP / CN
 * running-sum accumulators <= 16. CN and CK multiples of 8 keep every fragment 16-byte aligned
 * in shared memory; absorb's P block of CN entries is CN / CK whole A fragments; in rounding
 * T = SG / CM invocations share an argmax row and meet through shuffles. */
typedef struct sas_cm_geom {
  uint32_t cm, cn, ck, sg, t, dep;
} sas_cm_geom;

static bool sas_cm_geom_get(const drd_context *ctx, uint32_t de, sas_cm_geom *g) {
  const drd_device_caps *c = &ctx->caps;
  const uint32_t cm = c->coopmat_m, cn = c->coopmat_n, ck = c->coopmat_k, sg = c->subgroup_size;
  const uint32_t ops = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_SHUFFLE_BIT | VK_SUBGROUP_FEATURE_VOTE_BIT |
                       VK_SUBGROUP_FEATURE_ARITHMETIC_BIT;
  if (!cm || !cn || !ck || cn % 8 || ck % 8 || cn % ck || !sg || sg % cm || !pow2(sg / cm) ||
      (c->subgroup_ops & ops) != ops || !(c->subgroup_stages & VK_SHADER_STAGE_COMPUTE_BIT) ||
      de == 0 || de > 1024 || !drd_shader_find("sas_absorb_cm") || !drd_shader_find("round_argmax_cm"))
    return false;
  const uint32_t unit = lcm32(lcm32(ck, cn), 8);
  const uint32_t dep = (de + unit - 1) / unit * unit;
  if (dep / ck > 16 || dep / cn > 16) return false;
  *g = (sas_cm_geom){.cm = cm, .cn = cn, .ck = ck, .sg = sg, .t = sg / cm, .dep = dep};
  return true;
}

static uint32_t sas_wg(const drd_context *ctx, const drd_sas_config *c) {
  if (c->kind == DRD_SAS_SUBGROUP) return ctx->caps.subgroup_size;
  return c->kind == DRD_SAS_COOPMAT ? c->rg * ctx->caps.subgroup_size : c->rg * c->ct;
}

/* rows per workgroup */
static uint32_t sas_rows(const drd_context *ctx, const drd_sas_config *c) {
  if (c->kind == DRD_SAS_SUBGROUP) return ctx->caps.subgroup_size * c->tr;
  return c->kind == DRD_SAS_COOPMAT ? c->rg * ctx->caps.coopmat_m : c->rg * c->tr;
}

/* Shared memory of either kernel: one configuration serves both ops. Scalar (absorb: D rows,
 * E tile, probabilities, per-thread maxima; round: D rows, E tile, per-thread candidates).
 * Coopmat (sas_cm.glsl): the f16 E tile with rows padded by 8 halves, and then absorb's two
 * f16 P slots of CM x (CN + 8) and an f32 CM x CN scratch per subgroup, or round's f32 logits
 * [rows, VT + 4]. */
static uint64_t sas_shared(const drd_context *ctx, const drd_sas_config *c, uint32_t de) {
  if (c->kind == DRD_SAS_SUBGROUP) return 0;
  uint64_t rb = sas_rows(ctx, c);
  if (c->kind == DRD_SAS_COOPMAT) {
    sas_cm_geom g;
    if (!sas_cm_geom_get(ctx, de, &g)) return UINT64_MAX;
    const uint64_t absorb = 2ull * c->rg * 2 * g.cm * (g.cn + 8) + 4ull * c->rg * g.cm * g.cn;
    return 2ull * c->vt * (g.dep + 8) + max64(absorb, 4ull * rb * (c->vt + 4));
  }
  uint64_t es = sas_stride4(de);
  uint64_t common = (c->vt + rb) * es * 16;
  return common + max64(rb * (c->vt + c->ct) * 4, rb * c->ct * 8);
}

static bool sas_cm_config_ok(const drd_context *ctx, const drd_sas_config *c, uint32_t de) {
  sas_cm_geom g;
  if (c->kind != DRD_SAS_COOPMAT || !sas_cm_geom_get(ctx, de, &g) || !c->rg || !c->vt) return false;
  /* tiles: whole logit blocks (CN), query-staging rounds (CM), 4-entry groups per argmax
   * invocation (4 T) */
  const uint32_t vt = c->vt;
  return vt % g.cm == 0 && vt % g.cn == 0 && vt % (4 * g.t) == 0;
}

/* The subgroup kernel (sas_absorb_sg.comp): a CPU device whose subgroups shuffle, 1 - 16 rows
 * per invocation, 1 - 8 entries per step (one per lane: at most the subgroup size), and at most
 * 256 vec4s of rows and running sums per invocation. */
static bool sas_sg_config_ok(const drd_context *ctx, const drd_sas_config *c, uint32_t de) {
  const uint32_t sg = drd_cpu_sg_wg(ctx);
  return c->kind == DRD_SAS_SUBGROUP && sg && c->tr >= 1 && c->tr <= 16 && c->vt >= 1 && c->vt <= 8 &&
         c->vt <= sg && de >= 1 && 2ull * c->tr * sas_de4(de) <= 256 && drd_shader_find("sas_absorb_sg");
}

bool drd_sas_config_ok(const drd_context *ctx, const drd_sas_config *c, uint32_t de) {
  const drd_device_caps *caps = &ctx->caps;
  if (c->kind == DRD_SAS_SUBGROUP) return sas_sg_config_ok(ctx, c, de);
  if (c->kind == DRD_SAS_COOPMAT) {
    if (!sas_cm_config_ok(ctx, c, de)) return false;
  } else {
    if (c->kind != DRD_SAS_SCALAR || !c->ct || !c->rg || !c->tr || !c->vt || c->vt % c->ct || c->vt % 4 || de == 0 ||
        de > 1024)
      return false;
    uint32_t nc4 = (sas_de4(de) + c->ct - 1) / c->ct;
    if (c->tr * nc4 * 4 > 256 || c->tr * (c->vt / c->ct) > 256) return false; /* registers */
  }
  uint64_t wg = sas_wg(ctx, c);
  return wg <= caps->max_workgroup_invocations && wg <= caps->max_workgroup_size[0] &&
         sas_shared(ctx, c, de) <= caps->max_shared_memory;
}

/* a tile of f32 embeddings must fit one binding (small DRDIFF_MAX_BUFFER_RANGE) */
static bool sas_tile_binds(const drd_context *ctx, uint32_t vt, uint32_t de) {
  uint64_t range = drd_max_bind_range(ctx), cap = range > ctx->alloc.alignment + 4 ? range - ctx->alloc.alignment - 4 : 0;
  return (uint64_t)vt * de * 4 <= cap;
}

static drd_sas_config sas_pick_scalar(const drd_context *ctx, uint32_t rows, uint32_t de) {
  /* Largest first. 128 invocations with 4 x 2 logits and 4 x 4 ceil(de/128) accumulators
   * each reuse every shared-memory vec4 2-4 times; smaller shapes for small shared memory,
   * narrow embeddings (ct <= ceil(de / 4): no idle column threads in the weighted sum) and few
   * rows (rg * tr <= 2 rows: no idle row groups). */
  static const drd_sas_config cand[] = {
      {32, 4, 4, 64, 0, DRD_SAS_SCALAR}, {32, 4, 4, 32, 0, DRD_SAS_SCALAR}, {32, 4, 2, 32, 0, DRD_SAS_SCALAR},
      {32, 2, 1, 32, 0, DRD_SAS_SCALAR}, {32, 1, 1, 32, 0, DRD_SAS_SCALAR}, {16, 4, 4, 32, 0, DRD_SAS_SCALAR},
      {16, 4, 2, 16, 0, DRD_SAS_SCALAR}, {16, 2, 1, 16, 0, DRD_SAS_SCALAR}, {16, 1, 1, 16, 0, DRD_SAS_SCALAR},
      {8, 4, 2, 16, 0, DRD_SAS_SCALAR},  {8, 4, 1, 8, 0, DRD_SAS_SCALAR},   {8, 1, 1, 8, 0, DRD_SAS_SCALAR},
      {4, 2, 1, 4, 0, DRD_SAS_SCALAR},   {4, 1, 1, 4, 0, DRD_SAS_SCALAR},
  };
  uint32_t ctmax = 4;
  while (ctmax < 32 && ctmax < sas_de4(de)) ctmax *= 2;
  uint64_t rbmax = max64(2, 2 * (uint64_t)rows);
  for (int pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < sizeof cand / sizeof *cand; i++) {
      const drd_sas_config *c = &cand[i];
      if (c->ct > ctmax || (pass == 0 && (uint64_t)c->rg * c->tr > rbmax)) continue;
      if (!sas_tile_binds(ctx, c->vt, de) && i + 1 < sizeof cand / sizeof *cand) continue;
      if (drd_sas_config_ok(ctx, c, de)) return *c;
    }
  return cand[sizeof cand / sizeof *cand - 1];
}

/* The cooperative-matrix tile: up to 4 subgroups (one per CM rows the call has), tiles of 32
 * entries halved until shared memory holds them (base-220m, de = 128: 18.5 KiB with NVIDIA's
 * 16x16 matrices and 4 x 32 invocations, 13 KiB with lavapipe's 8x8 and 4 x 8). On an H200
 * the 32-entry tile, staged through registers, absorbs 16384 rows in 2.6 ms; 16 entries take
 * 3.0 ms and 64 (too many for registers, staged by a loop) 6.8 ms (docs/performance.md). Only
 * where padding de to the matrix shape wastes at most a quarter of the products, and the
 * invocation's query fragments (QK * CM * CK / SG halves) and running sum (DEP / CN
 * accumulators of CM * CN / SG floats) stay within about 192 registers: past that, the
 * scalar kernel. */
static bool sas_pick_cm(const drd_context *ctx, uint32_t rows, uint32_t de, drd_sas_config *out) {
  sas_cm_geom g;
  if (!sas_cm_geom_get(ctx, de, &g) || 4 * (g.dep - de) > g.dep) return false;
  const uint64_t regs = (uint64_t)g.dep / g.cn * (g.cm * g.cn / g.sg) + (uint64_t)g.dep / g.ck * g.cm * g.ck / g.sg / 2;
  if (regs > 192) return false;
  uint32_t ns = (uint32_t)min64(4, max64(1, cdiv(rows, g.cm)));
  for (; ns >= 1; ns--)
    for (uint32_t vt = 32; vt >= 8; vt /= 2) {
      drd_sas_config c = {.rg = ns, .vt = vt, .kind = DRD_SAS_COOPMAT};
      if (sas_tile_binds(ctx, vt, de) && drd_sas_config_ok(ctx, &c, de)) {
        *out = c;
        return true;
      }
    }
  return false;
}

/* The subgroup kernel's shape: rows per invocation as many as the rows fill, at most 4, and 4
 * entries per step. Compile time counts (lavapipe compiles on first use): the shipped model's
 * README command with an empty shader cache, Mesa 22.3, sas_absorb compile / 1K-step time
 * (`drdiff bench -m models/drdiff-small-f16.gguf -n 1024 --steps 3`), 2026-12-05, entries
 * passed on by shuffles: R 8 with 4 entries 5.4 s / 23 ms, with 8 entries 8.1 s / 22 ms; R 4 1.5
 * s / 19.8 ms; R 2 0.5 s / 24.2 ms (every lane loading the same entry, R 8: 4.1 s / 25.7 ms). */
static bool sas_pick_sg(const drd_context *ctx, uint32_t rows, uint32_t de, drd_sas_config *out) {
  const uint32_t sg = ctx->caps.subgroup_size ? ctx->caps.subgroup_size : 1;
  uint32_t tr = (uint32_t)min64(4, max64(1, cdiv(rows, sg)));
  for (; tr >= 1; tr--) {
    /* an entry per lane and step: 4, or all the lanes of a narrower subgroup */
    drd_sas_config c = {.rg = 1, .tr = tr, .vt = sg < 4 ? sg : 4, .kind = DRD_SAS_SUBGROUP};
    if (sas_sg_config_ok(ctx, &c, de)) {
      *out = c;
      return true;
    }
  }
  return false;
}

bool drd_sas_pick_kind(const drd_context *ctx, drd_sas_kind kind, uint32_t rows, uint32_t de, drd_sas_config *out) {
  if (kind == DRD_SAS_COOPMAT) return sas_pick_cm(ctx, rows, de, out);
  if (kind == DRD_SAS_SUBGROUP) return sas_pick_sg(ctx, rows, de, out);
  if (kind != DRD_SAS_SCALAR) return false;
  *out = sas_pick_scalar(ctx, rows, de);
  return true;
}

drd_sas_config drd_sas_pick_f32(const drd_context *ctx, uint32_t rows, uint32_t de) {
  drd_sas_config c;
  if (sas_pick_sg(ctx, rows, de, &c)) return c;
  return sas_pick_scalar(ctx, rows, de);
}

/* The ops' own choice: the cooperative-matrix kernels where the device has them (at N = 16384
 * on an H200 an absorption step took 31 ms on the scalar kernel; docs/performance.md). */
drd_sas_config drd_sas_pick(const drd_context *ctx, uint32_t rows, uint32_t de) {
  drd_sas_config c;
  if (sas_pick_cm(ctx, rows, de, &c)) return c;
  return drd_sas_pick_f32(ctx, rows, de);
}

typedef struct sas_plan {
  drd_sas_config cfg;
  uint32_t rb;              /* rows per workgroup */
  uint32_t splits;          /* vocabulary splits */
  uint32_t split_len;       /* entries per split, a multiple of vt */
  uint32_t per_dispatch;    /* splits per dispatch (one E binding) */
  uint32_t row_chunk;       /* rows per dispatch */
  uint32_t state;           /* floats per (row, split) state: absorb DRD_SAS_STATE_FLOATS(de), round 2 */
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
static uint64_t sas_loop_cost(const drd_context *ctx, const drd_sas_config *c, uint32_t de, uint64_t *fixed) {
  const uint64_t wg = sas_wg(ctx, c), rb = sas_rows(ctx, c);
  if (c->kind == DRD_SAS_SUBGROUP) {
    /* sas_absorb_sg.comp: one loop iteration per step of vt entries; its other loops have
     * constant trip counts and are unrolled. On Mesa 22.3 and 26.1 a forced single split of
     * 32768 entries (8192 steps, vt 4, de 128) gave the right rows, which it could not have if
     * the inner loops counted (2026-12-05). Counted here as 2 + vt per step, for a driver that
     * unrolls less. */
    *fixed = 16;
    return 2 + c->vt;
  }
  sas_cm_geom g;
  if (c->kind == DRD_SAS_COOPMAT && sas_cm_geom_get(ctx, de, &g)) {
    /* sas_cm.glsl: staging (5 per group: the loop and an element loop); per block of CN
     * entries (sas_absorb_cm.comp) the element loops over an accumulator's E = CM CN / SG
     * elements (mask, test, exp) and, as if m rose on every block, raise_rows (CM rounds of two
     * element loops, then one), and the P fragments; the Q staging rounds, the ids and the
     * output (a scratch loop per accumulator) once */
    const uint64_t stage = cdiv((uint64_t)c->vt * (g.dep / 4), wg) * 5, nb = g.dep / g.cn;
    const uint64_t e = (uint64_t)g.cm * g.cn / g.sg;
    *fixed = cdiv(rb, c->vt) * (stage + 1) + e + nb * (e + 1) + 2 * 2 + 16;
    return stage + c->vt / g.cn * (1 + 4 * e + g.cm * (2 * e + 1) + g.cn / g.ck) + 2;
  }
  const uint64_t tvc = c->vt / c->ct, tr = c->tr;
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
  /* rounding has no subgroup kernel: the scalar one, with its own splits */
  if (!absorb && p->cfg.kind == DRD_SAS_SUBGROUP) {
    const uint32_t splits = p->cfg.splits;
    p->cfg = sas_pick_scalar(ctx, active, de);
    p->cfg.splits = splits;
  }
  const drd_sas_config *c = &p->cfg;
  if (!drd_sas_config_ok(ctx, c, de))
    return drd_fail(DRD_ERROR_UNSUPPORTED, "sas: %s tile %u x %u x %u / %u does not fit this device for de = %u",
                    c->kind == DRD_SAS_COOPMAT    ? "cooperative-matrix"
                    : c->kind == DRD_SAS_SUBGROUP ? "subgroup"
                                                  : "scalar",
                    c->ct, c->rg, c->tr, c->vt, de);
  p->rb = sas_rows(ctx, c);
  p->state = absorb ? DRD_SAS_STATE_FLOATS(de) : 2;
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
    uint64_t fixed, per_tile = sas_loop_cost(ctx, c, de, &fixed);
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
  if (rows <= row_first || V == 0 || drd_sampler_check_etype(etype, "sas") != DRD_OK) return 0;
  /* both ops' plans: with the subgroup kernel, rounding runs the scalar one, split its own way */
  uint64_t most = 0;
  for (int absorb = 1; absorb >= 0; absorb--) {
    sas_plan p = {0};
    if (sas_plan_make(ctx, cfg, etype, rows - row_first, V, de, absorb, UINT64_MAX, &p) != DRD_OK) return 0;
    most = max64(most, p.splits > 1 ? (uint64_t)(rows - row_first) * p.splits * p.state * 4 : 0);
  }
  return most;
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
  DRD_CHECK(drd_sampler_check_etype(etype, op));
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

  const uint32_t et = etype == DRD_DTYPE_F16 ? DRD_SAMPLER_E_F16 : DRD_SAMPLER_E_F32;
  drd_pipeline *main_p, *merge_p = NULL;
  if (c->kind == DRD_SAS_COOPMAT) {
    const drd_device_caps *caps = &ctx->caps;
    sas_cm_geom g;
    sas_cm_geom_get(ctx, de, &g); /* drd_sas_config_ok said it exists */
    /* absorb alone takes the last constant, its SLACK */
    uint32_t spec[11] = {sas_wg(ctx, c), de, g.dep, c->vt, c->rg, caps->subgroup_size,
                         caps->coopmat_m, caps->coopmat_n, caps->coopmat_k, et, SAS_CM_SLACK};
    DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){absorb ? "sas_absorb_cm" : "round_argmax_cm", absorb ? 3 : 4,
                                                         sizeof(drd_pc_sas), absorb ? 11 : 10, spec}, &main_p));
  } else if (c->kind != DRD_SAS_SUBGROUP) { /* the subgroup kernel's is chosen per dispatch, below */
    uint32_t spec[6] = {sas_wg(ctx, c), c->ct, c->tr, c->vt, de, et};
    DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){absorb ? "sas_absorb_f32" : "round_argmax_f32", absorb ? 3 : 4,
                                                         sizeof(drd_pc_sas), 6, spec}, &main_p));
  }
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
      drd_bind eb = drd_sampler_bind_e(ctx, E, esize, vb * de, (ve - vb) * de, &e_off);
      drd_pc_sas pc = {
          .rows = rn, .v_count = (uint32_t)(ve - vb), .split_len = p.split_len, .split_first = sp,
          .n_splits = p.splits, .e_off = e_off, .d_off = d_skip / 4, .s_off = s_skip / 4, .t_off = t_skip / 4,
          .direct = direct, .inv_tau = absorb ? 1.0f / tau : 0.0f, .gamma = gamma,
      };
      if (c->kind == DRD_SAS_SUBGROUP) {
        /* its vector loads and stores where every offset allows them (they do wherever de % 4
         * == 0 and the buffers are 16-byte aligned), and only its own output path */
        const bool aligned = de % 4 == 0 && pc.e_off % 4 == 0 && pc.d_off % 4 == 0 && pc.s_off % 4 == 0;
        uint32_t spec[8] = {sas_wg(ctx, c), 0, c->tr, c->vt, de, et, direct, aligned};
        DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){"sas_absorb_sg", 3, sizeof(drd_pc_sas), 8, spec}, &main_p));
      }
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

drd_status drd_op_sas_absorb_config(drd_seq *s, const drd_sas_config *cfg, const drd_buffer *E, drd_dtype etype,
                                    const drd_buffer *D, const drd_buffer *scratch, uint32_t row_first,
                                    uint32_t rows, uint32_t V, uint32_t de, float gamma, float tau) {
  return sas_run(s, cfg, E, etype, D, scratch, row_first, rows, V, de, true, gamma, tau, NULL);
}

drd_status drd_op_round_config(drd_seq *s, const drd_sas_config *cfg, const drd_buffer *E, drd_dtype etype,
                               const drd_buffer *x, const drd_buffer *scratch, uint32_t row_first, uint32_t rows,
                               uint32_t V, uint32_t de, const drd_buffer *tokens) {
  if (!tokens) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "round: no tokens buffer");
  return sas_run(s, cfg, E, etype, x, scratch, row_first, rows, V, de, false, 0.0f, 1.0f, tokens);
}

