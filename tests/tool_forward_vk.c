/* tool_forward_vk MODEL.gguf IN.f32 N U OUT.f32: one evaluation of the denoiser by the
 * Vulkan engine (validation on), the GPU twin of tool_forward. IN and OUT are raw
 * little-endian f32 arrays [N, de]. Exit 0 on success, 1 on failure, 77 without a device. */
#include <stdio.h>
#include <stdlib.h>

#include "engine.h"

static int io(const char *path, float *buf, size_t n, int write) {
  FILE *f = fopen(path, write ? "wb" : "rb");
  if (!f) return -1;
  size_t got = write ? fwrite(buf, 4, n, f) : fread(buf, 4, n, f);
  return (fclose(f) == 0 && got == n) ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: tool_forward_vk MODEL.gguf IN.f32 N U OUT.f32\n");
    return 1;
  }
  uint32_t N = (uint32_t)strtoul(argv[3], NULL, 10);
  double u = strtod(argv[4], NULL);
  drd_model *model = NULL;
  drd_context *ctx = NULL;
  float *x = NULL, *y = NULL;
  int rc = 1;
  drd_status s = drd_model_create(&(drd_model_desc){.path = argv[1]}, &model);
  if (s == DRD_OK) {
    s = drd_context_create(&(drd_context_desc){.validation = 1, .pipeline_cache_path = ""}, &ctx);
    if (s == DRD_ERROR_NO_VULKAN || s == DRD_ERROR_NO_DEVICE) rc = 77;
  }
  drd_gpu_session *session = NULL;
  if (s == DRD_OK) {
    const drd_hparams *hp = &drd_model_file_of(model)->hp;
    drd_gpu_shape shape = {.P = 0, .G = N, .steps = 1, .order = 1, .grid = DRD_GRID_TIME_UNIFORM,
                           .sas_gamma = 0, .sas_temperature = 1, .sas_start = 0};
    size_t n = (size_t)N * hp->de;
    x = malloc(n * 4);
    y = malloc(n * 4);
    if (!x || !y || io(argv[2], x, n, 0)) {
      fprintf(stderr, "tool_forward_vk: cannot read %zu floats from %s\n", n, argv[2]);
      goto done;
    }
    s = drd_engine_prepare(ctx, model, &shape, &session);
    if (s == DRD_OK) s = drd_gpu_session_forward(session, x, u, y);
    if (s == DRD_OK && io(argv[5], y, n, 1)) {
      fprintf(stderr, "tool_forward_vk: cannot write %s\n", argv[5]);
      goto done;
    }
  }
  if (s != DRD_OK) fprintf(stderr, "tool_forward_vk: %s: %s\n", drd_status_string(s), drd_last_error());
  else if (drd_context_validation_messages(ctx)) fprintf(stderr, "tool_forward_vk: validation messages\n");
  else rc = 0;
done:
  free(x);
  free(y);
  drd_context_destroy(ctx);
  drd_model_destroy(model);
  return rc;
}
