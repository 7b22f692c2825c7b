/* Sampler kernels besides SAS and rounding (runtime/ops_sas.c): the solver update, the
 * prompt clamp, Philox noise and the time features (solver_update_f32.comp,
 * prompt_clamp_f32.comp, philox_*.comp, time_features_f32.comp), in row chunks so that no
 * binding exceeds the device's range, with the push constants of shaders/pc_sampler.h. */
#include "ops_sampler.h"

#include <math.h>
#include <string.h>

#include "pc_sampler.h"

static uint64_t min64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static uint64_t cdiv(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

/* Workgroup size of the element-wise sampler kernels. */
static uint32_t elt_wg(const drd_context *ctx) {
  return ctx->caps.max_workgroup_invocations < 256 ? ctx->caps.max_workgroup_invocations : 256;
}

drd_status drd_sampler_check_etype(drd_dtype etype, const char *op) {
  if (etype != DRD_DTYPE_F32 && etype != DRD_DTYPE_F16)
    return drd_fail(DRD_ERROR_UNSUPPORTED, "%s: token embeddings of type %d are not f32 or f16", op, (int)etype);
  return DRD_OK;
}

drd_bind drd_sampler_bind_e(const drd_context *ctx, const drd_buffer *E, uint64_t esize, uint64_t first, uint64_t count,
                            uint32_t *e_off) {
  uint32_t skip;
  drd_bind b = drd_bind_span(ctx, E, first * esize, count * esize, false, &skip);
  b.range = (b.range + 3) & ~(VkDeviceSize)3;
  *e_off = skip / (uint32_t)esize;
  return b;
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
  DRD_CHECK(drd_sampler_check_etype(etype, "prompt_clamp"));
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
      drd_bind binds[3] = {drd_sampler_bind_e(ctx, E, esize, v0 * de, vn * de, &e_off), ib, xb};
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
 * at item boundaries. The seed comes from seed_buf where given (the noise), else from seed. */
static drd_status record_philox(drd_seq *s, const char *shader, const char *op, const drd_buffer *out,
                                uint32_t words, uint64_t first, uint64_t n, uint64_t seed, const drd_buffer *seed_buf) {
  drd_context *ctx = drd_seq_context(s);
  drd_status status = DRD_OK;
  const uint32_t wg = elt_wg(ctx), n_binds = seed_buf ? 2 : 1;
  uint32_t spec[1] = {wg};
  drd_pipeline *p;
  DRD_CHECK(drd_pipeline_get(ctx, &(drd_pipeline_desc){shader, n_binds, sizeof(drd_pc_philox), 1, spec}, &p));
  const uint64_t chunk = drd_chunk_elems(ctx, 4, words) / words, item = 4ull * words;
  for (uint64_t i0 = 0; i0 < n; i0 += chunk) {
    const uint64_t len = min64(chunk, n - i0), f0 = first + i0;
    drd_bind b[2] = {drd_out_range(out, i0 * item, len * item), seed_buf ? drd_in_range(seed_buf, 0, 8) : (drd_bind){0}};
    drd_pc_philox pc = {.n = (uint32_t)len, .x_off = 0, .f0_lo = (uint32_t)f0, .f0_hi = (uint32_t)(f0 >> 32),
                        .seed_lo = (uint32_t)seed, .seed_hi = (uint32_t)(seed >> 32)};
    uint32_t gx, gy;
    drd_grid_1d(ctx, cdiv(len, wg), &gx, &gy);
    DRD_CHECK(drd_seq_dispatch(s, p, b, n_binds, &pc, gx, gy, 1, op));
  }
cleanup:
  return status;
}

drd_status drd_op_philox_noise_range(drd_seq *s, const drd_buffer *x, uint64_t first, uint64_t n,
                                     const drd_buffer *seed) {
  if (n == 0) return DRD_OK;
  if (x->size < n * 4) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "philox_noise: x smaller than %llu floats", (unsigned long long)n);
  if (!seed || seed->size < 8) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "philox_noise: the seed buffer needs 8 bytes");
  return record_philox(s, "philox_noise_f32", "philox_noise", x, 1, first, n, 0, seed);
}

drd_status drd_op_philox_noise(drd_seq *s, const drd_buffer *x, uint64_t n, const drd_buffer *seed) {
  return drd_op_philox_noise_range(s, x, 0, n, seed);
}

drd_status drd_op_philox_words(drd_seq *s, const drd_buffer *out, uint64_t j0, uint64_t n, uint64_t seed) {
  if (n == 0) return DRD_OK;
  if (out->size < n * 16) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "philox_words: output smaller than %llu blocks", (unsigned long long)n);
  return record_philox(s, "philox_words_u32", "philox_words", out, 4, j0, n, seed, NULL);
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
