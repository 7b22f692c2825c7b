/* Row-wise softmax (shaders/softmax_f32.comp): one workgroup per row, chunked over rows so
 * that every binding fits the device's range. */
#include "ops.h"
#include "push_constants.h"

drd_status drd_op_softmax_rows(drd_seq *s, const drd_buffer *x, const drd_buffer *out, uint32_t rows,
                               uint32_t cols) {
  drd_context *ctx = drd_seq_context(s);
  drd_status status = DRD_OK;
  if (rows == 0 || cols == 0) return DRD_OK;
  uint64_t row_bytes = (uint64_t)cols * 4, range = drd_max_bind_range(ctx), align = ctx->alloc.alignment;
  if (x->size < rows * row_bytes || out->size < rows * row_bytes)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "softmax: buffers smaller than [%u, %u] f32", rows, cols);
  if (row_bytes + align > range)
    return drd_fail(DRD_ERROR_UNSUPPORTED, "softmax: a row of %u floats exceeds the %llu-byte binding range", cols,
                    (unsigned long long)range);
  uint32_t wg = drd_row_wg(ctx, cols);
  drd_pipeline *p;
  DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){"softmax_f32", 2, sizeof(drd_pc_rows), 1, &wg}, &p));
  for (uint64_t r0 = 0, rc; r0 < rows; r0 += rc) {
    uint64_t off = r0 * row_bytes;
    rc = (range - off % align) / row_bytes;
    if (rc > rows - r0) rc = rows - r0;
    uint32_t xs, os;
    drd_bind binds[2] = {drd_bind_span(ctx, x, off, rc * row_bytes, false, &xs),
                         drd_bind_span(ctx, out, off, rc * row_bytes, true, &os)};
    drd_pc_rows pc = {.rows = (uint32_t)rc, .cols = cols, .x_off = xs / 4, .o_off = os / 4};
    uint32_t gx, gy;
    drd_grid_1d(ctx, rc, &gx, &gy);
    DRD_CHECK(drd_seq_dispatch(s, p, binds, 2, &pc, gx, gy, 1, "softmax"));
  }
cleanup:
  return status;
}
