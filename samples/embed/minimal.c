/* The smallest program that embeds drdiff, using nothing but drdiff.h:
 *
 *   minimal MODEL.gguf [PROMPT] [NEW_TOKENS] [SEED]
 *
 * loads a model, opens the best Vulkan device (DRDIFF_DEVICE picks another), falls back to the
 * CPU engine when the machine has no Vulkan or no usable device, generates and prints the
 * text. Build it against an installed drdiff (CMakeLists.txt here, or pkg-config:
 * cc minimal.c $(pkg-config --cflags --libs drdiff)); tests/test_install_package.py does both. */
#include <drdiff.h>
#include <stdio.h>
#include <stdlib.h>

static int fail(const char *what, drd_status s) {
  fprintf(stderr, "minimal: %s: %s: %s\n", what, drd_status_string(s), drd_last_error());
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 5) {
    fprintf(stderr, "usage: %s MODEL.gguf [PROMPT] [NEW_TOKENS] [SEED]\n", argv[0]);
    return 2;
  }
  drd_model *model = NULL;
  drd_model_desc md = {.path = argv[1]};
  drd_status s = drd_model_create(&md, &model);
  if (s != DRD_OK) return fail("loading the model", s);

  /* a zeroed desc: default device, validation from DRDIFF_VALIDATE, the on-disk pipeline cache */
  drd_context_desc cd = {0};
  drd_context *ctx = NULL;
  s = drd_context_create(&cd, &ctx);
  drd_gen_params p;
  drd_gen_params_default(&p);
  if (s == DRD_ERROR_NO_VULKAN || s == DRD_ERROR_NO_DEVICE) {
    fprintf(stderr, "minimal: %s; generating on the CPU\n", drd_last_error());
    p.backend = DRD_BACKEND_CPU; /* ctx stays NULL: the CPU engine needs none */
  } else if (s != DRD_OK) {
    drd_model_destroy(model);
    return fail("opening the device", s);
  } else {
    fprintf(stderr, "minimal: on %s\n", drd_context_caps(ctx)->name);
  }

  p.prompt_text = argc > 2 ? argv[2] : "The history of the city";
  p.new_tokens = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 32;
  p.seed = argc > 4 ? strtoull(argv[4], NULL, 10) : 0;
  drd_gen_result r = {0};
  s = drd_generate(ctx, model, &p, &r);
  int rc = 0;
  if (s == DRD_OK) {
    printf("%s%s\n", p.prompt_text, r.text); /* the text continues the prompt */
    fprintf(stderr, "minimal: %u tokens, %.3f s\n", r.n_tokens, r.seconds_total);
  } else {
    rc = fail("generating", s);
  }
  drd_gen_result_free(&r);
  drd_context_destroy(ctx);
  drd_model_destroy(model);
  return rc;
}
