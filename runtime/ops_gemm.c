/* GEMM C = A W^T + bias (shaders/gemm_*.comp): the kernel and its tile configuration from the
 * device's type and limits, the W variant from its features, and chunking of tensors larger
 * than one binding. */
#include "ops.h"
#include "ops_attention.h"
#include "push_constants.h"

#include <string.h>

static uint32_t tiled_wg(const drd_gemm_config *c) { return (c->bm / c->tm) * (c->bn / c->tn); }
/* As and Ws: bk rows of bm (bn) floats, each padded by 4 */
static uint32_t tiled_shared(const drd_gemm_config *c) { return c->bk * (c->bm + 4 + c->bn + 4) * 4; }

bool drd_cm_tile_ok(const drd_context *ctx, uint32_t bm, uint32_t bn, uint32_t bk, uint32_t wm, uint32_t wn,
                    uint32_t n_b, uint32_t n_acc, uint64_t extra_shared) {
  const drd_device_caps *c = &ctx->caps;
  uint32_t cm = c->coopmat_m, cn = c->coopmat_n, ck = c->coopmat_k;
  /* (cm_gemm.glsl's epilogue reads its scratch 4 columns at a time: cn % 4) */
  if (!cm || !wm || !wn || !bm || !bn || !bk || bm % (wm * cm) || bn % (wn * cn) || bk % ck || bk % 8 || cn % 4)
    return false;
  /* matrices per subgroup along m and n: cm_gemm.glsl writes at most 4 x 4 out; more than 16
   * accumulators (both B operands together) would not stay in registers */
  uint32_t tmw = bm / (wm * cm), tnw = bn / (wn * cn);
  uint64_t wg = (uint64_t)wm * wn * c->subgroup_size;
  return tmw <= 4 && tnw <= 4 && tmw * tnw * n_b <= 16 && wg <= c->max_workgroup_invocations &&
         wg <= c->max_workgroup_size[0] &&
         drd_cm_tile_shared(ctx, bm, bn, bk, wm, wn, n_b, n_acc) + extra_shared <= c->max_shared_memory;
}

uint64_t drd_cm_tile_shared(const drd_context *ctx, uint32_t bm, uint32_t bn, uint32_t bk, uint32_t wm, uint32_t wn,
                            uint32_t n_b, uint32_t n_acc) {
  const drd_device_caps *c = &ctx->caps;
  /* cm_gemm.glsl: f16 slices of A and of each B with rows padded by 8 halves; the epilogue's
   * n_acc f32 accumulators per subgroup (two at least where a subgroup has two columns of
   * matrices: cm_out takes them in pairs) reuse A's slice, which grows where they need more */
  if (n_acc < 2 && c->coopmat_n && wn && bn / (wn * c->coopmat_n) > 1) n_acc = 2;
  const uint64_t a = 2ull * (bk + 8) * bm, scratch = 4ull * n_acc * wm * wn * c->coopmat_m * c->coopmat_n;
  return (a > scratch ? a : scratch) + 2ull * (bk + 8) * n_b * bn;
}

uint32_t drd_cm_spec(const drd_context *ctx, uint32_t bm, uint32_t bn, uint32_t bk, uint32_t wm, uint32_t wn,
                     bool vec4, uint32_t spec[DRD_CM_SPEC]) {
  const drd_device_caps *c = &ctx->caps;
  uint32_t v[DRD_CM_SPEC] = {wm * wn * c->subgroup_size, bm, bn, bk, wm, wn, c->coopmat_m, c->coopmat_n, c->coopmat_k,
                             vec4};
  memcpy(spec, v, sizeof v);
  return DRD_CM_SPEC;
}

bool drd_gemm_config_ok(const drd_context *ctx, const drd_gemm_config *c) {
  const drd_device_caps *caps = &ctx->caps;
  if (c->kind == DRD_GEMM_COOPMAT)
    return caps->storage_16bit && drd_cm_tile_ok(ctx, c->bm, c->bn, c->bk, c->tm, c->tn, 1, 1, 0);
  if (!c->tm || !c->tn || c->tm * c->tn > 256) return false; /* beyond any register budget */
  if (c->kind == DRD_GEMM_SUBGROUP) {
    /* The workgroup must be exactly one subgroup. CPU implementations run a fixed subgroup
     * size; GPUs may pick another size per pipeline, and they are better served by the tiled
     * kernel anyway. */
    uint32_t sg = drd_cpu_sg_wg(ctx);
    return sg && c->tm * c->tn * sg <= 256;
  }
  /* micro-tiles are read from shared memory as vec4s */
  if (c->kind != DRD_GEMM_TILED || !c->bm || !c->bn || !c->bk || c->bm % c->tm || c->bn % c->tn || c->tm % 4 ||
      c->tn % 4)
    return false;
  uint32_t wg = tiled_wg(c);
  /* each invocation loads the same number of 4-row groups of A and of W per K step */
  return wg <= caps->max_workgroup_invocations && wg <= caps->max_workgroup_size[0] &&
         (c->bm * c->bk) % (4 * wg) == 0 && (c->bn * c->bk) % (4 * wg) == 0 &&
         tiled_shared(c) <= caps->max_shared_memory;
}

/* The cooperative-matrix kernel for f16 weights (gemm_cm.comp): the largest tile of which the
 * problem has enough to fill a large GPU, NULL when the device has no usable cooperative
 * matrices or none of the tiles fits. H200 (driver 580, 16 x 16 x 16), GPU TFLOP/s with f16 A
 * (what the engine feeds it) at 16384x1024x1024 / 32768x2304x1024 / 4096^3
 * (docs/performance.md): 256x128x32 in 4 x 2 subgroups 188 / 192 / 243; 128x128x64 in 2 x 4
 * 178 / 188 / 234; 128x128x32 in 2 x 4 127 / 143 / 150, in 2 x 2 184 / - / 245, but where
 * 128 x 128 is chosen (4096 rows of base-220m: 256 tiles) 2 x 2 made the step 7 % slower: half
 * the subgroups per SM (2026-12-02). 128 x 256 in 2 x 4 has been 1 - 4 % ahead of 256 x 128
 * since (GPU ms, no bias, twelfth session: 0.158 / 0.629 / 0.600 against 0.161 / 0.655 / 0.607
 * at 16384x1024x1024 / 32768x2304x1024 / 32768x1024x2304); K slices of 48 instead of 32 were
 * slower in both (0.168 - 0.170, 239 registers instead of 214). 128 x 128 runs in 4 x 2
 * subgroups, not 2 x 4: the same matrices per subgroup, but 64 columns each, whole heads of
 * base-220m, so the q and k GEMMs rotate in their epilogue at 4096 tokens too (no RoPE pass,
 * f16 K / V): step 13.04 -> 12.81 - 12.84 ms (seventeenth session). The small tiles are for
 * small problems and for devices with small matrices (lavapipe's 8 x 8: 4 x 4 per subgroup);
 * 64 x 64 takes 64-deep slices: 1024^3 in 17 us against 20 with 32-deep ones (twenty-first
 * session). 128 x 128 is taken from 128 tiles on (one per SM of an H200), not 256: at 2048 x
 * 1024 x 1024 it took 23.8 us against 30.7 for 64 x 64 and rotates q and k in its epilogue,
 * and the 2K step fell from 8.20 to 7.85 ms, 3K from 10.59 to 10.25. 64 x 128 in 2 x 2 (whole
 * heads at 1K rows, 18.1 us with RoPE against 17.5 + a 5 us pass) made the 1K step slower in
 * the engine, 5.08 -> 5.26 ms (twenty-third session). */
static const drd_gemm_config *pick_coopmat(const drd_context *ctx, uint32_t M, uint32_t N) {
  /* each tile with the fewest tiles of the problem that make it worth taking (0: any) */
  static const struct {
    drd_gemm_config cfg;
    uint32_t min_tiles;
  } cm[] = {{{DRD_GEMM_COOPMAT, 128, 256, 32, 2, 4}, 256},
            {{DRD_GEMM_COOPMAT, 128, 128, 64, 4, 2}, 128},
            {{DRD_GEMM_COOPMAT, 64, 64, 64, 2, 2}, 0},
            {{DRD_GEMM_COOPMAT, 32, 32, 16, 2, 2}, 0}};
  for (size_t i = 0; i < sizeof cm / sizeof *cm; i++) {
    const drd_gemm_config *c = &cm[i].cfg;
    uint64_t tiles = (uint64_t)((M + c->bm - 1) / c->bm) * ((N + c->bn - 1) / c->bn);
    /* a tile wider than the problem multiplies its padding for nothing (out_proj's N = 128 at
     * 64K tokens: 128 x 256 tiles, half of each wasted; on 128 x 128 the 64K step went from
     * 171.07 - 171.21 to 170.87 - 170.91 ms, twenty-fourth session) */
    if (tiles >= cm[i].min_tiles && (!cm[i].min_tiles || c->bn <= N) && drd_gemm_config_ok(ctx, c)) return c;
  }
  return NULL;
}

drd_gemm_config drd_gemm_pick_for(const drd_context *ctx, uint32_t M, uint32_t N, uint32_t K, drd_dtype wtype) {
  /* tensor-core products pay off from a few rows on; a single row (the time embedding) is
   * a matrix-vector product, faster on the scalar kernel */
  if (wtype == DRD_DTYPE_F16 && M >= 16) {
    const drd_gemm_config *cm = pick_coopmat(ctx, M, N);
    if (cm) return *cm;
  }
  return drd_gemm_pick(ctx, M, N, K);
}

drd_gemm_config drd_gemm_pick(const drd_context *ctx, uint32_t M, uint32_t N, uint32_t K) {
  (void)K;
  /* CPU devices: 2 x 8 per invocation (16 rows x 64 columns per subgroup of 8): ~11-13 GFLOP/s
   * on lavapipe with 2 cores at 1024^3 and 4096^3 where the tiled kernel gets ~6; larger
   * micro-tiles were no faster within the noise and take seconds longer to compile. */
  drd_gemm_config sg = {DRD_GEMM_SUBGROUP, 0, 0, 0, 2, 8};
  if (drd_gemm_config_ok(ctx, &sg)) return sg;
  /* GPUs, largest first. 128 x 128 with 8 x 8 micro-tiles reuses each shared-memory value 8
   * times; on an H100 at 4096^3 bk 32 gave 35.7 TFLOP/s, bk 16 31.6 and bk 8 33.0 (f32 FMA, no
   * tensor cores). bk 32 needs 33 KiB of shared memory, bk 16 16.5 KiB, so devices limited to
   * 16 KiB get bk 8. Problems too small to give 256 such tiles use 64 x 64 tiles so that more
   * workgroups run at once (H100 at 1024^3: 25.3 TFLOP/s against 17.0 with 128 x 128; at
   * 2048^3 the two are 32.8 and 33.8) and fewer rows are wasted at the edges. */
  static const drd_gemm_config big[] = {
      {DRD_GEMM_TILED, 128, 128, 32, 8, 8}, {DRD_GEMM_TILED, 128, 128, 16, 8, 8}, {DRD_GEMM_TILED, 128, 128, 8, 8, 8}};
  static const drd_gemm_config small[] = {
      {DRD_GEMM_TILED, 64, 64, 16, 8, 8}, {DRD_GEMM_TILED, 64, 64, 8, 8, 8}, {DRD_GEMM_TILED, 32, 32, 8, 4, 4}};
  uint64_t big_tiles = (uint64_t)((M + 127) / 128) * ((N + 127) / 128);
  if (big_tiles >= 256)
    for (size_t i = 0; i < sizeof big / sizeof *big; i++)
      if (drd_gemm_config_ok(ctx, &big[i])) return big[i];
  for (size_t i = 0; i < sizeof small / sizeof *small; i++)
    if (drd_gemm_config_ok(ctx, &small[i])) return small[i];
  return small[2]; /* 64 invocations, 2.3 KiB: every Vulkan device takes it */
}

static uint64_t min64(uint64_t a, uint64_t b) { return a < b ? a : b; }

bool drd_gemm_rope_fuses(const drd_context *ctx, const drd_gemm_config *cfg, uint32_t dh) {
  /* each subgroup's columns whole heads, a head's halves whole matrices, and the tile with
   * the second accumulator scratch (cm_gemm.glsl's CS2: one matrix per subgroup) fitting */
  const drd_device_caps *c = &ctx->caps;
  return cfg->kind == DRD_GEMM_COOPMAT && dh >= 2 && dh % 2 == 0 && c->coopmat_n && cfg->tn &&
         (cfg->bn / cfg->tn) % dh == 0 && (dh / 2) % c->coopmat_n == 0 &&
         drd_cm_tile_ok(ctx, cfg->bm, cfg->bn, cfg->bk, cfg->tm, cfg->tn, 1, 2, 0);
}

drd_status drd_op_gemm(drd_seq *s, const drd_buffer *A, const drd_buffer *W, drd_dtype wtype,
                       const drd_buffer *bias, const drd_buffer *C, uint32_t M, uint32_t N, uint32_t K) {
  return drd_op_gemm_config(s, NULL, A, W, wtype, bias, C, M, N, K);
}

drd_status drd_op_gemm_config(drd_seq *s, const drd_gemm_config *cfg_in, const drd_buffer *A, const drd_buffer *W,
                              drd_dtype wtype, const drd_buffer *bias, const drd_buffer *C, uint32_t M,
                              uint32_t N, uint32_t K) {
  drd_gemm_args g = {.A = A, .atype = DRD_DTYPE_F32, .W = W, .wtype = wtype, .bias = bias, .C = C, .M = M, .N = N, .K = K};
  return drd_op_gemm_ex(s, cfg_in, &g);
}

drd_status drd_op_gemm_ex(drd_seq *s, const drd_gemm_config *cfg_in, const drd_gemm_args *g) {
  drd_context *ctx = drd_seq_context(s);
  drd_status status = DRD_OK;
  const drd_buffer *A = g->A, *W = g->W, *bias = g->bias, *C = g->C;
  const drd_dtype wtype = g->wtype;
  const uint32_t M = g->M, N = g->N, K = g->K;
  if (wtype != DRD_DTYPE_F32 && wtype != DRD_DTYPE_F16)
    return drd_fail(DRD_ERROR_UNSUPPORTED, "gemm: weight type %d is not f32 or f16", (int)wtype);
  if (g->atype != DRD_DTYPE_F32 && g->atype != DRD_DTYPE_F16)
    return drd_fail(DRD_ERROR_UNSUPPORTED, "gemm: A type %d is not f32 or f16", (int)g->atype);
  if (g->ctype != DRD_DTYPE_F32 && g->ctype != DRD_DTYPE_F16)
    return drd_fail(DRD_ERROR_UNSUPPORTED, "gemm: C type %d is not f32 or f16", (int)g->ctype);
  if (M == 0 || N == 0) return DRD_OK;
  if (K == 0) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "gemm: K = 0");
  uint64_t ws = wtype == DRD_DTYPE_F32 ? 4 : 2;      /* bytes per weight */
  uint64_t es = g->atype == DRD_DTYPE_F32 ? 4 : 2;   /* bytes per element of A */
  const bool c16 = g->ctype == DRD_DTYPE_F16;
  const uint32_t cs_el = c16 ? 2 : 4;                /* bytes per element of C */
  if (A->size < (uint64_t)M * K * es || W->size < (uint64_t)N * K * ws || C->size < (uint64_t)M * N * cs_el ||
      (bias && bias->size < (uint64_t)N * 4))
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "gemm: buffers smaller than M=%u N=%u K=%u need", M, N, K);
  drd_gemm_config cfg = cfg_in ? *cfg_in : drd_gemm_pick_for(ctx, M, N, K, wtype);
  bool cm_only = wtype != DRD_DTYPE_F16 || es == 2; /* what only one of the kernels takes */
  if (!drd_gemm_config_ok(ctx, &cfg) || (cfg.kind == DRD_GEMM_COOPMAT && wtype != DRD_DTYPE_F16) ||
      (cfg.kind != DRD_GEMM_COOPMAT && es == 2))
    return drd_fail(DRD_ERROR_UNSUPPORTED, "gemm: kernel %d tile %ux%ux%u / %ux%u does not fit this device%s",
                    (int)cfg.kind, cfg.bm, cfg.bn, cfg.bk, cfg.tm, cfg.tn,
                    cm_only ? " (f16 A needs the cooperative-matrix kernel, which needs f16 weights)" : "");
  bool cm = cfg.kind == DRD_GEMM_COOPMAT;
  if (c16 && (!cm || g->accumulate))
    return drd_fail(DRD_ERROR_UNSUPPORTED, "gemm: f16 C needs the cooperative-matrix kernel and no accumulate");
  if (g->c_scale != 0.0f && !c16) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "gemm: a C scale needs f16 C");
  const drd_rope_table *rope = g->rope;
  if (rope && (rope->dh < 2 || rope->dh % 2 || N % rope->dh || g->accumulate || M > rope->positions))
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "gemm: RoPE needs N a multiple of an even head dim, M <= the "
                    "table's positions and no accumulate (N=%u, dh=%u, M=%u)", N, rope ? rope->dh : 0, M);
  bool rope_fused = rope && drd_gemm_rope_fuses(ctx, &cfg, rope->dh);
  bool sg = cfg.kind == DRD_GEMM_SUBGROUP;
  uint32_t bm = cfg.bm, bn = cfg.bn, bk = cfg.bk; /* the tile and K step, in elements */
  if (sg) {
    bm = ctx->caps.subgroup_size * cfg.tm;
    bn = ctx->caps.subgroup_size * cfg.tn;
    bk = 4;
  }

  /* f16 weights: float16_t loads where 16-bit storage exists, else 32-bit words unpacked in
   * the shader (core GLSL), for devices or runs (DRDIFF_DISABLE_F16) without it; the CPU
   * devices' kernel always takes words (gemm_sg_f16pack.comp says why) */
  static const char *shaders[2][3] = {{"gemm_f32", "gemm_f16", "gemm_f16pack"},
                                      {"gemm_sg_f32", "gemm_sg_f16pack", "gemm_sg_f16pack"}};
  const char *shader = cm ? "gemm_cm" : shaders[sg][wtype == DRD_DTYPE_F32 ? 0 : ctx->caps.storage_16bit ? 1 : 2];

  /* Chunk sizes. A binding starts up to align - 4 bytes before its data (drd_bind_span), so
   * `cap` bytes of data always fit. A chunk of rows [m0, m0 + mc) and K range [k0, k0 + kc)
   * spans (mc - 1) * K + kc elements of A; likewise for W; C's spans (mc - 1) * N + nc. */
  uint64_t range = drd_max_bind_range(ctx), align = ctx->alloc.alignment;
  if (range < 2 * align + 16)
    return drd_fail(DRD_ERROR_UNSUPPORTED, "gemm: binding range %llu too small", (unsigned long long)range);
  uint64_t cap = range - align;
  uint64_t cap4 = cap / 4, capw = (cap - 4) / ws; /* f16 packed words may round up by 2 bytes */
  uint64_t kc = min64(K, min64(cap4, capw));
  if (kc < K && kc >= bk) kc = kc / bk * bk; /* split-K: whole K steps per chunk, so offsets stay 4-aligned */
  uint64_t mc = min64(M, (cap4 - kc) / K + 1);
  uint64_t nc = min64(N, min64((capw - kc) / K + 1, cap4));
  mc = min64(mc, (cap4 - nc) / N + 1);
  /* whole tiles per chunk, and no more tiles than one dispatch may have */
  if (mc < M && mc >= bm) mc = mc / bm * bm;
  if (nc < N && nc >= bn) nc = nc / bn * bn;
  mc = min64(mc, (uint64_t)ctx->caps.max_workgroup_count[1] * bm);
  nc = min64(nc, (uint64_t)ctx->caps.max_workgroup_count[0] * bn);
  /* the epilogue rotates whole sums of whole heads: no split K, N chunks of whole heads */
  if (rope_fused && (kc < K || (nc < N && nc % rope->dh))) rope_fused = false;
  /* f16 C holds final sums only: no partial sums of a split K, no RoPE pass over it after */
  if (c16 && (kc < K || (rope && !rope_fused)))
    return drd_fail(DRD_ERROR_UNSUPPORTED, "gemm: f16 C needs K in one binding (%llu of %u) and RoPE in the epilogue",
                    (unsigned long long)kc, K);

  for (uint64_t k0 = 0; k0 < K; k0 += kc) {
    uint64_t kn = min64(kc, K - k0);
    for (uint64_t m0 = 0; m0 < M; m0 += mc) {
      uint64_t mn = min64(mc, M - m0);
      for (uint64_t n0 = 0; n0 < N; n0 += nc) {
        uint64_t nn = min64(nc, N - n0);
        uint32_t as, wsk, cs, bs = 0, ts;
        drd_bind binds[5];
        binds[0] = drd_bind_span(ctx, A, (m0 * K + k0) * es, ((mn - 1) * K + kn) * es, false, &as);
        binds[1] = drd_bind_span(ctx, W, (n0 * K + k0) * ws, ((nn - 1) * K + kn) * ws, false, &wsk);
        if (ws == 2) binds[1].range = (binds[1].range + 3) & ~(VkDeviceSize)3; /* whole words */
        /* without bias the shader never reads binding 2: A's range stands in for it */
        binds[2] = bias ? drd_bind_span(ctx, bias, n0 * 4, nn * 4, false, &bs) : binds[0];
        binds[3] = drd_bind_span(ctx, C, (m0 * N + n0) * cs_el, ((mn - 1) * N + nn) * cs_el, true, &cs);
        drd_pc_gemm pc = {
            .M = (uint32_t)mn, .N = (uint32_t)nn, .K = (uint32_t)kn,
            .lda = K, .ldw = K, .ldc = N,
            .a_off = as / (uint32_t)es, .w_off = wsk / (uint32_t)ws, .c_off = cs / cs_el, .bias_off = bs / 4,
            .flags = (bias && k0 == 0 ? DRD_GEMM_BIAS : 0) | (k0 > 0 || g->accumulate ? DRD_GEMM_ACCUMULATE : 0),
            .c_scale = g->c_scale != 0.0f ? g->c_scale : 1.0f,
        };
        /* gemm_cm's RoPE table rows for the chunk's positions (a token's row, dh floats, is
         * never larger than its N >= dh outputs, so it fits where C's chunk does); without
         * RoPE it never reads binding 4: A's range stands in */
        if (rope_fused) {
          binds[4] = drd_bind_span(ctx, &rope->buf, m0 * rope->dh * 4, mn * rope->dh * 4, false, &ts);
          pc.rope_off = ts / 4;
        } else {
          binds[4] = binds[0];
        }
        drd_pipeline *p;
        if (cm) {
          /* 8-element (16-byte) loads need K % 8 and 16-byte-aligned offsets */
          bool vec = K % 8 == 0 && pc.a_off % (es == 2 ? 8 : 4) == 0 && pc.w_off % 8 == 0;
          uint32_t spec[DRD_CM_SPEC + 3];
          uint32_t n = drd_cm_spec(ctx, bm, bn, bk, cfg.tm, cfg.tn, vec, spec);
          spec[n++] = es == 2;                           /* A16 */
          spec[n++] = rope_fused ? rope->dh / 2 : 0;     /* ROPE_HALF */
          spec[n++] = c16;                               /* C16 */
          DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){shader, 5, sizeof(drd_pc_gemm), n, spec}, &p));
        } else if (sg) {
          /* 4-element loads need aligned rows: K and both offsets multiples of 4 */
          uint32_t vec4 = K % 4 == 0 && pc.a_off % 4 == 0 && pc.w_off % 4 == 0;
          uint32_t spec[4] = {ctx->caps.subgroup_size, cfg.tm, cfg.tn, vec4};
          DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){shader, 4, sizeof(drd_pc_gemm), 4, spec}, &p));
        } else {
          uint32_t spec[6] = {tiled_wg(&cfg), cfg.bm, cfg.bn, cfg.bk, cfg.tm, cfg.tn};
          DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){shader, 4, sizeof(drd_pc_gemm), 6, spec}, &p));
        }
        uint32_t gx = (uint32_t)((nn + bn - 1) / bn), gy = (uint32_t)((mn + bm - 1) / bm);
        DRD_CHECK(drd_seq_dispatch(s, p, binds, cm ? 5 : 4, &pc, gx, gy, 1, "gemm"));
      }
    }
  }
  if (rope && !rope_fused) DRD_CHECK(drd_op_rope(s, rope, C, C, M, N / rope->dh));
cleanup:
  return status;
}
