/* Q8_0 and bf16 layer weights stay as stored on the device (runtime/engine_weights.c): the
 * same tiny model written with F32, Q8_0 and BF16 matrices, uploaded to one context. The
 * packed copies' layer matrices must keep their type on the device, and their weights must
 * take at least 70 % (Q8_0: 34 bytes per 32 weights, 73 % less) and 45 % (bf16: 50 % less) of
 * the layer matrices' f32 bytes fewer than the f32 model's. Widened to f32 at upload, as
 * before, they saved nothing there. Where the device's f16 GEMMs run on cooperative
 * matrices, the packed models run the f16 engine (f16_products), but not once one weight is
 * past f16's range. Tokens against the CPU engine: see test_gpu_parity (q8_0 and bf16 cases). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "util_expect.h"
#include "util_gguf_build.h"
#include "util_gpu.h"

/* too_large: one weight of the last layer's down experts is made too large for f16 first
 * (bf16 65536, or a Q8_0 block's scale 1024 with q = 127) */
static uint64_t upload_bytes(drd_context *ctx, const drd_hparams *hp, drd_dtype type, drd_dtype *layer_type,
                             bool too_large, bool *f16_products) {
  drd_test_model_desc md = {.hp = hp, .seed = 5, .matrix_type = type};
  uint8_t *bytes;
  size_t size;
  drd_model_file *m = NULL;
  drd_gpu_model *gm = NULL;
  uint64_t out = 0;
  if (drd_test_model_bytes(&md, &bytes, &size)) {
    FAIL("building the model");
    return 0;
  }
  drd_test_check(drd_model_file_open_memory(bytes, size, &m), "model");
  if (too_large) { /* the view points into our buffer */
    unsigned char *w = (unsigned char *)m->t.layers[hp->L - 1].ffn_down_exps.data + 34 * 3;
    if (type == DRD_DTYPE_BF16) memcpy(w, (const uint16_t[]){0x4780}, 2);
    if (type == DRD_DTYPE_Q8_0) memcpy(w, (const uint8_t[]){0x00, 0x64, 0x7f}, 3); /* f16 1024, then q 127 */
  }
  drd_test_check(drd_gpu_model_create(ctx, m, &gm), "upload");
  out = gm->bytes;
  *f16_products = gm->f16_products;
  *layer_type = gm->layers[0].wq.type;
  for (uint32_t l = 0; l < hp->L; l++) {
    const drd_gpu_layer *L = &gm->layers[l];
    EXPECT(L->wq.type == *layer_type && L->wk.type == *layer_type && L->wv.type == *layer_type &&
               L->wo.type == *layer_type && L->gate.type == *layer_type && L->up.type == *layer_type &&
               L->down.type == *layer_type,
           "layer %u's matrices are not all of one device type", l);
  }
  drd_gpu_model_destroy(gm);
  drd_model_file_close(m);
  free(bytes);
  return out;
}

int main(void) {
  drd_context *ctx = drd_test_context();
  drd_hparams hp;
  drd_test_tiny_hparams(&hp);
  hp.dff = 256, hp.d = 128, hp.H = 4; /* layer matrices the bulk of the weights */
  drd_dtype t32, t8, t16, t;
  bool e32, e8, e16, e8_large, e16_large;
  const uint64_t f32 = upload_bytes(ctx, &hp, DRD_DTYPE_F32, &t32, false, &e32),
                 q8 = upload_bytes(ctx, &hp, DRD_DTYPE_Q8_0, &t8, false, &e8),
                 bf16 = upload_bytes(ctx, &hp, DRD_DTYPE_BF16, &t16, false, &e16);
  upload_bytes(ctx, &hp, DRD_DTYPE_Q8_0, &t, true, &e8_large);
  upload_bytes(ctx, &hp, DRD_DTYPE_BF16, &t, true, &e16_large);
  const bool coopmat = drd_gemm_pick_for(ctx, 4096, hp.d, hp.d, DRD_DTYPE_F16).kind == DRD_GEMM_COOPMAT;
  EXPECT(!e32 && e8 == coopmat && e16 == coopmat && !e8_large && !e16_large,
         "f16 engine for f32 %d, q8_0 %d, bf16 %d, q8_0 / bf16 with a weight past f16's range %d / %d; want 0, %d, "
         "%d, 0, 0", e32, e8, e16, e8_large, e16_large, coopmat, coopmat);
  const uint64_t layer_f32 = (uint64_t)hp.L * (4ull * hp.d * hp.d + 3ull * hp.E * hp.dff * hp.d) * 4;
  EXPECT(t32 == DRD_DTYPE_F32 && t8 == DRD_DTYPE_Q8_0 && t16 == DRD_DTYPE_BF16,
         "device types %d / %d / %d, want f32 / q8_0 / bf16", (int)t32, (int)t8, (int)t16);
  EXPECT(q8 + layer_f32 * 7 / 10 <= f32, "q8_0 weights %llu bytes, f32 %llu: not 70 %% of the %llu layer bytes less",
         (unsigned long long)q8, (unsigned long long)f32, (unsigned long long)layer_f32);
  EXPECT(bf16 + layer_f32 * 45 / 100 <= f32, "bf16 weights %llu bytes, f32 %llu: not 45 %% of the %llu layer bytes less",
         (unsigned long long)bf16, (unsigned long long)f32, (unsigned long long)layer_f32);
  printf("weights on the device: f32 %llu bytes, q8_0 %llu, bf16 %llu (layer matrices in f32: %llu)\n",
         (unsigned long long)f32, (unsigned long long)q8, (unsigned long long)bf16, (unsigned long long)layer_f32);
  int rc = drd_test_finish(ctx);
  if (drd_test_failures || rc) {
    fprintf(stderr, "%d failures\n", drd_test_failures);
    return 1;
  }
  printf("PASS\n");
  return 0;
}
