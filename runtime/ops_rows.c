/* Row kernels (shaders/rmsnorm_{f32,f16}.comp, shaders/softmax_f32.comp): one workgroup per row
 * (RMSNorm: one subgroup per row where the device allows, shaders/rmsnorm_sg_*.comp),
 * chunked over rows so that every binding fits the device's range. Both share the chunking
 * loop below; RMSNorm binds its weight vector as an extra middle binding. */
#include "ops.h"
#include "push_constants.h"

/* The row kernels' largest workgroup: 256 invocations or the most the device allows. */
static uint32_t row_wg_max(const drd_context *ctx) {
  uint32_t max = ctx->caps.max_workgroup_invocations < 256 ? ctx->caps.max_workgroup_invocations : 256;
  return ctx->caps.max_workgroup_size[0] < max ? ctx->caps.max_workgroup_size[0] : max;
}

/* Workgroup size for a row of `cols`: enough invocations to cover short rows once, at most 256
 * (longer rows are strided), a power of two for the reduction tree. */
uint32_t drd_row_wg(const drd_context *ctx, uint32_t cols) {
  const uint32_t max = row_wg_max(ctx);
  uint32_t wg = 32;
  while (wg < cols && wg * 2 <= max) wg *= 2;
  while (wg > max) wg /= 2; /* Vulkan guarantees 128, so this stays >= 32 in practice */
  return wg;
}

/* Workgroup size of the subgroup-per-row kernels (rmsnorm_sg.glsl): row_wg_max in whole
 * subgroups; 0 where the device lacks subgroup arithmetic in compute shaders or rows are not
 * whole vec4s. */
uint32_t drd_rows_sg_wg(const drd_context *ctx, uint32_t cols) {
  const drd_device_caps *c = &ctx->caps;
  const uint32_t ops = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT;
  if (cols % 4 || !c->subgroup_size || (c->subgroup_ops & ops) != ops || !(c->subgroup_stages & VK_SHADER_STAGE_COMPUTE_BIT))
    return 0;
  return row_wg_max(ctx) / c->subgroup_size * c->subgroup_size;
}

/* Below 2048 rows one subgroup per row leaves a GPU too few subgroups in flight: H200 at 1024
 * rows x 1024 (base-220m's 1K step), 24 calls 0.180 ms against 0.164 on a workgroup per row; at
 * 16K rows 0.955 against 1.179 (twenty-fourth session). A CPU device takes it at any length:
 * lavapipe runs the workgroup's reduction tree (ten barriers, each a switch between the
 * workgroup's subgroups, which it runs as coroutines) slowly, and the shipped model's 1K step
 * spent 140 ms in its 26 norms on Mesa 22.3 against 8 ms on subgroups (2026-12-05). */
bool drd_rmsnorm_on_subgroups(const drd_context *ctx, uint32_t rows, uint32_t cols) {
  return (rows >= 2048 || ctx->caps.type == DRD_DEVICE_CPU) && drd_rows_sg_wg(ctx, cols);
}

/* x, out: [rows, cols] f32; w: [cols] f32 or NULL (softmax); out16: [rows, cols] f16 or NULL
 * (the rmsnorm_f16 kernels' extra output; with it, out may be NULL: rmsnorm_f16only).
 * sg_shader: the subgroup-per-row variant, taken for 2048 rows or more where drd_rows_sg_wg allows
 * and the chunk's offsets are 16-byte aligned (always, for rows of whole vec4s and
 * power-of-two alignments); NULL: none (softmax). */
static drd_status record_rows(drd_seq *s, const char *op, const char *shader, const char *sg_shader,
                              const drd_buffer *x, const drd_buffer *w, const drd_buffer *out,
                              const drd_buffer *out16, uint32_t rows, uint32_t cols, float eps) {
  drd_context *ctx = drd_seq_context(s);
  drd_status status = DRD_OK;
  if (rows == 0 || cols == 0) return DRD_OK;
  uint64_t row_bytes = (uint64_t)cols * 4, range = drd_max_bind_range(ctx), align = ctx->alloc.alignment;
  if (!out && !out16) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "%s: no output", op);
  if (x->size < rows * row_bytes || (out && out->size < rows * row_bytes) || (w && w->size < row_bytes) ||
      (out16 && out16->size < rows * row_bytes / 2))
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "%s: buffers smaller than [%u, %u]", op, rows, cols);
  /* a binding starts up to align - 4 bytes before its row: one row plus that slack must fit */
  if (row_bytes + align > range)
    return drd_fail(DRD_ERROR_UNSUPPORTED, "%s: a row of %u floats exceeds the %llu-byte binding range", op, cols,
                    (unsigned long long)range);
  uint32_t wg = drd_row_wg(ctx, cols), n_binds = out16 ? 4 : w ? 3 : 2;
  drd_pipeline *p, *psg = NULL;
  DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){shader, n_binds, sizeof(drd_pc_rows), 1, &wg}, &p));
  uint32_t sg_wg = sg_shader && drd_rmsnorm_on_subgroups(ctx, rows, cols) ? drd_rows_sg_wg(ctx, cols) : 0;
  if (sg_wg) DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){sg_shader, n_binds, sizeof(drd_pc_rows), 1, &sg_wg}, &psg));
  for (uint64_t r0 = 0, rc; r0 < rows; r0 += rc) {
    uint64_t off = r0 * row_bytes;
    rc = (range - off % align) / row_bytes;
    if (rc > rows - r0) rc = rows - r0;
    uint32_t xs, os = 0, hs = 0;
    drd_bind in = drd_bind_span(ctx, x, off, rc * row_bytes, false, &xs);
    drd_bind o = out ? drd_bind_span(ctx, out, off, rc * row_bytes, true, &os) : (drd_bind){0}, h = o;
    /* the f16 range is half the f32 one, so it fits wherever that does; rounded up to whole
     * words, since the shader declares 16-bit elements of a 4-byte-granular binding */
    if (out16) {
      h = drd_bind_span(ctx, out16, off / 2, (rc * row_bytes / 2 + 3) / 4 * 4, true, &hs);
      if (h.offset + h.range > out16->size) h.range = out16->size - h.offset;
    }
    if (!out) o = h; /* binding 2, which rmsnorm_f16only does not declare, repeats out16's */
    drd_bind binds[4] = {in, w ? drd_in_range(w, 0, row_bytes) : o, o, h};
    drd_pc_rows pc = {.rows = (uint32_t)rc, .cols = cols, .x_off = xs / 4, .o_off = os / 4, .eps = eps,
                      .h_off = hs / 2};
    const bool sg = psg && pc.x_off % 4 == 0 && pc.o_off % 4 == 0 && pc.h_off % 4 == 0;
    const uint32_t per_group = sg ? sg_wg / ctx->caps.subgroup_size : 1; /* rows per workgroup */
    uint32_t gx, gy;
    drd_grid_1d(ctx, (rc + per_group - 1) / per_group, &gx, &gy);
    DRD_CHECK(drd_seq_dispatch(s, sg ? psg : p, binds, n_binds, &pc, gx, gy, 1, op));
  }
cleanup:
  return status;
}

drd_status drd_op_rmsnorm(drd_seq *s, const drd_buffer *x, const drd_buffer *w, const drd_buffer *out,
                          uint32_t rows, uint32_t cols, float eps) {
  if (!w) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "rmsnorm: no weight vector");
  return record_rows(s, "rmsnorm", "rmsnorm_f32", "rmsnorm_sg_f32", x, w, out, NULL, rows, cols, eps);
}

drd_status drd_op_rmsnorm_f16(drd_seq *s, const drd_buffer *x, const drd_buffer *w, const drd_buffer *out,
                              const drd_buffer *out16, uint32_t rows, uint32_t cols, float eps) {
  if (!w || !out16) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "rmsnorm_f16: no weight vector or f16 output");
  if (!drd_seq_context(s)->caps.storage_16bit)
    return drd_fail(DRD_ERROR_UNSUPPORTED, "rmsnorm_f16: the device has no 16-bit storage");
  return record_rows(s, "rmsnorm", out ? "rmsnorm_f16" : "rmsnorm_f16only", out ? "rmsnorm_sg_f16" : "rmsnorm_sg_f16only",
                     x, w, out, out16, rows, cols, eps);
}

/* one subgroup per row (rmsnorm_sg.glsl) in one dispatch: every tensor in one binding */
bool drd_rmsnorm_router_fits(const drd_context *ctx, uint32_t rows, uint32_t cols, uint32_t E, drd_dtype rtype) {
  const uint64_t cap = drd_max_bind_range(ctx) - ctx->alloc.alignment, wg = drd_rows_sg_wg(ctx, cols);
  const uint64_t rs = rtype == DRD_DTYPE_F16 ? 2 : 4, per_group = wg ? wg / ctx->caps.subgroup_size : 1;
  uint32_t gx, gy;
  drd_grid_1d(ctx, (rows + per_group - 1) / per_group, &gx, &gy);
  return wg && ctx->caps.storage_16bit && E >= 1 && E <= 8 && (rtype == DRD_DTYPE_F32 || rtype == DRD_DTYPE_F16) &&
         rows && (uint64_t)rows * cols * 4 <= cap && (uint64_t)E * cols * rs <= cap && (uint64_t)rows * E * 4 <= cap &&
         8 * 2 * wg * 4 <= ctx->caps.max_shared_memory && gy <= ctx->caps.max_workgroup_count[1];
}

drd_status drd_op_rmsnorm_router(drd_seq *s, const drd_buffer *x, const drd_buffer *w, const drd_buffer *out16,
                                 const drd_buffer *router, drd_dtype rtype, uint32_t E, const drd_buffer *logits,
                                 uint32_t rows, uint32_t cols, float eps) {
  drd_context *ctx = drd_seq_context(s);
  drd_status status = DRD_OK;
  const uint64_t rs = rtype == DRD_DTYPE_F16 ? 2 : 4;
  if (!x || !w || !out16 || !router || !logits || x->size < (uint64_t)rows * cols * 4 || w->size < (uint64_t)cols * 4 ||
      out16->size < (uint64_t)rows * cols * 2 || router->size < (uint64_t)E * cols * rs ||
      logits->size < (uint64_t)rows * E * 4)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "rmsnorm_router: missing buffers or smaller than %u rows of %u, E=%u",
                    rows, cols, E);
  if (!drd_rmsnorm_router_fits(ctx, rows, cols, E, rtype))
    return drd_fail(DRD_ERROR_UNSUPPORTED, "rmsnorm_router: %u rows of %u with %u experts (type %d) do not fit the "
                    "subgroup kernel in one dispatch on this device", rows, cols, E, (int)rtype);
  uint32_t wg = drd_rows_sg_wg(ctx, cols), gx, gy;
  drd_pipeline *p;
  DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){rtype == DRD_DTYPE_F16 ? "rmsnorm_sg_router_f16"
                                                                               : "rmsnorm_sg_router_f32",
                                                        6, sizeof(drd_pc_rows), 1, &wg}, &p));
  const uint64_t n = (uint64_t)rows * cols;
  /* binding 2 (the f32 rows, which this variant does not declare) repeats out16's */
  const drd_bind h = drd_out_range(out16, 0, (n * 2 + 3) / 4 * 4 <= out16->size ? (n * 2 + 3) / 4 * 4 : n * 2);
  const drd_bind binds[6] = {drd_in_range(x, 0, n * 4), drd_in_range(w, 0, (uint64_t)cols * 4), h, h,
                             drd_in_range(router, 0, ((uint64_t)E * cols * rs + 3) / 4 * 4),
                             drd_out_range(logits, 0, (uint64_t)rows * E * 4)};
  const drd_pc_rows pc = {.rows = rows, .cols = cols, .eps = eps, .experts = E};
  const uint32_t per_group = wg / ctx->caps.subgroup_size;
  drd_grid_1d(ctx, (rows + per_group - 1) / per_group, &gx, &gy);
  DRD_CHECK(drd_seq_dispatch(s, p, binds, 6, &pc, gx, gy, 1, "rmsnorm"));
cleanup:
  return status;
}

drd_status drd_op_softmax_rows(drd_seq *s, const drd_buffer *x, const drd_buffer *out, uint32_t rows,
                               uint32_t cols) {
  return record_rows(s, "softmax", "softmax_f32", NULL, x, NULL, out, NULL, rows, cols, 0.0f);
}
