/* Compute pipelines from the embedded SPIR-V, keyed by shader name and specialization
 * constants, created on first use and kept for the context's life. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"
#include "vk_shaders.h"

static drd_pipeline *find(drd_context *ctx, const drd_pipeline_desc *d) {
  for (drd_pipeline *p = ctx->pipelines; p; p = p->next)
    if (!strcmp(p->shader, d->shader) && p->n_spec == d->n_spec && p->n_bindings == d->n_bindings &&
        p->push_size == d->push_size && !memcmp(p->spec, d->spec, d->n_spec * sizeof *d->spec))
      return p;
  return NULL;
}

static void destroy_one(drd_context *ctx, drd_pipeline *p) {
  if (p->pipeline) vkDestroyPipeline(ctx->device, p->pipeline, NULL);
  if (p->layout) vkDestroyPipelineLayout(ctx->device, p->layout, NULL);
  if (p->set_layout) vkDestroyDescriptorSetLayout(ctx->device, p->set_layout, NULL);
  free(p);
}

drd_status drd_pipeline_get(drd_context *ctx, const drd_pipeline_desc *d, drd_pipeline **out) {
  drd_status status = DRD_OK;
  VkShaderModule module = VK_NULL_HANDLE;
  *out = find(ctx, d);
  if (*out) return DRD_OK;
  const drd_shader_entry *e = drd_shader_find(d->shader);
  if (!e) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "no embedded shader named '%s'", d->shader);
  if (d->n_spec > DRD_MAX_SPEC || d->n_bindings > DRD_MAX_BINDINGS || strlen(d->shader) >= sizeof((drd_pipeline *)0)->shader)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "pipeline %s: too many constants or bindings", d->shader);
  if (d->n_spec == 0 || d->spec[0] == 0)
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "pipeline %s: no workgroup size (specialization constant 0)", d->shader);
  if (d->push_size > ctx->caps.max_push_constants_size)
    return drd_fail(DRD_ERROR_UNSUPPORTED, "pipeline %s needs %u bytes of push constants, device has %u", d->shader,
                    d->push_size, ctx->caps.max_push_constants_size);
  drd_pipeline *p = calloc(1, sizeof *p);
  if (!p) return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  snprintf(p->shader, sizeof p->shader, "%s", d->shader);
  p->n_spec = d->n_spec;
  p->n_bindings = d->n_bindings;
  p->push_size = d->push_size;
  if (d->n_spec) memcpy(p->spec, d->spec, d->n_spec * sizeof *d->spec);

  VkDescriptorSetLayoutBinding b[DRD_MAX_BINDINGS];
  for (uint32_t i = 0; i < d->n_bindings; i++)
    b[i] = (VkDescriptorSetLayoutBinding){
        .binding = i,
        .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
        .descriptorCount = 1,
        .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
    };
  VkDescriptorSetLayoutCreateInfo dlci = {
      .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
      .bindingCount = d->n_bindings,
      .pBindings = b,
  };
  VK_CHECK(vkCreateDescriptorSetLayout(ctx->device, &dlci, NULL, &p->set_layout));
  VkPushConstantRange pcr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = d->push_size};
  VkPipelineLayoutCreateInfo plci = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
      .setLayoutCount = 1,
      .pSetLayouts = &p->set_layout,
      .pushConstantRangeCount = d->push_size ? 1 : 0,
      .pPushConstantRanges = &pcr,
  };
  VK_CHECK(vkCreatePipelineLayout(ctx->device, &plci, NULL, &p->layout));
  VkShaderModuleCreateInfo smci = {
      .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
      .codeSize = *e->size,
      .pCode = e->code,
  };
  VK_CHECK(vkCreateShaderModule(ctx->device, &smci, NULL, &module));
  VkSpecializationMapEntry map[DRD_MAX_SPEC];
  for (uint32_t i = 0; i < d->n_spec; i++)
    map[i] = (VkSpecializationMapEntry){.constantID = i, .offset = i * 4, .size = 4};
  VkSpecializationInfo si = {
      .mapEntryCount = d->n_spec,
      .pMapEntries = map,
      .dataSize = d->n_spec * 4,
      .pData = p->spec,
  };
  /* The kernels are specialized for caps.subgroup_size and count on whole subgroups. A device
   * whose subgroups can vary guarantees both only when asked: ask wherever the device lets a
   * pipeline of this workgroup size do so (elsewhere it runs them anyway). */
  const drd_device_caps *c = &ctx->caps;
  const uint32_t wg = d->spec[0];
  if (c->subgroup_size_control && wg <= (uint64_t)c->max_workgroup_subgroups * c->subgroup_size)
    p->required_subgroup_size = c->subgroup_size;
  p->full_subgroups =
      c->full_subgroups && wg % (p->required_subgroup_size ? p->required_subgroup_size : c->max_subgroup_size) == 0;
  VkPipelineShaderStageRequiredSubgroupSizeCreateInfo required = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO,
      .requiredSubgroupSize = p->required_subgroup_size,
  };
  VkComputePipelineCreateInfo cpci = {
      .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
      .stage =
          {
              .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
              .pNext = p->required_subgroup_size ? &required : NULL,
              .flags = p->full_subgroups ? VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT : 0,
              .stage = VK_SHADER_STAGE_COMPUTE_BIT,
              .module = module,
              .pName = "main",
              .pSpecializationInfo = d->n_spec ? &si : NULL,
          },
      .layout = p->layout,
      .flags = ctx->pipeline_stats ? VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR : 0,
  };
  VK_CHECK(vkCreateComputePipelines(ctx->device, ctx->pipeline_cache, 1, &cpci, NULL, &p->pipeline));
  drd_log(DRD_LOG_DEBUG, "pipeline %s: workgroup %u, subgroup size %s%u, %s subgroups", d->shader, wg,
          p->required_subgroup_size ? "required " : "", c->subgroup_size, p->full_subgroups ? "whole" : "any");
  vkDestroyShaderModule(ctx->device, module, NULL);
  if (ctx->pipeline_stats) drd_pipeline_stats_log(ctx, p);
  p->next = ctx->pipelines;
  ctx->pipelines = p;
  *out = p;
  return DRD_OK;
cleanup:
  if (module) vkDestroyShaderModule(ctx->device, module, NULL);
  destroy_one(ctx, p);
  return status;
}

void drd_pipelines_destroy(drd_context *ctx) {
  while (ctx->pipelines) {
    drd_pipeline *next = ctx->pipelines->next;
    destroy_one(ctx, ctx->pipelines);
    ctx->pipelines = next;
  }
}
