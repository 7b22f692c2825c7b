/* Row kernels (shaders/rmsnorm_f32.comp, shaders/softmax_f32.comp): one workgroup per row,
 * chunked over rows so that every binding fits the device's range. Both share the chunking
 * loop below; RMSNorm binds its weight vector as an extra middle binding. */
#include "ops.h"
#include "push_constants.h"

/* Workgroup size for a row of `cols`: enough invocations to cover short rows once, at most 256
 * (longer rows are strided), a power of two for the reduction tree. */
uint32_t drd_row_wg(const drd_context *ctx, uint32_t cols) {
  uint32_t max = ctx->caps.max_workgroup_invocations < 256 ? ctx->caps.max_workgroup_invocations : 256;
  if (ctx->caps.max_workgroup_size[0] < max) max = ctx->caps.max_workgroup_size[0];
  uint32_t wg = 32;
  while (wg < cols && wg * 2 <= max) wg *= 2;
  while (wg > max) wg /= 2; /* Vulkan guarantees 128, so this stays >= 32 in practice */
  return wg;
}

/* x, out: [rows, cols] f32; w: [cols] f32 or NULL (softmax). */
static drd_status record_rows(drd_seq *s, const char *op, const char *shader, const drd_buffer *x,
                              const drd_buffer *w, const drd_buffer *out, uint32_t rows, uint32_t cols, float eps) {
  drd_context *ctx = drd_seq_context(s);
  drd_status status = DRD_OK;
  if (rows == 0 || cols == 0) return DRD_OK;
  uint64_t row_bytes = (uint64_t)cols * 4, range = drd_max_bind_range(ctx), align = ctx->alloc.alignment;
  if (x->size < rows * row_bytes || out->size < rows * row_bytes || (w && w->size < row_bytes))
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "%s: buffers smaller than [%u, %u] f32", op, rows, cols);
  /* a binding starts up to align - 4 bytes before its row: one row plus that slack must fit */
  if (row_bytes + align > range)
    return drd_fail(DRD_ERROR_UNSUPPORTED, "%s: a row of %u floats exceeds the %llu-byte binding range", op, cols,
                    (unsigned long long)range);
  uint32_t wg = drd_row_wg(ctx, cols), n_binds = w ? 3 : 2;
  drd_pipeline *p;
  DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){shader, n_binds, sizeof(drd_pc_rows), 1, &wg}, &p));
  for (uint64_t r0 = 0, rc; r0 < rows; r0 += rc) {
    uint64_t off = r0 * row_bytes;
    rc = (range - off % align) / row_bytes;
    if (rc > rows - r0) rc = rows - r0;
    uint32_t xs, os;
    drd_bind in = drd_bind_span(ctx, x, off, rc * row_bytes, false, &xs);
    drd_bind o = drd_bind_span(ctx, out, off, rc * row_bytes, true, &os);
    drd_bind binds[3] = {in, w ? drd_in_range(w, 0, row_bytes) : o, o};
    drd_pc_rows pc = {.rows = (uint32_t)rc, .cols = cols, .x_off = xs / 4, .o_off = os / 4, .eps = eps};
    uint32_t gx, gy;
    drd_grid_1d(ctx, rc, &gx, &gy);
    DRD_CHECK(drd_seq_dispatch(s, p, binds, n_binds, &pc, gx, gy, 1, op));
  }
cleanup:
  return status;
}

drd_status drd_op_rmsnorm(drd_seq *s, const drd_buffer *x, const drd_buffer *w, const drd_buffer *out,
                          uint32_t rows, uint32_t cols, float eps) {
  if (!w) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "rmsnorm: no weight vector");
  return record_rows(s, "rmsnorm", "rmsnorm_f32", x, w, out, rows, cols, eps);
}

drd_status drd_op_softmax_rows(drd_seq *s, const drd_buffer *x, const drd_buffer *out, uint32_t rows,
                               uint32_t cols) {
  return record_rows(s, "softmax", "softmax_f32", x, NULL, out, rows, cols, 0.0f);
}
