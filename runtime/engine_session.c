/* A generation shape on the device: activations, the HSA plan, the solver plan, and one
 * recorded command buffer per denoising step (plus the rounding), recorded once and
 * replayed for every generation of the same shape. The seed, the prompt and the tokens
 * live in host-visible memory, so a generation costs the host no recording and no
 * transfer of its own: memcpy, the steps' submissions, the rounding, memcpy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "engine.h"
#include "hsa_plan.h"

struct drd_gpu_session {
  drd_gpu_model *gm;
  drd_context *ctx;
  drd_gpu_shape shape;
  uint32_t N;
  drd_hsa_plan plan;
  drd_attention_plan attn;
  drd_rope_table rope;          /* {cos, sin} for positions 0..N-1 */
  drd_solver_plan solver;
  drd_des_scratch des;
  drd_buffer x;                 /* [N, de] f32 the diffusion state */
  drd_buffer ring[3];           /* [N, de] f32 D_{i-1}, D_{i-2}, D_{i-3} by step index mod 3 */
  drd_buffer tokens;            /* [N] i32 (rows >= P written by the rounding), host-visible */
  drd_buffer prompt;            /* [max(P, 1)] i32, host-visible */
  drd_buffer seed;              /* [2] u32 the noise's seed (low word first), host-visible */
  drd_buffer h, a, q, k, v, o;    /* [N, d] f32 residual stream, normed, q/k/v, attention (o: not
                                 * allocated with attn16; q, k, v f16 with qkv16; a: not where
                                 * needs_f32_rows says no) */
  drd_buffer a16;               /* [N, d] f16 copy of a or o for the cooperative-matrix GEMMs */
  drd_buffer wide[7];           /* Q8_0 / bf16 layers: the scratch a layer's matrices are widened into
                                 * (f16 for the f16 engine, else f32): gate, up, down, q, k, v, o */
  bool f16_model;               /* f16 arithmetic allowed: the layers' products are f16 (gm->f16_products;
                                 * else the f32 engine) */
  bool f16_acts;                /* whether a16 is kept (the device runs cooperative matrices) */
  bool attn16;                  /* the attention writes its output straight into a16 (no o) */
  bool qkv16;                   /* ... and reads q (scaled), k and v as f16, written so by their GEMMs */
  bool router_in_norm;          /* the FFN's norm writes a16 and the DES router's logits, not a */
  bool combine_norm;            /* the DES combine writes the next norm's a16 (no norm pass after it) */
  drd_buffer feats;             /* [dt] f32 time features */
  drd_buffer te1, te2, bias;    /* [d] f32 time MLP hidden / output; in_proj bias + te */
  drd_buffer sas_scratch;       /* SAS / rounding split scratch, when the shape needs one */
  drd_sas_config sas_cfg;       /* f32 models: the scalar SAS / rounding kernels (f32 arithmetic) */
  const drd_sas_config *sas;    /* &sas_cfg, or NULL: the ops' choice (f16 models) */
  bool has_sas_scratch;
  drd_seq **parts;              /* recorded submissions: each step is one part, or several
                                 * when layers_per_submit splits it */
  uint32_t n_parts, cap_parts;
  uint32_t *step_end;           /* [steps] index past the last part of each step */
  drd_seq *final;               /* rounding */
  uint64_t bytes;               /* device bytes this session allocated */
  double step_s;                /* seconds per step of the last group waited for (0: none yet), to size groups */
  VkQueryPool stamps;           /* where the device has timestamps: [0] step 1 begins, [i] step i ends */
  uint64_t *ticks;              /* [steps + 1] read back from stamps */
};

/* Rows n < P of buf (the state or an estimate) become their prompt tokens' embeddings. */
static drd_status clamp(drd_gpu_session *s, drd_seq *q, const drd_buffer *buf) {
  if (!s->shape.P) return DRD_OK;
  const drd_gpu_model *gm = s->gm;
  return drd_op_prompt_clamp(q, &gm->tok_embd.buf, gm->tok_embd.type, &s->prompt, buf, s->shape.P, gm->hp.V,
                             gm->hp.de);
}

/* Starts a new recorded part (a separate submission). */
static drd_status part_begin(drd_gpu_session *s, drd_seq **q) {
  if (s->n_parts == s->cap_parts) {
    uint32_t cap = s->cap_parts ? 2 * s->cap_parts : 32;
    drd_seq **np = realloc(s->parts, cap * sizeof *np);
    if (!np) return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    s->parts = np;
    s->cap_parts = cap;
  }
  drd_status status = drd_seq_begin(s->ctx, &s->parts[s->n_parts]);
  if (status == DRD_OK) *q = s->parts[s->n_parts++];
  return status;
}

/* The configuration of one of the session's GEMMs. The f32 engine (an f32 model, or a q8_0 or
 * bf16 one on a device without cooperative matrices: token for token the CPU engine's) never
 * takes the cooperative-matrix kernel, which rounds A to f16, even for a tensor stored f16 (a
 * q8_0 file's rows too short to quantize, a file mixing types): on Mesa 26's lavapipe the
 * in_proj GEMM of a q8_0 file did, and moved a token of 198 far from the CPU engine's
 * (test_gpu_parity). */
static drd_gemm_config session_gemm(const drd_gpu_session *s, uint32_t M, uint32_t N, uint32_t K, drd_dtype wtype) {
  return s->f16_model ? drd_gemm_pick_for(s->ctx, M, N, K, wtype) : drd_gemm_pick(s->ctx, M, N, K);
}

/* Layer weights kept Q8_0 or bf16 on the device (engine_weights.c), widened before each use */
static bool is_packed(drd_dtype t) { return t == DRD_DTYPE_Q8_0 || t == DRD_DTYPE_BF16; }

/* the type a layer matrix stored as `stored` on the device is multiplied as: packed ones are
 * widened to the engine's type */
static drd_dtype product_type(const drd_gpu_session *s, drd_dtype stored) {
  return is_packed(stored) ? (s->f16_model ? DRD_DTYPE_F16 : DRD_DTYPE_F32) : stored;
}

/* A layer's matrices as its products read them: as stored, or the session's scratch where they
 * are packed (widen_layer fills it) */
typedef struct layer_mats {
  drd_gpu_tensor wq, wk, wv, wo;
  drd_des_weights des;
} layer_mats;

static layer_mats layer_view(const drd_gpu_session *s, const drd_gpu_layer *L) {
  layer_mats m = {L->wq, L->wk, L->wv, L->wo, L->des};
  if (!is_packed(L->gate.type)) return m;
  const drd_dtype t = product_type(s, L->gate.type);
  drd_gpu_tensor *attn[4] = {&m.wq, &m.wk, &m.wv, &m.wo};
  for (int i = 0; i < 4; i++) *attn[i] = (drd_gpu_tensor){s->wide[3 + i], t};
  m.des.gate = &s->wide[0], m.des.up = &s->wide[1], m.des.down = &s->wide[2];
  m.des.expert_type = t;
  return m;
}

/* Widens a layer's packed matrices into the scratch, all seven at the layer's start: one barrier
 * before the layer's first product, none between products */
static drd_status widen_layer(drd_gpu_session *s, drd_seq *q, const drd_gpu_layer *L) {
  if (!is_packed(L->gate.type)) return DRD_OK;
  const drd_hparams *hp = &s->gm->hp;
  const uint64_t experts = (uint64_t)hp->E * hp->dff * hp->d, attn = (uint64_t)hp->d * hp->d;
  const drd_gpu_tensor *src[7] = {&L->gate, &L->up, &L->down, &L->wq, &L->wk, &L->wv, &L->wo};
  const drd_dtype t = product_type(s, L->gate.type);
  for (int i = 0; i < 7; i++) {
    const uint64_t n = i < 3 ? experts : attn;
    drd_status st = src[i]->type == DRD_DTYPE_Q8_0 ? drd_op_dequant_q8_0(q, &src[i]->buf, &s->wide[i], t, n)
                                                   : drd_op_widen_bf16(q, &src[i]->buf, &s->wide[i], t, n);
    if (st != DRD_OK) return st;
  }
  return DRD_OK;
}

/* C (+)= A W^T + bias for the layers' N-row products. With the session's f16 copy of A in
 * a16 (filled by the caller), the cooperative-matrix GEMM reads that: on an H200, 16-byte
 * loads of f16 A ran the model's shapes at 188-243 TFLOP/s against 79-92 when the kernel
 * converts f32 A itself (docs/performance.md). accumulate: C += (a residual connection).
 * c_scale: f16 C times this (drd_gemm_args). */
static drd_status layer_gemm(drd_gpu_session *s, drd_seq *q, const drd_buffer *A, const drd_gpu_tensor *W,
                             const drd_buffer *bias, const drd_buffer *C, drd_dtype ctype, uint32_t N, uint32_t K,
                             bool accumulate, const drd_rope_table *rope, float c_scale) {
  drd_gemm_config cfg = session_gemm(s, s->N, N, K, W->type);
  bool a16 = s->f16_acts && cfg.kind == DRD_GEMM_COOPMAT;
  drd_gemm_args g = {.A = a16 ? &s->a16 : A, .atype = a16 ? DRD_DTYPE_F16 : DRD_DTYPE_F32, .W = &W->buf,
                     .wtype = W->type, .bias = bias, .C = C, .M = s->N, .N = N, .K = K, .accumulate = accumulate,
                     .rope = rope, .ctype = ctype, .c_scale = c_scale};
  return drd_op_gemm_ex(q, &cfg, &g);
}

/* whether the q and k projections' GEMM applies RoPE in its epilogue (drd_gemm_rope_fuses) */
static bool rope_in_gemm(const drd_gpu_session *s) {
  const drd_hparams *hp = &s->gm->hp;
  drd_gemm_config cfg = session_gemm(s, s->N, hp->d, hp->d, product_type(s, s->gm->layers[0].wq.type));
  return drd_gemm_rope_fuses(s->ctx, &cfg, hp->d / hp->H);
}

/* a16 = f16(src) when the session keeps the copy */
static drd_status to_f16(drd_gpu_session *s, drd_seq *q, const drd_buffer *src) {
  return s->f16_acts ? drd_op_to_f16(q, src, &s->a16, (uint64_t)s->N * s->gm->hp.d) : DRD_OK;
}

/* whether layer_gemm of an [N, n] output from K columns reads a16 rather than a */
static bool gemm_reads_a16(const drd_gpu_session *s, uint32_t n, uint32_t K, drd_dtype wtype) {
  return s->f16_acts && session_gemm(s, s->N, n, K, wtype).kind == DRD_GEMM_COOPMAT;
}

/* whether L's q, k and v projections all read a16, so that the norm before them need not write a */
static bool qkv_reads_a16(const drd_gpu_session *s, const drd_gpu_layer *L) {
  const uint32_t d = s->gm->hp.d;
  return gemm_reads_a16(s, d, d, product_type(s, L->wq.type)) &&
         gemm_reads_a16(s, d, d, product_type(s, L->wk.type)) && gemm_reads_a16(s, d, d, product_type(s, L->wv.type));
}

/* Whether any norm writes the f32 rows a (or any op reads them): not where every GEMM after a
 * norm reads a16 and the FFN's norm hands the router its logits (H200 from 2K tokens: 64 MiB at
 * 16K, 256 MiB at 64K). */
static bool needs_f32_rows(const drd_gpu_session *s) {
  const drd_gpu_model *gm = s->gm;
  if (!s->router_in_norm || !gemm_reads_a16(s, gm->hp.de, gm->hp.d, gm->out_proj_w.type)) return true;
  for (uint32_t l = 0; l < gm->hp.L; l++)
    if (!qkv_reads_a16(s, &gm->layers[l])) return true;
  return false;
}

/* a = RMSNorm(h) * w, and a16 = f16(a) in the same pass when the session keeps the copy; only
 * a16 where f16_only (every reader takes a16: H200, 16K tokens, 64 MiB less to write per norm) */
static drd_status norm(drd_gpu_session *s, drd_seq *q, const drd_gpu_tensor *w, bool f16_only) {
  const drd_hparams *hp = &s->gm->hp;
  return s->f16_acts ? drd_op_rmsnorm_f16(q, &s->h, &w->buf, f16_only ? NULL : &s->a, &s->a16, s->N, hp->d,
                                          hp->norm_eps)
                     : drd_op_rmsnorm(q, &s->h, &w->buf, &s->a, s->N, hp->d, hp->norm_eps);
}

/* Records D = f(x, u) of SPEC 4 into `out`. With `split`, the recording is cut into a new
 * part after every layers_per_submit layers (*qp then points at the current part). */
static drd_status record_denoiser(drd_gpu_session *s, drd_seq **qp, bool split, double u, const drd_buffer *out) {
  drd_status status = DRD_OK;
  drd_seq *q = *qp;
  const drd_gpu_model *gm = s->gm;
  const drd_hparams *hp = &gm->hp;
  uint32_t N = s->N, d = hp->d;
  /* time embedding: te = time_mlp.2(SiLU(time_mlp.0(s(u * Ts)))), folded into in_proj's bias */
  DRD_CHECK(drd_op_time_features(q, &s->feats, hp->dt, u * (double)hp->time_scale));
  drd_gemm_config cfg = session_gemm(s, 1, d, hp->dt, gm->time0_w.type);
  DRD_CHECK(drd_op_gemm_config(q, &cfg, &s->feats, &gm->time0_w.buf, gm->time0_w.type, &gm->time0_b.buf, &s->te1, 1,
                               d, hp->dt));
  DRD_CHECK(drd_op_eltwise(q, DRD_ELT_SILU, &s->te1, NULL, &s->te1, d, 0));
  cfg = session_gemm(s, 1, d, d, gm->time2_w.type);
  DRD_CHECK(drd_op_gemm_config(q, &cfg, &s->te1, &gm->time2_w.buf, gm->time2_w.type, &gm->time2_b.buf, &s->te2, 1, d,
                               d));
  DRD_CHECK(drd_op_eltwise(q, DRD_ELT_ADD, &gm->in_proj_b.buf, &s->te2, &s->bias, d, 0));
  cfg = session_gemm(s, N, d, hp->de, gm->in_proj_w.type);
  DRD_CHECK(drd_op_gemm_config(q, &cfg, &s->x, &gm->in_proj_w.buf, gm->in_proj_w.type, &s->bias, &s->h, N, d,
                               hp->de));
  /* q and k rotated in their GEMMs' epilogue where the tile allows (H200, 65536 tokens: 1.3 %
   * off the step), else by RoPE passes after the three projections: a pass between two
   * GEMMs would keep them from overlapping (4096 tokens: 7 % slower) */
  const drd_rope_table *rope = rope_in_gemm(s) ? &s->rope : NULL;
  for (uint32_t l = 0; l < hp->L; l++) {
    const drd_gpu_layer *L = &gm->layers[l];
    DRD_CHECK(widen_layer(s, q, L));
    const layer_mats W = layer_view(s, L);
    /* the q, k and v projections may read only a16; after layer 0 the DES combine may have
     * written it */
    if (l == 0 || !s->combine_norm) DRD_CHECK(norm(s, q, &L->attn_norm, qkv_reads_a16(s, L)));
    const drd_dtype qkvt = s->qkv16 ? DRD_DTYPE_F16 : DRD_DTYPE_F32;
    DRD_CHECK(layer_gemm(s, q, &s->a, &W.wq, NULL, &s->q, qkvt, d, d, false, rope,
                         s->qkv16 ? drd_attention_q_scale(d / hp->H) : 0.0f));
    DRD_CHECK(layer_gemm(s, q, &s->a, &W.wk, NULL, &s->k, qkvt, d, d, false, rope, 0.0f));
    DRD_CHECK(layer_gemm(s, q, &s->a, &W.wv, NULL, &s->v, qkvt, d, d, false, NULL, 0.0f));
    if (!rope) {
      DRD_CHECK(drd_op_rope(q, &s->rope, &s->q, &s->q, N, hp->H));
      DRD_CHECK(drd_op_rope(q, &s->rope, &s->k, &s->k, N, hp->H));
    }
    if (s->attn16) {
      DRD_CHECK(drd_op_attention_hsa_f16(q, &s->attn, &s->q, &s->k, &s->v, s->qkv16, &s->a16));
    } else {
      DRD_CHECK(drd_op_attention_hsa(q, &s->attn, &s->q, &s->k, &s->v, &s->o));
      DRD_CHECK(to_f16(s, q, &s->o));
    }
    /* h += o Wo^T: the residual add in the GEMM's epilogue (the same f32 sum as an add) */
    DRD_CHECK(layer_gemm(s, q, &s->o, &W.wo, NULL, &s->h, DRD_DTYPE_F32, d, d, true, NULL, 0.0f));
    /* h += DES(a): the residual add in the combine (the same f32 sum as an add); the router
     * reads f32 rows (a), or gets its logits from the norm */
    const drd_des_weights des = W.des;
    if (s->router_in_norm) {
      DRD_CHECK(drd_op_rmsnorm_router(q, &s->h, &L->ffn_norm.buf, &s->a16, &L->router.buf, L->router.type, hp->E,
                                      drd_des_logits_in(&s->des, N), N, d, hp->norm_eps));
      /* the combine also normalizes its rows for the next layer's attention (or the output) */
      const drd_gpu_tensor *next = l + 1 < hp->L ? &gm->layers[l + 1].attn_norm : &gm->out_norm;
      if (s->combine_norm)
        DRD_CHECK(drd_op_des_ffn_norm(q, &des, NULL, &s->a16, &s->h, N, &s->des,
                                      &(drd_des_next_norm){&next->buf, &s->a16, hp->norm_eps}));
      else
        DRD_CHECK(drd_op_des_ffn_ex(q, &des, NULL, &s->a16, &s->h, N, &s->des, true));
    } else {
      DRD_CHECK(norm(s, q, &L->ffn_norm, false));
      DRD_CHECK(drd_op_des_ffn_ex(q, &des, &s->a, s->f16_acts ? &s->a16 : NULL, &s->h, N, &s->des, true));
    }
    uint32_t k = s->shape.layers_per_submit;
    if (split && k && (l + 1) % k == 0 && l + 1 < hp->L) {
      DRD_CHECK(drd_seq_end(q));
      DRD_CHECK(part_begin(s, qp));
      q = *qp;
    }
  }
  if (!s->combine_norm) DRD_CHECK(norm(s, q, &gm->out_norm, gemm_reads_a16(s, hp->de, d, gm->out_proj_w.type)));
  DRD_CHECK(layer_gemm(s, q, &s->a, &gm->out_proj_w, &gm->out_proj_b.buf, out, DRD_DTYPE_F32, hp->de, d, false,
                       NULL, 0.0f));
cleanup:
  return status;
}

/* Step i (1-based) of SPEC 8: clamp, D_{i-1} = f(x, u_{i-1}), clamp D, SAS, solver update,
 * recorded into one or more parts. */
static drd_status record_step(drd_gpu_session *s, uint32_t i) {
  drd_status status = DRD_OK;
  drd_seq *q;
  DRD_CHECK(part_begin(s, &q));
  const drd_gpu_model *gm = s->gm;
  const drd_hparams *hp = &gm->hp;
  if (i == 1) {
    /* x = noise(seed): the seed is read from its buffer when the step runs */
    DRD_CHECK(drd_op_philox_noise(q, &s->x, (uint64_t)s->N * hp->de, &s->seed));
    if (s->stamps) drd_seq_stamp(q, s->stamps, 0);
  }
  const drd_solver_step *st = &s->solver.step[i - 1];
  const drd_buffer *D0 = &s->ring[(i - 1) % 3];
  const drd_buffer *D1 = st->order >= 2 ? &s->ring[(i + 1) % 3] : NULL; /* (i - 2) mod 3 */
  const drd_buffer *D2 = st->order >= 3 ? &s->ring[i % 3] : NULL;       /* (i - 3) mod 3 */
  DRD_CHECK(clamp(s, q, &s->x));
  DRD_CHECK(record_denoiser(s, &q, true, st->u_prev, D0));
  DRD_CHECK(clamp(s, q, D0));
  if (st->sas)
    DRD_CHECK(drd_op_sas_absorb_config(q, s->sas, &gm->tok_embd.buf, gm->tok_embd.type, D0,
                                       s->has_sas_scratch ? &s->sas_scratch : NULL, s->shape.P, s->N, hp->V, hp->de,
                                       s->shape.sas_gamma, s->shape.sas_temperature));
  DRD_CHECK(drd_op_solver_update(q, &s->x, D0, D1, D2, (uint64_t)s->N * hp->de, st->cx_f32, st->cd_f32[0],
                                 st->cd_f32[1], st->cd_f32[2], st->order));
  if (s->stamps) drd_seq_stamp(q, s->stamps, i);
  DRD_CHECK(drd_seq_end(q));
cleanup:
  return status;
}

drd_status drd_gpu_session_create(drd_gpu_model *gm, const drd_gpu_shape *shape, drd_gpu_session **out) {
  drd_status status = DRD_OK;
  *out = NULL;
  drd_context *ctx = gm->ctx;
  const drd_hparams *hp = &gm->hp;
  uint64_t N64 = (uint64_t)shape->P + shape->G;
  if (N64 == 0 || N64 > DRD_MAX_TOKENS) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "N = %llu tokens", (unsigned long long)N64);
  /* No estimate first: the allocator refuses whatever would pass the budget, so a shape that
   * fits is never refused and one that does not fails at its first buffer too many (the
   * allocations are only reservations, quick to make and to give back). */
  const uint64_t held = ctx->alloc.bytes_in_use;
  ctx->alloc.peak_in_use = held; /* for the message below, should the session not fit */
  drd_gpu_session *s = calloc(1, sizeof *s);
  if (!s) return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  s->gm = gm;
  s->ctx = ctx;
  s->shape = *shape;
  s->N = (uint32_t)N64;
  uint32_t N = s->N;
  uint64_t nde = (uint64_t)N * hp->de * 4, nd = (uint64_t)N * hp->d * 4;
  DRD_CHECK(drd_hsa_plan_make(hp, N, &s->plan));
  DRD_CHECK(drd_attention_plan_upload(ctx, &s->plan, hp->H, hp->d / hp->H, &s->attn));
  DRD_CHECK(drd_rope_table_create(ctx, hp->d / hp->H, hp->rope_theta, N, &s->rope));
  /* f16 arithmetic (the cooperative-matrix kernels) only for models whose layers' products are
   * f16 (f16 weights, or Q8_0 / bf16 widened to f16 where the device has cooperative matrices):
   * an f32 model gets the f32 engine, token for token the CPU engine's */
  const bool f16_model = s->f16_model = gm->f16_products;
  if (!f16_model) {
    s->attn.request.kind = drd_attention_f32_kind(ctx, hp->d / hp->H);
    s->sas_cfg = drd_sas_pick_f32(ctx, N - shape->P, hp->de);
    s->sas = &s->sas_cfg;
  }
  DRD_CHECK(drd_solver_plan_make(hp->schedule, shape->grid, shape->steps, shape->order, shape->sas_gamma,
                                 shape->sas_start, &s->solver));
  if (is_packed(gm->layers[0].gate.type)) {
    const uint64_t es = product_type(s, gm->layers[0].gate.type) == DRD_DTYPE_F16 ? 2 : 4;
    const uint64_t experts = (uint64_t)hp->E * hp->dff * hp->d * es, attn = (uint64_t)hp->d * hp->d * es;
    for (int i = 0; i < 7; i++) DRD_CHECK(drd_buffer_create(ctx, i < 3 ? experts : attn, &s->wide[i]));
  }
  const drd_des_weights des0 = layer_view(s, &gm->layers[0]).des;
  DRD_CHECK(drd_des_scratch_create(ctx, &des0, &(drd_des_scratch_desc){.max_T = N}, &s->des));
  DRD_CHECK(drd_buffer_create(ctx, nde, &s->x));
  for (int r = 0; r < 3; r++) DRD_CHECK(drd_buffer_create(ctx, nde, &s->ring[r]));
  DRD_CHECK(drd_buffer_create_host(ctx, (uint64_t)N * 4, &s->tokens));
  DRD_CHECK(drd_buffer_create_host(ctx, (uint64_t)(shape->P ? shape->P : 1) * 4, &s->prompt));
  DRD_CHECK(drd_buffer_create_host(ctx, 8, &s->seed));
  /* the copy only where the layers' GEMMs run on cooperative matrices (not for a few rows) */
  s->f16_acts = f16_model && drd_gemm_pick_for(ctx, N, hp->d, hp->d, DRD_DTYPE_F16).kind == DRD_GEMM_COOPMAT;
  if (s->f16_acts) DRD_CHECK(drd_buffer_create(ctx, nd / 2, &s->a16));
  /* the o projection reads only a16 there, so the attention may write it directly (H200, 16K
   * tokens: the conversion pass was 0.7 ms of a step) */
  s->attn16 = s->f16_acts && drd_attention_f16_out(ctx, &s->attn);
  /* q (times the attention's scale), k and v as f16 from their GEMMs, which the attention
   * rounds them to anyway: the same tokens, half their memory (384 MiB at 64K tokens), and on
   * an H200 k and v took 1.4 % off the 16K attention, 1.2 % off the 64K step
   * (docs/performance.md); only where RoPE is in the GEMMs, as no pass rotates f16 */
  s->qkv16 = s->attn16 && rope_in_gemm(s);
  /* the DES router's logits from the FFN's norm, which then writes only a16 (H200, 16K tokens:
   * no des_logits pass and 64 MiB less written per layer, docs/performance.md); where the norm
   * runs on subgroups anyway, so that its rows keep their bits */
  s->router_in_norm = s->f16_acts && drd_des_logits_in(&s->des, N) && drd_rmsnorm_on_subgroups(ctx, N, hp->d);
  for (uint32_t l = 0; l < hp->L && s->router_in_norm; l++)
    s->router_in_norm = drd_rmsnorm_router_fits(ctx, N, hp->d, hp->E, gm->layers[l].router.type);
  drd_buffer *acts[] = {&s->h, &s->a, &s->q, &s->k, &s->v, &s->o};
  const bool a32 = needs_f32_rows(s);
  /* the DES combine does the norm after it (H200, 16K tokens: one pass over h fewer per layer,
   * docs/performance.md), where that norm writes only a16 (every norm does, without a32) and
   * would run on subgroups, so that its rows keep their bits */
  s->combine_norm = !a32 && drd_des_norm_fits(ctx, &s->des, N);
  for (size_t i = 0; i < sizeof acts / sizeof *acts; i++) {
    const bool qkv = acts[i] == &s->q || acts[i] == &s->k || acts[i] == &s->v;
    if ((acts[i] != &s->o || !s->attn16) && (acts[i] != &s->a || a32))
      DRD_CHECK(drd_buffer_create(ctx, s->qkv16 && qkv ? nd / 2 : nd, acts[i]));
  }
  DRD_CHECK(drd_buffer_create(ctx, (uint64_t)hp->dt * 4, &s->feats));
  DRD_CHECK(drd_buffer_create(ctx, (uint64_t)hp->d * 4, &s->te1));
  DRD_CHECK(drd_buffer_create(ctx, (uint64_t)hp->d * 4, &s->te2));
  DRD_CHECK(drd_buffer_create(ctx, (uint64_t)hp->d * 4, &s->bias));
  uint64_t sas = drd_sas_scratch_bytes_config(ctx, s->sas, gm->tok_embd.type, shape->P, N, hp->V, hp->de);
  if (sas) {
    DRD_CHECK(drd_buffer_create(ctx, sas, &s->sas_scratch));
    s->has_sas_scratch = true;
  }
  /* D_{i-2} and D_{i-3} of the first steps are never read (the order is capped by i), but
   * they are bound: give them defined contents once */
  for (int r = 0; r < 3; r++) DRD_CHECK(drd_buffer_fill(ctx, &s->ring[r], 0));

  s->step_end = calloc(shape->steps, sizeof *s->step_end);
  s->ticks = calloc(shape->steps + 1, sizeof *s->ticks);
  if (!s->step_end || !s->ticks) {
    status = drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    goto cleanup;
  }
  if (ctx->caps.timestamps && shape->steps) {
    VkQueryPoolCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                 .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                 .queryCount = shape->steps + 1};
    VkResult r = vkCreateQueryPool(ctx->device, &qci, NULL, &s->stamps);
    if (r != VK_SUCCESS) {
      status = drd_vk_status(r, "vkCreateQueryPool", __FILE__, __LINE__);
      goto cleanup;
    }
  }
  for (uint32_t i = 1; i <= shape->steps; i++) {
    DRD_CHECK(record_step(s, i));
    s->step_end[i - 1] = s->n_parts;
  }
  DRD_CHECK(drd_seq_begin(ctx, &s->final));
  DRD_CHECK(drd_op_round_config(s->final, s->sas, &gm->tok_embd.buf, gm->tok_embd.type, &s->x,
                         s->has_sas_scratch ? &s->sas_scratch : NULL, shape->P, N, hp->V, hp->de, &s->tokens));
  DRD_CHECK(drd_seq_end(s->final));
  /* everything the session holds on the device (activations, the DES and attention scratch,
   * the plan, the RoPE table), as the allocator counts it */
  s->bytes = ctx->alloc.bytes_in_use - held;
  drd_log(DRD_LOG_INFO, "session N=%u: %.1f MiB of activations and scratch, %u steps recorded in %u submissions%s%s%s%s%s",
          N, s->bytes / 1048576.0, shape->steps, s->n_parts, s->f16_acts ? ", f16 activation copy" : "",
          s->attn16 ? " (attention writes it)" : "", s->qkv16 ? ", f16 q, k and v" : "",
          s->router_in_norm ? ", DES router logits from the FFN's norm" : "",
          s->combine_norm ? ", the next norm in the DES combine" : "");
  *out = s;
  return DRD_OK;
cleanup:
  if (status == DRD_ERROR_OUT_OF_DEVICE_MEMORY) {
    /* the peak: an op's own clean-up may already have given back what it had allocated */
    char why[256];
    snprintf(why, sizeof why, "%s", drd_last_error());
    status = drd_fail(status, "N = %u tokens do not fit: besides the %.1f MiB in use, the session needs more than %.1f MiB (%s)",
                      s->N, held / 1048576.0, (ctx->alloc.peak_in_use - held) / 1048576.0, why);
  }
  drd_gpu_session_destroy(s);
  return status;
}

void drd_gpu_session_destroy(drd_gpu_session *s) {
  if (!s) return;
  drd_context *ctx = s->ctx;
  for (uint32_t i = 0; i < s->n_parts; i++) drd_seq_destroy(s->parts[i]);
  free(s->parts);
  free(s->step_end);
  free(s->ticks);
  if (s->stamps) vkDestroyQueryPool(ctx->device, s->stamps, NULL);
  drd_seq_destroy(s->final);
  drd_buffer *bufs[] = {&s->x, &s->ring[0], &s->ring[1], &s->ring[2], &s->tokens, &s->prompt, &s->seed,
                        &s->h, &s->a, &s->q, &s->k, &s->v, &s->o, &s->a16, &s->feats, &s->te1, &s->te2, &s->bias,
                        &s->sas_scratch, &s->wide[0], &s->wide[1], &s->wide[2], &s->wide[3], &s->wide[4],
                        &s->wide[5], &s->wide[6]};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) drd_buffer_destroy(ctx, bufs[i]);
  drd_des_scratch_destroy(ctx, &s->des);
  drd_rope_table_destroy(ctx, &s->rope);
  drd_attention_plan_free(ctx, &s->attn);
  drd_solver_plan_free(&s->solver);
  drd_hsa_plan_free(&s->plan);
  free(s);
}

/* Steps go to the GPU in groups of about this much work once a step's time is known: each
 * vkQueueSubmit and each wake-up from a fence cost the host tens of microseconds (H200,
 * driver 580: 30 - 100 us each; the generating thread took 0.9 - 1.8 % of a 6 ms step when
 * every step had its own, 0.6 % in groups of 0.2 s, docs/performance.md). Larger groups cost
 * a little less still, but a cancel waits for the running group and the queued one. */
#define GROUP_S 0.2

/* Sleeps until t, or until `last` has finished if that comes first. t comes from the last
 * steps' times, which can be far too long for the next ones: a step that compiled shaders on
 * first use (llvmpipe does so: one step of the README's main command took 26 s on a cold
 * shader cache), or a progress callback that stalled. Sleeping it out left the device idle, the
 * idle time entered the next estimate, and the run went on sleeping 3/4 of the last sleep at a
 * time (171 s instead of 35 for that command, 2026-12-05). Looking at the fence every
 * PACE_SLICE_S bounds the idle time to one slice. The slice is a whole group's sleep (3/4 of
 * GROUP_S), so a group whose time was foreseen still sleeps once: every 20 ms, 7 - 8 wake-ups
 * per group, raised an H100's host CPU per step from 0.92 - 1.18 to 1.10 - 1.40 % at 4K tokens;
 * with this slice the generating thread is back to 0.20 - 0.25 % (docs/performance.md,
 * thirty-third and thirty-fourth sessions). */
#define PACE_SLICE_S (0.75 * GROUP_S)

static void sleep_until_or_done(const drd_seq *last, double t) {
  for (double now = drd_now_s(); now < t && !drd_seq_finished(last); now = drd_now_s())
    drd_sleep_until_s(now + PACE_SLICE_S < t ? now + PACE_SLICE_S : t);
}

static uint32_t first_part(const drd_gpu_session *s, uint32_t step) { return step ? s->step_end[step - 1] : 0; }

/* Submits steps [a, b) (0-based): one vkQueueSubmit, or each part alone when the caller
 * asked for cut steps (layers_per_submit: a driver that loses long submissions). */
static drd_status submit_steps(drd_gpu_session *s, uint32_t a, uint32_t b) {
  uint32_t p0 = first_part(s, a), p1 = s->step_end[b - 1];
  if (!s->shape.layers_per_submit) return drd_seq_submit_group(s->parts + p0, p1 - p0);
  for (uint32_t p = p0; p < p1; p++) {
    drd_status status = drd_seq_submit(s->parts[p]);
    if (status != DRD_OK) return status;
  }
  return DRD_OK;
}

/* Waits for steps [a, b), the last part first (the group's fence: the others are then done),
 * and reads their timestamps into ticks[a .. b] (one call for the group). */
static drd_status wait_steps(drd_gpu_session *s, uint32_t a, uint32_t b) {
  uint32_t p0 = first_part(s, a), p1 = s->step_end[b - 1];
  drd_status status = drd_seq_wait(s->parts[p1 - 1]);
  for (uint32_t p = p0; p + 1 < p1 && status == DRD_OK; p++) status = drd_seq_wait(s->parts[p]);
  if (status == DRD_OK && s->stamps &&
      vkGetQueryPoolResults(s->ctx->device, s->stamps, a, b - a + 1, (b - a + 1) * sizeof *s->ticks, s->ticks + a,
                            sizeof *s->ticks, VK_QUERY_RESULT_64_BIT) != VK_SUCCESS)
    return drd_fail(DRD_ERROR_VULKAN, "vkGetQueryPoolResults: the steps' timestamps are not available");
  return status;
}

drd_status drd_gpu_session_run(drd_gpu_session *s, const int32_t *prompt, uint64_t seed,
                               int (*progress)(uint32_t, uint32_t, double, void *), void *user,
                               volatile int *cancel, int32_t *tokens_out) {
  drd_status status = DRD_OK;
  drd_context *ctx = s->ctx;
  uint32_t P = s->shape.P, steps = s->shape.steps;
  /* host-visible: these are memcpy (step 1 makes the noise from the seed) */
  const uint32_t seed_words[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  DRD_CHECK(drd_buffer_upload(ctx, &s->seed, 0, seed_words, sizeof seed_words));
  if (P) DRD_CHECK(drd_buffer_upload(ctx, &s->prompt, 0, prompt, (uint64_t)P * 4));
  /* One group of steps is queued behind the running one, so the GPU runs them back to back
   * rather than idling while the host wakes up from a fence and submits; the progress
   * callback and cancellation act between groups. The last run's step time sizes the
   * groups; a session's first run starts with two groups of one step each. */
  /* The host sleeps through most of each group before it waits on its fence, so that a
   * driver that polls in the wait polls briefly: a step takes about as long as the last ones
   * did (the same work; SAS steps ~5 % longer), so it sleeps until 3/4 of the group's
   * expected time past the previous group's end, while the GPU runs the queued group, or
   * until the group is done if that comes first (sleep_until_or_done). */
  /* a group must stay well inside the context's wait limit, or a short timeout_ms would call
   * a healthy device hung */
  double group_s = ctx->timeout_ns * 0.25e-9 < GROUP_S ? ctx->timeout_ns * 0.25e-9 : GROUP_S;
  double t0 = drd_now_s(), seen = t0;
  uint32_t queued = 0, done = 0, group_end[2], n_groups = 0;
  while (done < steps) {
    if (cancel && *cancel) {
      status = drd_fail(DRD_ERROR_CANCELLED, "generation cancelled before step %u of %u", done + 1, steps);
      goto cleanup;
    }
    while (n_groups < 2 && queued < steps) {
      /* one step at a time where the device has no timestamps (each step's end is then the
       * host's clock when it sees it) or the caller cuts steps */
      uint32_t n = 1;
      double step_s = s->step_s;
      if (step_s > 0 && s->stamps && !s->shape.layers_per_submit && group_s > step_s) n = (uint32_t)(group_s / step_s);
      if (n > steps - queued) n = steps - queued;
      DRD_CHECK(submit_steps(s, queued, queued + n));
      queued += n;
      group_end[n_groups++] = queued;
    }
    uint32_t a = done, b = group_end[0];
    if (s->step_s * (b - a) > 2e-3)
      sleep_until_or_done(s->parts[s->step_end[b - 1] - 1], seen + 0.75 * s->step_s * (b - a));
    DRD_CHECK(wait_steps(s, a, b));
    double now = drd_now_s();
    group_end[0] = group_end[1];
    n_groups--;
    /* each step's end on the GPU's clock where it has one: exact even when the host sees a
     * whole group end at once */
    for (uint32_t i = a; i < b; i++) {
      double t = s->stamps ? drd_ticks_seconds(ctx, s->ticks[0], s->ticks[i + 1]) : now - t0;
      done = i + 1;
      if ((progress && progress(i + 1, steps, t, user)) || (cancel && *cancel)) {
        status = drd_fail(DRD_ERROR_CANCELLED, "generation cancelled after step %u of %u", i + 1, steps);
        goto cleanup;
      }
    }
    s->step_s = (s->stamps ? drd_ticks_seconds(ctx, s->ticks[a], s->ticks[b]) : now - seen) / (b - a);
    seen = now;
  }
  DRD_CHECK(drd_seq_run(s->final));
  DRD_CHECK(drd_buffer_download(ctx, &s->tokens, (uint64_t)P * 4, tokens_out, (uint64_t)s->shape.G * 4));
cleanup:
  /* nothing stays in flight: the parts are submitted again by the next run (after a loss
   * or a hang there is nothing to wait for, and the status already says so) */
  for (uint32_t part = 0; part < s->n_parts && !ctx->lost; part++) drd_seq_wait(s->parts[part]);
  return status;
}

uint64_t drd_gpu_session_device_bytes(const drd_gpu_session *s) { return s->bytes + s->gm->bytes; }

drd_status drd_gpu_session_forward(drd_gpu_session *s, const float *x, double u, float *out) {
  drd_status status = DRD_OK;
  drd_seq *q = NULL;
  uint64_t bytes = (uint64_t)s->N * s->gm->hp.de * 4;
  DRD_CHECK(drd_buffer_upload(s->ctx, &s->x, 0, x, bytes));
  DRD_CHECK(drd_seq_begin(s->ctx, &q));
  DRD_CHECK(record_denoiser(s, &q, false, u, &s->ring[0]));
  DRD_CHECK(drd_seq_end(q));
  DRD_CHECK(drd_seq_run(q));
  DRD_CHECK(drd_buffer_download(s->ctx, &s->ring[0], 0, out, bytes));
cleanup:
  drd_seq_destroy(q);
  return status;
}

drd_status drd_gpu_session_state(drd_gpu_session *s, float *out) {
  return drd_buffer_download(s->ctx, &s->x, 0, out, (uint64_t)s->N * s->gm->hp.de * 4);
}
