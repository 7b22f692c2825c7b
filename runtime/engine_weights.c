/* Uploading a model's weights to the device, once per (model, context). f32 and f16 tensors
 * are copied as stored; bf16 and Q8_0 outside the layers' matrices are widened to f32
 * (exact). The layers' matrices share one type on the device: f16 when every one of them is
 * stored f16, Q8_0 (34 bytes per 32 weights) or bf16 as stored when every one is of that
 * type, which the session widens into a scratch (f16 for the f16 engine, f16_products below,
 * else f32) at the start of each layer (a quarter or half of the f32 memory), else f32 (f16
 * widened exactly); and so do the layers' routers (f16 or f32): the session picks its kernels
 * and activation buffers from the first layer's, the DES op takes gate, up and down of one
 * type, and its scratch is planned for one router type. A file may mix types (SPEC section 3),
 * as a converter that keeps some tensors at higher precision writes them. */
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "engine.h"

#define LAYER_MATRICES(L) {&(L)->attn_q, &(L)->attn_k, &(L)->attn_v, &(L)->attn_output, \
                           &(L)->ffn_gate_exps, &(L)->ffn_up_exps, &(L)->ffn_down_exps}

/* Whether every layer's matrices (router: every layer's router, which the DES scratch is
 * planned for once) are stored as type */
static bool layers_all(const drd_model_file *m, bool router, drd_dtype type) {
  for (uint32_t l = 0; l < m->hp.L; l++) {
    const drd_layer_tensors *L = &m->t.layers[l];
    const drd_tensor_view *mats[] = LAYER_MATRICES(L);
    if (router) {
      if (L->ffn_gate_inp.type != type) return false;
      continue;
    }
    for (size_t i = 0; i < sizeof mats / sizeof *mats; i++)
      if (mats[i]->type != type) return false;
  }
  return true;
}

typedef struct layer_types {
  drd_dtype matrices, routers; /* their type on the device */
} layer_types;

static layer_types device_layer_types(const drd_model_file *m) {
  return (layer_types){.matrices = layers_all(m, false, DRD_DTYPE_F16)    ? DRD_DTYPE_F16
                                   : layers_all(m, false, DRD_DTYPE_Q8_0) ? DRD_DTYPE_Q8_0
                                   : layers_all(m, false, DRD_DTYPE_BF16) ? DRD_DTYPE_BF16
                                                                          : DRD_DTYPE_F32,
                       .routers = layers_all(m, true, DRD_DTYPE_F16) ? DRD_DTYPE_F16 : DRD_DTYPE_F32};
}

/* any tensor but the layers' matrices and routers: f16 as stored, everything else as f32 */
static drd_dtype own_type(const drd_tensor_view *t) { return t->type == DRD_DTYPE_F16 ? DRD_DTYPE_F16 : DRD_DTYPE_F32; }

/* The tensors outside the layers, and each layer's, in the order of their drd_gpu_model /
 * drd_gpu_layer fields below, with their device types: the byte count and the upload walk
 * the same lists. */
#define TOP_TENSORS(t) {&(t)->token_embd, &(t)->in_proj_w, &(t)->in_proj_b, &(t)->time_mlp0_w, &(t)->time_mlp0_b, \
                        &(t)->time_mlp2_w, &(t)->time_mlp2_b, &(t)->output_norm, &(t)->out_proj_w, &(t)->out_proj_b}
#define N_TOP 10
#define N_LAYER 10
/* where each goes, in the same orders (the upload and the release walk these) */
#define GPU_TOP_TENSORS(gm) {&(gm)->tok_embd, &(gm)->in_proj_w, &(gm)->in_proj_b, &(gm)->time0_w, &(gm)->time0_b, \
                             &(gm)->time2_w, &(gm)->time2_b, &(gm)->out_norm, &(gm)->out_proj_w, &(gm)->out_proj_b}
#define GPU_LAYER_TENSORS(L) {&(L)->attn_norm, &(L)->wq, &(L)->wk, &(L)->wv, &(L)->wo, &(L)->ffn_norm, &(L)->router, \
                              &(L)->gate, &(L)->up, &(L)->down}
static void layer_tensors(const drd_layer_tensors *L, layer_types lt, const drd_tensor_view *t[N_LAYER],
                          drd_dtype type[N_LAYER]) {
  const drd_tensor_view *src[N_LAYER] = {&L->attn_norm, &L->attn_q,         &L->attn_k,        &L->attn_v,
                                         &L->attn_output, &L->ffn_norm,     &L->ffn_gate_inp,  &L->ffn_gate_exps,
                                         &L->ffn_up_exps, &L->ffn_down_exps};
  const drd_dtype m = lt.matrices, types[N_LAYER] = {own_type(&L->attn_norm), m, m, m, m, own_type(&L->ffn_norm),
                                                     lt.routers, m, m, m};
  memcpy(t, src, sizeof src);
  memcpy(type, types, sizeof types);
}

/* Q8_0 and bf16 as stored, in whole 32-bit words (the widening kernels read words) */
static uint64_t tensor_bytes(const drd_tensor_view *t, drd_dtype type) {
  if (type == DRD_DTYPE_Q8_0) return (t->n_elements / 32 * 34 + 3) / 4 * 4;
  if (type == DRD_DTYPE_BF16) return (t->n_elements * 2 + 3) / 4 * 4;
  return t->n_elements * (type == DRD_DTYPE_F16 ? 2u : 4u);
}

/* Bytes the weights will take on the device, each buffer rounded up as the allocator does. */
static uint64_t weights_bytes(const drd_model_file *m, uint64_t align) {
#define ALIGNED(t, type) ((tensor_bytes(t, type) + align - 1) / align * align)
  const layer_types types = device_layer_types(m);
  const drd_tensor_view *top[N_TOP] = TOP_TENSORS(&m->t);
  uint64_t total = 0;
  for (int i = 0; i < N_TOP; i++) total += ALIGNED(top[i], own_type(top[i]));
  for (uint32_t l = 0; l < m->hp.L; l++) {
    const drd_tensor_view *t[N_LAYER];
    drd_dtype type[N_LAYER];
    layer_tensors(&m->t.layers[l], types, t, type);
    for (int i = 0; i < N_LAYER; i++) total += ALIGNED(t[i], type[i]);
  }
  return total;
#undef ALIGNED
}

/* Uploads one tensor through a bounded host buffer, converting as needed. */
static drd_status upload(drd_context *ctx, const drd_tensor_view *t, drd_dtype type, drd_gpu_tensor *out) {
  drd_status status = DRD_OK;
  out->type = type;
  DRD_CHECK(drd_buffer_create(ctx, tensor_bytes(t, type), &out->buf));
  if (t->type == type) return drd_buffer_upload(ctx, &out->buf, 0, t->data, t->nbytes);
  /* widen in slices so a large tensor never needs a full f32 copy on the host */
  const uint64_t slice = 1u << 20;
  float *tmp = malloc(slice * sizeof *tmp);
  if (!tmp) return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "out of host memory converting %s", t->name);
  for (uint64_t first = 0; first < t->n_elements && status == DRD_OK; first += slice) {
    uint64_t n = t->n_elements - first < slice ? t->n_elements - first : slice;
    drd_tensor_to_f32(t, first, n, tmp);
    status = drd_buffer_upload(ctx, &out->buf, first * 4, tmp, n * 4);
  }
  free(tmp);
cleanup:
  return status;
}

/* Whether the layers' products run in f16 (the f16 engine): their matrices are f16, or Q8_0 /
 * bf16 on a device whose f16 products run on cooperative matrices, widened to f16 at the start
 * of each layer, where every value is finite in f16. Rounding d q to f16 costs at most half an f16
 * ulp (2^-11 relative), as rounding the activations does; on an H200 the f16 engine's 4K step
 * took 12.3 ms against the f32 engine's 68.2 (docs/performance.md). Elsewhere such files run
 * the f32 engine, token for token the CPU engine's. */
static bool f16_products(drd_context *ctx, const drd_model_file *m, drd_dtype matrices) {
  if (matrices == DRD_DTYPE_F16) return true;
  if (matrices != DRD_DTYPE_Q8_0 && matrices != DRD_DTYPE_BF16) return false;
  if (drd_gemm_pick_for(ctx, 4096, m->hp.d, m->hp.d, DRD_DTYPE_F16).kind != DRD_GEMM_COOPMAT) return false;
  for (uint32_t l = 0; l < m->hp.L; l++) {
    const drd_layer_tensors *L = &m->t.layers[l];
    const drd_tensor_view *mats[] = LAYER_MATRICES(L);
    for (size_t i = 0; i < sizeof mats / sizeof *mats; i++)
      if (!drd_tensor_fits_f16(mats[i])) {
        drd_log(DRD_LOG_INFO, "%s has values past f16's range: the f32 engine runs this model", mats[i]->name);
        return false;
      }
  }
  return true;
}

static void release(drd_context *ctx, drd_gpu_tensor *t) { drd_buffer_destroy(ctx, &t->buf); }

drd_status drd_gpu_model_create(drd_context *ctx, const drd_model_file *m, drd_gpu_model **out) {
  drd_status status = DRD_OK;
  *out = NULL;
  const drd_hparams *hp = &m->hp;
  drd_gpu_model *gm = calloc(1, sizeof *gm);
  if (!gm) return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  gm->ctx = ctx;
  gm->hp = *hp;
  gm->layers = calloc(hp->L, sizeof *gm->layers);
  if (!gm->layers) {
    status = drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    goto cleanup;
  }
  /* checked before uploading anything: a model that cannot fit fails at once, not after
   * uploading most of its weights */
  uint64_t need = weights_bytes(m, ctx->alloc.alignment), held = ctx->alloc.bytes_in_use, budget = drd_alloc_budget(ctx);
  if (budget && held + need > budget) {
    status = drd_fail(DRD_ERROR_OUT_OF_DEVICE_MEMORY,
                      "the model needs %.1f MiB of device memory besides the %.1f MiB in use; %s allows %.1f MiB",
                      need / 1048576.0, held / 1048576.0, ctx->caps.name, budget / 1048576.0);
    goto cleanup;
  }
  const layer_types types = device_layer_types(m);
  const drd_tensor_view *top[N_TOP] = TOP_TENSORS(&m->t);
  drd_gpu_tensor *top_dst[N_TOP] = GPU_TOP_TENSORS(gm);
  for (int i = 0; i < N_TOP; i++) DRD_CHECK(upload(ctx, top[i], own_type(top[i]), top_dst[i]));
  for (uint32_t l = 0; l < hp->L; l++) {
    drd_gpu_layer *dst = &gm->layers[l];
    const drd_tensor_view *src[N_LAYER];
    drd_dtype type[N_LAYER];
    layer_tensors(&m->t.layers[l], types, src, type);
    drd_gpu_tensor *to[N_LAYER] = GPU_LAYER_TENSORS(dst);
    for (int i = 0; i < N_LAYER; i++) DRD_CHECK(upload(ctx, src[i], type[i], to[i]));
    dst->des = (drd_des_weights){
        .d = hp->d, .dff = hp->dff, .E = hp->E, .kmax = hp->kmax, .p = hp->route_p,
        .router_type = dst->router.type, .expert_type = dst->gate.type,
        .router = &dst->router.buf, .gate = &dst->gate.buf, .up = &dst->up.buf, .down = &dst->down.buf,
    };
  }
  gm->f16_products = f16_products(ctx, m, types.matrices);
  gm->bytes = ctx->alloc.bytes_in_use - held;
  drd_log(DRD_LOG_INFO, "uploaded %.1f MiB of weights to %s", gm->bytes / 1048576.0, ctx->caps.name);
  *out = gm;
  return DRD_OK;
cleanup:
  drd_gpu_model_destroy(gm);
  return status;
}

void drd_gpu_model_destroy(drd_gpu_model *gm) {
  if (!gm) return;
  drd_context *ctx = gm->ctx;
  drd_gpu_tensor *top[N_TOP] = GPU_TOP_TENSORS(gm);
  for (int i = 0; i < N_TOP; i++) release(ctx, top[i]);
  for (uint32_t l = 0; gm->layers && l < gm->hp.L; l++) {
    drd_gpu_tensor *lt[N_LAYER] = GPU_LAYER_TENSORS(&gm->layers[l]);
    for (int i = 0; i < N_LAYER; i++) release(ctx, lt[i]);
  }
  free(gm->layers);
  free(gm);
}
