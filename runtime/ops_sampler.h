/* Sampler kernels (SPEC 4.1, 8, 9): everything a generation does on the GPU besides the
 * denoiser: SAS soft absorption and rounding (attention over the vocabulary, streamed in
 * tiles; never rows x V in memory), the DPM-Solver++ update, the prompt clamp, the Philox
 * noise and the sinusoidal time features. Each wrapper records into a drd_seq; every scalar
 * (gamma, tau, solver coefficients, t, seed) is a push constant of the recorded dispatch,
 * so an engine that records a whole generation once records each step's values (and
 * whether SAS runs at that step at all) in that step's dispatches. */
#ifndef DRD_OPS_SAMPLER_H
#define DRD_OPS_SAMPLER_H

#include "ops.h"

/* ------------------------------------------------------------------ SAS and rounding */
/* The kernel families: scalar f32 (shaders/sas_absorb_f32, round_argmax_f32 over
 * sas_tile.glsl), cooperative matrices (sas_absorb_cm, round_argmax_cm over sas_cm.glsl:
 * logits and weighted sum on f16 * f16 + f32 matrices, the query rows and E rounded to f16;
 * only where caps.coopmat_m != 0) and, for absorption on CPU devices, f32 without shared
 * memory (sas_absorb_sg). All share the merge kernels and the scratch layout. */
typedef enum drd_sas_kind {
  DRD_SAS_SCALAR = 0,
  DRD_SAS_COOPMAT = 1,
  DRD_SAS_SUBGROUP = 2, /* absorption on CPU devices only (sas_absorb_sg); rounding takes the scalar kernel */
} drd_sas_kind;

/* Tile shape of the vocabulary-streaming kernels. Scalar: a workgroup of rg * ct invocations
 * handles rg * tr query rows; each invocation tr rows x (vt / ct) vocabulary entries of every
 * tile of vt entries, and tr rows x ceil(de / ct) columns of the weighted sum. Coopmat: rg
 * subgroups of caps.coopmat_m query rows each, tiles of vt entries (ct and tr unused, 0).
 * Subgroup: caps.subgroup_size invocations of tr rows each, vt entries per step (rg = 1, ct 0). The
 * vocabulary is cut into `splits` ranges handled by different workgroups and merged exactly
 * afterwards (needs the scratch buffer); splits = 0 lets the op choose. */
typedef struct drd_sas_config {
  uint32_t ct, rg, tr, vt;
  uint32_t splits;
  drd_sas_kind kind;
} drd_sas_config;

/* The configuration the ops use for `rows` active rows (splits left 0: chosen per call):
 * cooperative matrices where the device has them and de suits them, else drd_sas_pick_f32's. */
drd_sas_config drd_sas_pick(const drd_context *ctx, uint32_t rows, uint32_t de);
/* The f32 configuration: the subgroup kernel on CPU devices where it fits, else scalar. */
drd_sas_config drd_sas_pick_f32(const drd_context *ctx, uint32_t rows, uint32_t de);
/* The best configuration of one kind; false when that kind cannot run here (for tests and
 * benchmarks that compare the kernels). */
bool drd_sas_pick_kind(const drd_context *ctx, drd_sas_kind kind, uint32_t rows, uint32_t de, drd_sas_config *out);
/* Whether cfg is well formed and fits the device's shared memory and workgroup limits. */
bool drd_sas_config_ok(const drd_context *ctx, const drd_sas_config *cfg, uint32_t de);

/* Bytes of scratch drd_op_sas_absorb_config and drd_op_round_config want, with cfg NULL,
 * for rows - row_first active rows (0: they need none for this shape on this device).
 * E: f32 or f16. Splitting the vocabulary gives small row counts enough workgroups; it is
 * required when E is larger than one binding may cover (drd_max_bind_range) and, on
 * llvmpipe, when one workgroup would loop past that driver's limit on loop iterations:
 * without a scratch the ops fall back to the fewest splits and fail
 * (DRD_ERROR_INVALID_ARGUMENT) where that is more than one. Allocate it once for the largest
 * row count and pass it to every call. */
uint64_t drd_sas_scratch_bytes(const drd_context *ctx, drd_dtype etype, uint32_t row_first, uint32_t rows,
                               uint32_t V, uint32_t de);
/* The same for a given configuration (NULL: drd_sas_pick's). */
uint64_t drd_sas_scratch_bytes_config(const drd_context *ctx, const drd_sas_config *cfg, drd_dtype etype,
                                      uint32_t row_first, uint32_t rows, uint32_t V, uint32_t de);

/* Soft absorption, SPEC 8: for row_first <= r < rows,
 *   D_r <- (1 - gamma) D_r + gamma * sum_v softmax_v(D_r . E_v / tau) E_v.
 * E: [V, de] f32 or f16 (raw IEEE half bits) as etype says; D: [rows, de] f32, updated in
 * place (rows before row_first, the prompt, are not touched); scratch: as
 * drd_sas_scratch_bytes says, or NULL. Scalar: f32 logits (fma, ascending column), online
 * softmax with a running f32 max and sum, f32 weighted sum. Coopmat: D and E rounded to f16
 * (|D| must stay below 65504), f32 logits and weighted sum, the probabilities rounded to f16
 * (their sum is that of the rounded values); the blend uses the f32 D. Split states merged by
 * log-sum-exp. tau > 0. de <= 1024. cfg: a configuration, or NULL for drd_sas_pick's. */
drd_status drd_op_sas_absorb_config(drd_seq *s, const drd_sas_config *cfg, const drd_buffer *E, drd_dtype etype,
                                    const drd_buffer *D, const drd_buffer *scratch, uint32_t row_first,
                                    uint32_t rows, uint32_t V, uint32_t de, float gamma, float tau);

/* Rounding, SPEC 8: tokens[r] = argmax_v x_r . E_v for row_first <= r < rows, ties to the
 * lowest id (candidates compare as (f32 logit, -id); a row whose logits are all NaN gets 0).
 * Coopmat: the logits of x and E rounded to f16 (identical embedding rows still tie exactly).
 * E as above; x: [rows, de] f32; tokens: [rows] int32 (entries before row_first untouched);
 * scratch as above or NULL; cfg as above. */
drd_status drd_op_round_config(drd_seq *s, const drd_sas_config *cfg, const drd_buffer *E, drd_dtype etype,
                               const drd_buffer *x, const drd_buffer *scratch, uint32_t row_first, uint32_t rows,
                               uint32_t V, uint32_t de, const drd_buffer *tokens);

/* ------------------------------------------------------------------ solver update */
/* x <- cx x + cd0 D0 + cd1 D1 + cd2 D2 with the terms k < order (1..3), f32:
 * r = cx * x, then r = fma(cd_k, D_k, r) for k = 0, 1, 2 (host/solver.h's cx_f32, cd_f32).
 * x, D0, D1, D2: [n] f32; D1 / D2 may be NULL when order < 2 / < 3; none may alias x.
 * The engine rotates its history by passing D_{i-1}, D_{i-2}, D_{i-3} per recorded step. */
drd_status drd_op_solver_update(drd_seq *s, const drd_buffer *x, const drd_buffer *D0, const drd_buffer *D1,
                                const drd_buffer *D2, uint64_t n, float cx, float cd0, float cd1, float cd2,
                                uint32_t order);

/* ------------------------------------------------------------------ prompt clamp */
/* Rows n < P of x <- E[prompt_ids[n]]. E: [V, de] f32 or f16; prompt_ids: [P] int32 (ids outside
 * [0, V) leave their row unchanged: the host validates prompts); x: [>= P, de] f32. */
drd_status drd_op_prompt_clamp(drd_seq *s, const drd_buffer *E, drd_dtype etype, const drd_buffer *prompt_ids,
                               const drd_buffer *x, uint32_t P, uint32_t V, uint32_t de);

/* ------------------------------------------------------------------ Philox noise */
/* x[i] = noise element i of SPEC 9, i < n: x: [n] f32 (the flat [N, de] state); the seed is
 * read when the sequence runs from seed: two uint32 words, low first (a host-visible buffer
 * the host writes before each run, so one recording serves every seed). Philox words equal
 * host/philox.c's bit for bit; Box-Muller in f32 (no f64 in shaders). */
drd_status drd_op_philox_noise(drd_seq *s, const drd_buffer *x, uint64_t n, const drd_buffer *seed);
/* x[i] = noise element first + i (drd_philox_fill_normal's numbering), i < n. */
drd_status drd_op_philox_noise_range(drd_seq *s, const drd_buffer *x, uint64_t first, uint64_t n,
                                     const drd_buffer *seed);

/* out[i] = the four Philox4x32-10 words of block j0 + i for seed (counter (j lo, j hi, 0, 0)),
 * i < n: out: [n, 4] uint32. The integer stream the noise is made of, for tests. */
drd_status drd_op_philox_words(drd_seq *s, const drd_buffer *out, uint64_t j0, uint64_t n, uint64_t seed);

/* ------------------------------------------------------------------ time features */
/* s_out[0..dt) = the sinusoidal features of SPEC 4.1 for t = u * Ts (pass t computed in
 * double: the kernel forms the angle in double-float). dt even, >= 2. */
drd_status drd_op_time_features(drd_seq *s, const drd_buffer *s_out, uint32_t dt, double t);
/* The same written at element offset `first` of s_out ([first + dt] f32), e.g. one row of a
 * [S, dt] table of every step's features. */
drd_status drd_op_time_features_at(drd_seq *s, const drd_buffer *s_out, uint64_t first, uint32_t dt, double t);

/* Shared by ops_sampler.c and ops_sas.c: UNSUPPORTED unless etype is f32 or f16; and the
 * binding of E's elements [first, first + count) (esize bytes each), *e_off receiving the
 * element offset of `first` inside it. f16 ranges are rounded up to whole 32-bit words,
 * which the shaders read (the slack stays inside the buffer's aligned allocation). */
drd_status drd_sampler_check_etype(drd_dtype etype, const char *op);
drd_bind drd_sampler_bind_e(const drd_context *ctx, const drd_buffer *E, uint64_t esize, uint64_t first,
                            uint64_t count, uint32_t *e_off);

#endif
