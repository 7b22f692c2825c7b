/* drdiff info: every Vulkan device with its capability record, and the default choice. */
#include <stdio.h>
#include <string.h>

#include "drdiff.h"
#include "drdiff_cli.h"

static const char *type_name(drd_device_type t) {
  switch (t) {
  case DRD_DEVICE_DISCRETE_GPU: return "discrete-gpu";
  case DRD_DEVICE_INTEGRATED_GPU: return "integrated-gpu";
  case DRD_DEVICE_VIRTUAL_GPU: return "virtual-gpu";
  case DRD_DEVICE_CPU: return "cpu";
  default: return "other";
  }
}

static const char *component_name(uint32_t t) {
  static const char *n[] = {"f16", "f32", "f64", "s8", "s16", "s32", "s64", "u8", "u16", "u32", "u64"};
  return t < sizeof n / sizeof *n ? n[t] : "?";
}

static void subgroup_ops(uint32_t ops, char *buf, size_t len) {
  static const char *n[] = {"basic", "vote", "arithmetic", "ballot", "shuffle", "shuffle_relative", "clustered", "quad"};
  buf[0] = 0;
  for (unsigned i = 0; i < 8; i++)
    if (ops & (1u << i)) {
      if (buf[0]) strncat(buf, ",", len - strlen(buf) - 1);
      strncat(buf, n[i], len - strlen(buf) - 1);
    }
}

static void print_text(const drd_device_caps *c, int chosen) {
  char ops[128];
  subgroup_ops(c->subgroup_ops, ops, sizeof ops);
  printf("%s device %u: %s\n", (int)c->index == chosen ? "*" : " ", c->index, c->name);
  printf("    vendor %s (0x%04x), device 0x%04x, type %s%s\n", c->vendor, c->vendor_id, c->device_id, type_name(c->type),
         c->portability_subset ? ", portability subset (layered implementation)" : "");
  printf("    driver %s (%s), version 0x%08x, Vulkan %u.%u.%u%s\n", c->driver_name, c->driver_info, c->driver_version,
         c->api_version >> 22, (c->api_version >> 12) & 0x3ff, c->api_version & 0xfff,
         c->api_ok ? "" : "  [unusable: needs Vulkan 1.2 + compute]");
  for (uint32_t h = 0; h < c->heap_count; h++)
    printf("    heap %u: %.0f MiB%s, budget %.0f MiB\n", h, c->heap_size[h] / 1048576.0,
           c->heap_device_local[h] ? " device-local" : "", c->heap_budget[h] / 1048576.0);
  printf("    subgroup %u (%s); sizes %u - %u, pipelines require the size %s, whole subgroups %s\n", c->subgroup_size,
         ops, c->min_subgroup_size, c->max_subgroup_size, c->subgroup_size_control ? "yes" : "no",
         c->full_subgroups ? "yes" : "no");
  printf("    shared memory %u B, workgroup %u invocations (%u,%u,%u), count (%u,%u,%u)\n", c->max_shared_memory,
         c->max_workgroup_invocations, c->max_workgroup_size[0], c->max_workgroup_size[1], c->max_workgroup_size[2],
         c->max_workgroup_count[0], c->max_workgroup_count[1], c->max_workgroup_count[2]);
  printf("    storage buffer range %llu B, offset alignment %llu, push constants %u B\n",
         (unsigned long long)c->max_storage_buffer_range, (unsigned long long)c->min_storage_buffer_offset_alignment,
         c->max_push_constants_size);
  printf("    fp16 arithmetic %s, 16-bit storage %s, int8 %s, 8-bit storage %s, timestamps %s\n",
         c->shader_float16 ? "yes" : "no", c->storage_16bit ? "yes" : "no", c->shader_int8 ? "yes" : "no",
         c->storage_8bit ? "yes" : "no", c->timestamps ? "yes" : "no");
  printf("    cooperative matrix: %s", c->coopmat ? "yes" : "no");
  for (uint32_t i = 0; i < c->coopmat_shape_count; i++) {
    const drd_coopmat_shape *s = &c->coopmat_shapes[i];
    printf("%s %ux%ux%u %s*%s+%s", i ? "," : "", s->m, s->n, s->k, component_name(s->a_type),
           component_name(s->b_type), component_name(s->c_type));
  }
  printf("\n");
  if (c->coopmat_m)
    printf("    cooperative-matrix kernels: %ux%ux%u f16*f16+f32%s\n", c->coopmat_m, c->coopmat_n, c->coopmat_k,
           c->coopmat_convert ? ", VK_NV_cooperative_matrix2 (accumulator-to-A conversion, row reductions, "
                                "per-element operations)"
                              : "");
  else if (c->coopmat && c->type == DRD_DEVICE_CPU)
    printf("    cooperative-matrix kernels: off on a CPU device, slower there than the scalar kernels "
           "(DRDIFF_CPU_COOPMAT=1 turns them on)\n");
  else
    printf("    cooperative-matrix kernels: off (scalar kernels)\n");
}

static void print_json(const drd_device_caps *c) {
  printf("{\"index\": %u, \"name\": ", c->index);
  drdiff_json_string(stdout, c->name);
  printf(", \"vendor\": \"%s\", \"vendor_id\": %u, \"device_id\": %u, \"type\": \"%s\", \"driver_name\": ", c->vendor,
         c->vendor_id, c->device_id, type_name(c->type));
  drdiff_json_string(stdout, c->driver_name);
  printf(", \"driver_info\": ");
  drdiff_json_string(stdout, c->driver_info);
  printf(", \"driver_version\": %u, \"api_version\": \"%u.%u.%u\", \"usable\": %s, \"heaps\": [", c->driver_version,
         c->api_version >> 22, (c->api_version >> 12) & 0x3ff, c->api_version & 0xfff, c->api_ok ? "true" : "false");
  for (uint32_t h = 0; h < c->heap_count; h++)
    printf("%s{\"size\": %llu, \"budget\": %llu, \"device_local\": %s}", h ? ", " : "",
           (unsigned long long)c->heap_size[h], (unsigned long long)c->heap_budget[h],
           c->heap_device_local[h] ? "true" : "false");
  char ops[128];
  subgroup_ops(c->subgroup_ops, ops, sizeof ops);
  printf("], \"memory_budget_ext\": %s, \"portability_subset\": %s, \"subgroup_size\": %u, \"subgroup_ops\": \"%s\", \"min_subgroup_size\": %u, "
         "\"max_subgroup_size\": %u, \"subgroup_size_required\": %s, \"full_subgroups\": %s, \"max_shared_memory\": %u, "
         "\"max_workgroup_invocations\": %u, \"max_workgroup_size\": [%u, %u, %u], \"max_workgroup_count\": [%u, %u, %u], "
         "\"max_storage_buffer_range\": %llu, \"min_storage_buffer_offset_alignment\": %llu, \"fp16\": %s, "
         "\"storage_16bit\": %s, \"int8\": %s, \"storage_8bit\": %s, \"timestamps\": %s, \"coopmat\": %s, "
         "\"coopmat_shapes\": [",
         c->has_memory_budget ? "true" : "false", c->portability_subset ? "true" : "false", c->subgroup_size, ops, c->min_subgroup_size, c->max_subgroup_size,
         c->subgroup_size_control ? "true" : "false", c->full_subgroups ? "true" : "false", c->max_shared_memory,
         c->max_workgroup_invocations, c->max_workgroup_size[0], c->max_workgroup_size[1], c->max_workgroup_size[2],
         c->max_workgroup_count[0], c->max_workgroup_count[1], c->max_workgroup_count[2],
         (unsigned long long)c->max_storage_buffer_range, (unsigned long long)c->min_storage_buffer_offset_alignment,
         c->shader_float16 ? "true" : "false", c->storage_16bit ? "true" : "false", c->shader_int8 ? "true" : "false",
         c->storage_8bit ? "true" : "false", c->timestamps ? "true" : "false", c->coopmat ? "true" : "false");
  for (uint32_t i = 0; i < c->coopmat_shape_count; i++) {
    const drd_coopmat_shape *s = &c->coopmat_shapes[i];
    printf("%s{\"m\": %u, \"n\": %u, \"k\": %u, \"a\": \"%s\", \"b\": \"%s\", \"c\": \"%s\", \"result\": \"%s\"}",
           i ? ", " : "", s->m, s->n, s->k, component_name(s->a_type), component_name(s->b_type),
           component_name(s->c_type), component_name(s->result_type));
  }
  printf("], \"coopmat_kernels\": ");
  if (c->coopmat_m)
    printf("{\"m\": %u, \"n\": %u, \"k\": %u, \"convert\": %s}", c->coopmat_m, c->coopmat_n, c->coopmat_k,
           c->coopmat_convert ? "true" : "false");
  else
    printf("null");
  printf("}");
}

/* What drd_model_get_info says of the model file, as text or as the JSON object "model". */
static void print_model(const char *path, const drd_model_info *m, int json) {
  if (json) {
    printf(", \"model\": {\"path\": ");
    drdiff_json_string(stdout, path);
    printf(", \"vocab_size\": %u, \"embed_dim\": %u, \"model_dim\": %u, \"layers\": %u, \"heads\": %u, "
           "\"experts\": %u, \"experts_max\": %u, \"context_length\": %u, \"max_tokens\": %u, "
           "\"default_steps\": %u, \"parameters\": %llu, \"bos_id\": %d, \"eos_id\": %d, \"pad_id\": %d}",
           m->vocab_size, m->embed_dim, m->model_dim, m->layers, m->heads, m->experts, m->experts_max,
           m->context_length, m->max_tokens, m->default_steps, (unsigned long long)m->parameters, m->bos_id,
           m->eos_id, m->pad_id);
    return;
  }
  printf("model %s: %.2f M parameters, V %u, de %u, d %u, %u layers of %u heads, %u experts (at most %u per token)\n",
         path, m->parameters / 1e6, m->vocab_size, m->embed_dim, m->model_dim, m->layers, m->heads, m->experts,
         m->experts_max);
  printf("    trained at %u tokens (drdiff takes up to %u), %u steps by default\n", m->context_length, m->max_tokens,
         m->default_steps);
}

int drdiff_cmd_info(int argc, char **argv) {
  int json = 0;
  const char *model_path = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = 1;
    else if (!strcmp(argv[i], "-m") && i + 1 < argc) model_path = argv[++i];
    else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      printf("usage: drdiff info [-m MODEL.gguf] [--json]\n"
             "Lists every Vulkan device; '*' marks the one drdiff uses (DRDIFF_DEVICE=<index|name> overrides).\n"
             "With -m, also the model's sizes, parameter count, trained length and default steps.\n");
      return 0;
    } else {
      fprintf(stderr, "drdiff info: unknown option '%s'\n", argv[i]);
      return 2;
    }
  }
  drd_model_info model = {0};
  if (model_path) {
    drd_model *m = NULL;
    drd_status ms = drd_model_create(&(drd_model_desc){.path = model_path}, &m);
    if (ms == DRD_OK) ms = drd_model_get_info(m, &model);
    drd_model_destroy(m);
    if (ms != DRD_OK) {
      fprintf(stderr, "drdiff info: %s: %s\n", drd_status_string(ms), drd_last_error());
      return 1;
    }
  }
  drd_device_caps caps[DRD_MAX_DEVICES];
  uint32_t n = 0;
  int chosen = -1;
  drd_status s = drd_enumerate_devices(caps, DRD_MAX_DEVICES, &n, &chosen);
  if (s != DRD_OK) {
    fprintf(stderr, "drdiff info: %s: %s\n", drd_status_string(s), drd_last_error());
    return 1;
  }
  if (json) {
    printf("{\"devices\": [");
    for (uint32_t i = 0; i < n; i++) {
      if (i) printf(", ");
      print_json(&caps[i]);
    }
    printf("], \"chosen\": %d", chosen);
    if (model_path) print_model(model_path, &model, 1);
    printf("}\n");
  } else {
    if (n == 0) printf("no Vulkan devices\n");
    for (uint32_t i = 0; i < n; i++) print_text(&caps[i], chosen);
    if (chosen >= 0) printf("drdiff would use device %d (%s)\n", chosen, caps[chosen].name);
    else printf("no usable device\n");
    if (model_path) print_model(model_path, &model, 0);
  }
  return chosen >= 0 ? 0 : 1;
}
