/* Element-wise ops (shaders/eltwise_f32.comp), the f16 copy and the Q8_0 and bf16 widenings,
 * chunked to the device's binding range. */
#include "ops.h"
#include "push_constants.h"

drd_status drd_op_eltwise(drd_seq *s, drd_eltwise_op op, const drd_buffer *a, const drd_buffer *b,
                          const drd_buffer *out, uint64_t n, float alpha) {
  drd_context *ctx = drd_seq_context(s);
  drd_status status = DRD_OK;
  if (op > DRD_ELT_SWIGLU) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "eltwise: unknown op %d", (int)op);
  bool binary = op == DRD_ELT_ADD || op == DRD_ELT_MUL || op == DRD_ELT_SWIGLU;
  if (binary && !b) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "eltwise: op %d needs b", (int)op);
  if (!binary) b = a;
  if (n == 0) return DRD_OK;
  if (a->size < n * 4 || b->size < n * 4 || out->size < n * 4)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "eltwise: buffers smaller than %llu floats", (unsigned long long)n);
  uint32_t wg = ctx->caps.max_workgroup_invocations < 256 ? ctx->caps.max_workgroup_invocations : 256;
  uint32_t spec[2] = {wg, (uint32_t)op};
  drd_pipeline *p;
  DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){"eltwise_f32", 3, sizeof(drd_pc_eltwise), 2, spec}, &p));
  uint64_t chunk = drd_chunk_elems(ctx, 4, 1);
  for (uint64_t first = 0; first < n; first += chunk) {
    uint64_t len = n - first < chunk ? n - first : chunk;
    drd_bind binds[3] = {drd_in_range(a, first * 4, len * 4), drd_in_range(b, first * 4, len * 4),
                         drd_out_range(out, first * 4, len * 4)};
    drd_pc_eltwise pc = {.n = (uint32_t)len, .alpha = alpha};
    uint32_t gx, gy;
    drd_grid_1d(ctx, (len + wg - 1) / wg, &gx, &gy);
    static const char *names[] = {"add", "mul", "scale", "silu", "swiglu"};
    DRD_CHECK(drd_seq_dispatch(s, p, binds, 3, &pc, gx, gy, 1, names[op]));
  }
cleanup:
  return status;
}

/* per_invocation elements per invocation from in (in_size bytes each) to out (out_size bytes),
 * each side 4-byte or 2-byte: chunks of a multiple of alignment / 2 elements, so that a 2-byte
 * side's chunks start aligned too, and 2-byte ranges in whole words. */
static drd_status convert(drd_seq *s, const char *shader, const char *name, const drd_buffer *in, uint32_t in_size,
                          const drd_buffer *out, uint32_t out_size, uint64_t n, uint32_t per_invocation) {
  drd_context *ctx = drd_seq_context(s);
  drd_status status = DRD_OK;
  if (in->size < (n * in_size + 3) / 4 * 4 || out->size < n * out_size)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "%s: buffers smaller than %llu elements", name, (unsigned long long)n);
  uint32_t wg = ctx->caps.max_workgroup_invocations < 256 ? ctx->caps.max_workgroup_invocations : 256;
  drd_pipeline *p;
  DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){shader, 2, sizeof(drd_pc_eltwise), 1, &wg}, &p));
  uint64_t half_align = ctx->alloc.alignment / 2 ? ctx->alloc.alignment / 2 : 1;
  uint64_t chunk = drd_chunk_elems(ctx, 4, half_align);
  for (uint64_t first = 0; first < n; first += chunk) {
    uint64_t len = n - first < chunk ? n - first : chunk;
    drd_bind binds[2] = {drd_in_range(in, first * in_size, (len * in_size + 3) / 4 * 4),
                         drd_out_range(out, first * out_size, (len * out_size + 3) / 4 * 4)};
    drd_pc_eltwise pc = {.n = (uint32_t)len};
    uint32_t gx, gy;
    drd_grid_1d(ctx, ((len + per_invocation - 1) / per_invocation + wg - 1) / wg, &gx, &gy);
    DRD_CHECK(drd_seq_dispatch(s, p, binds, 2, &pc, gx, gy, 1, name));
  }
cleanup:
  return status;
}

drd_status drd_op_to_f16(drd_seq *s, const drd_buffer *x, const drd_buffer *out, uint64_t n) {
  if (!drd_seq_context(s)->caps.storage_16bit)
    return drd_fail(DRD_ERROR_UNSUPPORTED, "to_f16: the device has no 16-bit storage");
  return n ? convert(s, "convert_f32_f16", "to_f16", x, 4, out, 2, n, 1) : DRD_OK;
}

/* the widenings' shader for an output type: f32 (exact) or f16 (nearest even) */
static drd_status widen_shader(drd_context *ctx, const char *name, drd_dtype out_type, const char *f32_shader,
                               const char *f16_shader, const char **shader, uint32_t *out_size) {
  if (out_type == DRD_DTYPE_F32) return *shader = f32_shader, *out_size = 4, DRD_OK;
  if (out_type != DRD_DTYPE_F16) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "%s: output type %d", name, (int)out_type);
  if (!ctx->caps.storage_16bit) return drd_fail(DRD_ERROR_UNSUPPORTED, "%s: the device has no 16-bit storage", name);
  return *shader = f16_shader, *out_size = 2, DRD_OK;
}

drd_status drd_op_dequant_q8_0(drd_seq *s, const drd_buffer *q, const drd_buffer *out, drd_dtype out_type, uint64_t n) {
  drd_context *ctx = drd_seq_context(s);
  drd_status status = DRD_OK;
  const char *shader = NULL;
  uint32_t es = 4;
  DRD_CHECK(widen_shader(ctx, "dequant_q8_0", out_type, "dequant_q8_0_f32", "dequant_q8_0_f16", &shader, &es));
  if (n % 32) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "dequant_q8_0: %llu elements, not whole blocks of 32",
                              (unsigned long long)n);
  if (n == 0) return DRD_OK;
  const uint64_t q_bytes = n / 32 * 34;
  if (q->size < (q_bytes + 3) / 4 * 4 || out->size < n * es)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "dequant_q8_0: buffers smaller than %llu elements",
                    (unsigned long long)n);
  uint32_t wg = ctx->caps.max_workgroup_invocations < 256 ? ctx->caps.max_workgroup_invocations : 256;
  drd_pipeline *p;
  DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){shader, 2, sizeof(drd_pc_dequant), 1, &wg}, &p));
  /* chunks of whole blocks whose output starts aligned; the input binding starts at the
   * aligned byte at or before the chunk's first block, which pc.in_byte then skips */
  const uint64_t align = ctx->alloc.alignment ? ctx->alloc.alignment : 4;
  const uint64_t chunk = drd_chunk_elems(ctx, es, 32);
  if (chunk / 32 * 34 + align + 4 > drd_max_bind_range(ctx)) /* only for ranges of a few hundred bytes */
    return drd_fail(DRD_ERROR_UNSUPPORTED, "dequant_q8_0: a binding range of %llu bytes is too small",
                    (unsigned long long)drd_max_bind_range(ctx));
  for (uint64_t first = 0; first < n; first += chunk) {
    uint64_t len = n - first < chunk ? n - first : chunk;
    uint64_t start = first / 32 * 34, in_off = start / align * align;
    uint64_t in_end = (start + len / 32 * 34 + 3) / 4 * 4;
    if (in_end > q->size) in_end = q->size;
    drd_bind binds[2] = {drd_in_range(q, in_off, in_end - in_off),
                         drd_out_range(out, first * es, (len * es + 3) / 4 * 4)};
    drd_pc_dequant pc = {.n = (uint32_t)len, .in_byte = (uint32_t)(start - in_off)};
    uint32_t gx, gy;
    drd_grid_1d(ctx, (len / 4 + wg - 1) / wg, &gx, &gy); /* four elements per invocation */
    DRD_CHECK(drd_seq_dispatch(s, p, binds, 2, &pc, gx, gy, 1, "dequant_q8_0"));
  }
cleanup:
  return status;
}

drd_status drd_op_widen_bf16(drd_seq *s, const drd_buffer *b, const drd_buffer *out, drd_dtype out_type, uint64_t n) {
  drd_status status = DRD_OK;
  const char *shader = NULL;
  uint32_t es = 4;
  DRD_CHECK(widen_shader(drd_seq_context(s), "widen_bf16", out_type, "widen_bf16_f32", "widen_bf16_f16", &shader, &es));
  return n ? convert(s, shader, "widen_bf16", b, 2, out, es, n, 4) : DRD_OK;
cleanup:
  return status;
}
