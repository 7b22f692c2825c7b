/* The runtime's plumbing on a real device: buffers, uploads, recorded sequences replayed with
 * new inputs, automatic barriers, sequences submitted as a group, chunking under a small
 * binding range, host-visible buffers, the on-disk pipeline cache (valid, corrupt, truncated),
 * and clear errors for impossible requests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "push_constants.h"
#include "util_gpu.h"
#include "vk_shaders.h"
#include "util_expect.h"
#include "util_rand.h"


static int warnings;
static void count_warnings(drd_log_level level, const char *msg, void *user) {
  (void)user;
  if (level == DRD_LOG_WARN) warnings++;
  fprintf(stderr, "  log: %s\n", msg);
}

/* fresh random a, b, c uploaded to ba, bb, bc */
static void new_inputs(drd_context *ctx, drd_rng *rng, float *const host[3], const drd_buffer *const dev[3],
                       uint64_t n) {
  for (int i = 0; i < 3; i++) {
    drd_fill_uniform(rng, host[i], n, -2, 2);
    drd_test_check(drd_buffer_upload(ctx, dev[i], 0, host[i], n * 4), "upload");
  }
}

/* elements of r that are not ((a + b) * c) * 0.5 exactly */
static uint64_t count_wrong(const float *a, const float *b, const float *c, const float *r, uint64_t n) {
  uint64_t bad = 0;
  for (uint64_t i = 0; i < n; i++)
    if (!(r[i] == ((a[i] + b[i]) * c[i]) * 0.5f)) bad++;
  return bad;
}

/* a+b then (a+b)*c in one sequence: the second dispatch must see the first one's result */
static void test_replay_and_barriers(drd_context *ctx, drd_rng *rng, uint64_t n) {
  float *a = malloc(n * 4), *b = malloc(n * 4), *c = malloc(n * 4), *r = malloc(n * 4);
  drd_buffer ba = drd_test_buffer_f32(ctx, NULL, n), bb = drd_test_buffer_f32(ctx, NULL, n);
  drd_buffer bc = drd_test_buffer_f32(ctx, NULL, n), t = drd_test_buffer_f32(ctx, NULL, n);
  drd_buffer o = drd_test_buffer_f32(ctx, NULL, n);
  drd_seq *s;
  drd_test_check(drd_seq_begin(ctx, &s), "seq_begin");
  drd_test_check(drd_op_eltwise(s, DRD_ELT_ADD, &ba, &bb, &t, n, 0), "add");
  drd_test_check(drd_op_eltwise(s, DRD_ELT_MUL, &t, &bc, &o, n, 0), "mul");
  drd_test_check(drd_op_eltwise(s, DRD_ELT_SCALE, &o, NULL, &o, n, 0.5f), "scale in place");
  drd_test_check(drd_seq_end(s), "seq_end");
  for (int round = 0; round < 3; round++) { /* the same recording, fresh inputs each time */
    new_inputs(ctx, rng, (float *const[3]){a, b, c}, (const drd_buffer *const[3]){&ba, &bb, &bc}, n);
    drd_test_check(drd_seq_run(s), "seq_run");
    drd_test_download_f32(ctx, &o, r, n);
    uint64_t bad = count_wrong(a, b, c, r, n);
    EXPECT(bad == 0, "replay round %d, n=%llu: %llu wrong elements", round, (unsigned long long)n,
           (unsigned long long)bad);
  }
  drd_seq_destroy(s);
  drd_buffer *bufs[] = {&ba, &bb, &bc, &t, &o};
  for (int i = 0; i < 5; i++) drd_buffer_destroy(ctx, bufs[i]);
  free(a), free(b), free(c), free(r);
}

/* (a+b)*c*0.5 again, as three sequences submitted as one group: each waits for the others'
 * writes through the queue's order, a member may be waited for before or after the group's
 * last one, a member in flight cannot be submitted again, members may be destroyed while in
 * flight, timestamps written at each sequence's end come back in order, and drd_seq_finished
 * says a sequence is finished before it is submitted and, for every member, once the group is */
static void test_group_submit(drd_context *ctx, drd_rng *rng, uint64_t n) {
  float *a = malloc(n * 4), *b = malloc(n * 4), *c = malloc(n * 4), *r = malloc(n * 4);
  drd_buffer ba = drd_test_buffer_f32(ctx, NULL, n), bb = drd_test_buffer_f32(ctx, NULL, n);
  drd_buffer bc = drd_test_buffer_f32(ctx, NULL, n), t = drd_test_buffer_f32(ctx, NULL, n);
  drd_buffer o = drd_test_buffer_f32(ctx, NULL, n);
  VkQueryPool pool = VK_NULL_HANDLE;
  bool stamps = ctx->caps.timestamps;
  if (stamps) {
    VkQueryPoolCreateInfo qci = {
        .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO, .queryType = VK_QUERY_TYPE_TIMESTAMP, .queryCount = 3};
    EXPECT(vkCreateQueryPool(ctx->device, &qci, NULL, &pool) == VK_SUCCESS, "vkCreateQueryPool");
  }
  drd_seq *s[3];
  for (int i = 0; i < 3; i++) drd_test_check(drd_seq_begin(ctx, &s[i]), "seq_begin");
  drd_test_check(drd_op_eltwise(s[0], DRD_ELT_ADD, &ba, &bb, &t, n, 0), "add");
  drd_test_check(drd_op_eltwise(s[1], DRD_ELT_MUL, &t, &bc, &o, n, 0), "mul");
  drd_test_check(drd_op_eltwise(s[2], DRD_ELT_SCALE, &o, NULL, &o, n, 0.5f), "scale in place");
  for (int i = 0; i < 3; i++) {
    if (pool) drd_seq_stamp(s[i], pool, (uint32_t)i);
    drd_test_check(drd_seq_end(s[i]), "seq_end");
  }
  static const int order[2][3] = {{0, 2, 1}, {2, 1, 0}}; /* a member first; the last one first */
  for (int round = 0; round < 2; round++) {
    new_inputs(ctx, rng, (float *const[3]){a, b, c}, (const drd_buffer *const[3]){&ba, &bb, &bc}, n);
    for (int i = 0; i < 3; i++) EXPECT(drd_seq_finished(s[i]), "sequence %d not in flight is not finished", i);
    drd_test_check(drd_seq_submit_group(s, 3), "submit_group");
    EXPECT(drd_seq_submit(s[1]) == DRD_ERROR_INVALID_ARGUMENT, "a member in flight was submitted again");
    if (round == 0) { /* the pacing's poll (never blocks): a member is finished when the group is */
      const double give_up = drd_now_s() + 60.0;
      while (!drd_seq_finished(s[0]) && drd_now_s() < give_up) drd_sleep_until_s(drd_now_s() + 1e-3);
      EXPECT(drd_seq_finished(s[0]) && drd_seq_finished(s[1]) && drd_seq_finished(s[2]),
             "the group's members are not all finished once the first member is");
    }
    for (int i = 0; i < 3; i++) drd_test_check(drd_seq_wait(s[order[round][i]]), "wait");
    drd_test_download_f32(ctx, &o, r, n);
    uint64_t bad = count_wrong(a, b, c, r, n);
    EXPECT(bad == 0, "group round %d, n=%llu: %llu wrong elements", round, (unsigned long long)n,
           (unsigned long long)bad);
    if (pool) {
      uint64_t ticks[3];
      EXPECT(vkGetQueryPoolResults(ctx->device, pool, 0, 3, sizeof ticks, ticks, sizeof *ticks,
                                   VK_QUERY_RESULT_64_BIT) == VK_SUCCESS,
             "timestamps not available after the group's wait");
      double d01 = drd_ticks_seconds(ctx, ticks[0], ticks[1]), d12 = drd_ticks_seconds(ctx, ticks[1], ticks[2]);
      EXPECT(d01 >= 0 && d12 >= 0 && d01 + d12 < 60, "timestamps out of order: %g s, %g s", d01, d12);
    }
  }
  /* destroyed in flight, a member first and one after the group's last one is gone */
  drd_test_check(drd_seq_submit_group(s, 3), "submit_group");
  drd_seq_destroy(s[0]);
  drd_seq_destroy(s[2]);
  drd_seq_destroy(s[1]);
  if (pool) vkDestroyQueryPool(ctx->device, pool, NULL);
  drd_buffer *bufs[] = {&ba, &bb, &bc, &t, &o};
  for (int i = 0; i < 5; i++) drd_buffer_destroy(ctx, bufs[i]);
  free(a), free(b), free(c), free(r);
}

static void test_errors(drd_context *ctx) {
  drd_buffer b;
  EXPECT(drd_buffer_create(ctx, 0, &b) == DRD_ERROR_INVALID_ARGUMENT, "size 0 accepted");
  drd_status s = drd_buffer_create(ctx, 1ull << 46, &b); /* 64 TiB */
  EXPECT(s == DRD_ERROR_OUT_OF_DEVICE_MEMORY, "64 TiB allocation gave %s", drd_status_string(s));
  EXPECT(strlen(drd_last_error()) > 0, "no message for the failed allocation");
  drd_context *none = NULL;
  s = drd_context_create(&(drd_context_desc){.device = "no-such-device-xyz", .pipeline_cache_path = ""}, &none);
  EXPECT(s == DRD_ERROR_NO_DEVICE && none == NULL, "unknown device name gave %s", drd_status_string(s));
  drd_context_destroy(NULL); /* must be a no-op */
}

/* Every pipeline asks for the subgroup size its kernels are specialized for, and for whole
 * subgroups where its workgroup is a multiple of that, wherever the device lets it (the
 * validation layer checks that the request is legal); a pipeline without its workgroup size
 * (specialization constant 0) is refused. */
static void test_pipeline_subgroups(drd_context *ctx) {
  const drd_device_caps *c = drd_context_caps(ctx);
  const uint32_t sizes[2] = {c->subgroup_size * 2 <= c->max_workgroup_invocations ? c->subgroup_size * 2 : c->subgroup_size,
                             c->subgroup_size + 1};
  for (int i = 0; i < 2; i++) {
    uint32_t spec[2] = {sizes[i], DRD_ELT_SILU};
    drd_pipeline *p;
    drd_test_check(drd_pipeline_get(ctx, &(drd_pipeline_desc){"eltwise_f32", 3, sizeof(drd_pc_eltwise), 2, spec}, &p),
                   "eltwise pipeline");
    /* whole subgroups of the required size, or of any size the device may pick */
    const bool whole = sizes[i] % (c->subgroup_size_control ? c->subgroup_size : c->max_subgroup_size) == 0;
    EXPECT(p->required_subgroup_size == (c->subgroup_size_control ? c->subgroup_size : 0u),
           "workgroup %u: subgroup size %u required (device: control %d, size %u)", sizes[i], p->required_subgroup_size,
           c->subgroup_size_control, c->subgroup_size);
    EXPECT(p->full_subgroups == (c->full_subgroups && whole),
           "workgroup %u: whole subgroups %s (device: %d)", sizes[i], p->full_subgroups ? "asked" : "not asked",
           c->full_subgroups);
  }
  drd_pipeline *p;
  EXPECT(drd_pipeline_get(ctx, &(drd_pipeline_desc){"eltwise_f32", 3, sizeof(drd_pc_eltwise), 0, NULL}, &p) ==
             DRD_ERROR_INVALID_ARGUMENT,
         "a pipeline without its workgroup size accepted");
  fprintf(stderr, "subgroups: size %u (device range %u - %u), required %s, whole %s\n", c->subgroup_size,
          c->min_subgroup_size, c->max_subgroup_size, c->subgroup_size_control ? "yes" : "no",
          c->full_subgroups ? "yes" : "no");
}

/* Sets NAME to value (NULL: unsets it) and returns its old value (free() it), for restore_env. */
static char *set_env(const char *name, const char *value) {
  const char *old = getenv(name);
  char *saved = old ? strdup(old) : NULL;
  if (value) setenv(name, value, 1);
  else unsetenv(name);
  return saved;
}

static void restore_env(const char *name, char *saved) {
  free(set_env(name, saved));
  free(saved);
}

/* The numeric switches are read strictly: a malformed value is refused by drd_context_create and
 * drd_enumerate_devices with the variable's name (not ignored, which would run a fallback test
 * without its fallback); well-formed ones, with a size suffix where they are sizes, take effect. */
static void test_env_switches(void) {
  const struct {
    const char *name, *value;
  } bad[] = {{"DRDIFF_TIMEOUT_MS", "5s"},          {"DRDIFF_TIMEOUT_MS", "1K"},
             {"DRDIFF_TIMEOUT_MS", "4294967296"},  {"DRDIFF_TIMEOUT_MS", "0"},
             {"DRDIFF_MAX_BUFFER_RANGE", "1MiB"},  {"DRDIFF_MAX_BUFFER_RANGE", "-1"},
             {"DRDIFF_MAX_SHARED_MEMORY", "16 K"}, {"DRDIFF_MAX_SHARED_MEMORY", "4G"},
             {"DRDIFF_MAX_SHARED_MEMORY", "0x4000"}};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char *saved = set_env(bad[i].name, bad[i].value);
    drd_context *ctx = NULL;
    drd_status s = drd_context_create(&(drd_context_desc){.pipeline_cache_path = ""}, &ctx);
    EXPECT(s == DRD_ERROR_INVALID_ARGUMENT && !ctx && strstr(drd_last_error(), bad[i].name),
           "%s='%s': drd_context_create gave %s (%s)", bad[i].name, bad[i].value, drd_status_string(s), drd_last_error());
    drd_context_destroy(ctx);
    drd_device_caps caps[DRD_MAX_DEVICES];
    uint32_t n = 0;
    s = drd_enumerate_devices(caps, DRD_MAX_DEVICES, &n, NULL);
    EXPECT(s == DRD_ERROR_INVALID_ARGUMENT && strstr(drd_last_error(), bad[i].name),
           "%s='%s': drd_enumerate_devices gave %s", bad[i].name, bad[i].value, drd_status_string(s));
    restore_env(bad[i].name, saved);
  }
  char *saved[3] = {set_env("DRDIFF_MAX_SHARED_MEMORY", "16K"), set_env("DRDIFF_MAX_BUFFER_RANGE", "1M"),
                    set_env("DRDIFF_TIMEOUT_MS", "1234")};
  drd_context *ctx = NULL;
  drd_status s = drd_context_create(&(drd_context_desc){.pipeline_cache_path = ""}, &ctx);
  EXPECT(s == DRD_OK, "well-formed switches refused: %s", drd_last_error());
  if (s == DRD_OK) {
    const drd_device_caps *c = drd_context_caps(ctx);
    EXPECT(c->max_shared_memory == 16384 && c->max_storage_buffer_range <= (1u << 20) &&
               ctx->timeout_ns == 1234000000ull,
           "16K / 1M / 1234 gave shared memory %u, range %llu, timeout %llu ns", c->max_shared_memory,
           (unsigned long long)c->max_storage_buffer_range, (unsigned long long)ctx->timeout_ns);
  }
  drd_context_destroy(ctx);
  restore_env("DRDIFF_MAX_SHARED_MEMORY", saved[0]);
  restore_env("DRDIFF_MAX_BUFFER_RANGE", saved[1]);
  restore_env("DRDIFF_TIMEOUT_MS", saved[2]);
}

/* A CPU device runs the scalar kernels even where it offers cooperative matrices (it emulates
 * them lane by lane, runtime/vk_caps.c), unless DRDIFF_CPU_COOPMAT=1; a GPU's choice does not
 * depend on that switch. Where a CPU device has everything the kernels need (Mesa 26's
 * lavapipe), the switch must turn them on. */
static void test_cpu_coopmat_default(void) {
  drd_device_caps off[DRD_MAX_DEVICES], on[DRD_MAX_DEVICES];
  uint32_t n_off = 0, n_on = 0;
  char *saved = set_env("DRDIFF_CPU_COOPMAT", NULL);
  drd_status s1 = drd_enumerate_devices(off, DRD_MAX_DEVICES, &n_off, NULL);
  set_env("DRDIFF_CPU_COOPMAT", "1");
  drd_status s2 = drd_enumerate_devices(on, DRD_MAX_DEVICES, &n_on, NULL);
  restore_env("DRDIFF_CPU_COOPMAT", saved);
  EXPECT(s1 == DRD_OK && s2 == DRD_OK && n_off == n_on, "enumeration: %s / %s, %u / %u devices",
         drd_status_string(s1), drd_status_string(s2), n_off, n_on);
  for (uint32_t i = 0; i < n_off && i < n_on; i++) {
    const drd_device_caps *a = &off[i], *b = &on[i];
    if (a->type != DRD_DEVICE_CPU) {
      EXPECT(a->coopmat_m == b->coopmat_m && a->coopmat_convert == b->coopmat_convert,
             "%s: DRDIFF_CPU_COOPMAT changed a GPU's kernels", a->name);
      continue;
    }
    EXPECT(!a->coopmat_m && !a->coopmat_convert, "%s: a CPU device got cooperative-matrix kernels by default",
           a->name);
    bool shape = false; /* f16 x f16 + f32 at subgroup scope (VkComponentTypeKHR 0 / 1, VkScopeKHR 3) */
    for (uint32_t j = 0; j < b->coopmat_shape_count; j++) {
      const drd_coopmat_shape *sh = &b->coopmat_shapes[j];
      shape |= sh->a_type == 0 && sh->b_type == 0 && sh->c_type == 1 && sh->result_type == 1 && sh->scope == 3;
    }
    bool able = b->coopmat && shape && b->shader_float16 && b->storage_16bit && b->memory_model &&
                drd_shader_find("gemm_cm");
    EXPECT(!able || b->coopmat_m, "%s: DRDIFF_CPU_COOPMAT=1 did not turn the kernels on", b->name);
    fprintf(stderr, "%s: cooperative-matrix kernels off by default, %s with DRDIFF_CPU_COOPMAT=1\n", b->name,
            b->coopmat_m ? "on" : "still off (not offered)");
  }
}

/* drd_buffer_create_host: mapped, not counted against the device heap, its own block (never
 * handed out to device tensors), given back on destroy; a kernel writes it and the host reads
 * the result by memcpy, again after a second run with new contents written by the host. */
static void test_host_buffers(drd_context *ctx, drd_rng *rng, uint64_t n) {
  const uint64_t in_use = ctx->alloc.bytes_in_use, allocated = ctx->alloc.bytes_allocated;
  drd_buffer hb;
  EXPECT(drd_buffer_create_host(ctx, 0, &hb) == DRD_ERROR_INVALID_ARGUMENT, "host buffer of size 0 accepted");
  drd_test_check(drd_buffer_create_host(ctx, n * 4, &hb), "host buffer");
  EXPECT(hb.mapped != NULL, "host buffer not mapped");
  EXPECT(ctx->alloc.bytes_in_use == in_use && ctx->alloc.bytes_allocated == allocated,
         "a host buffer changed the device accounting (%llu -> %llu in use)", (unsigned long long)in_use,
         (unsigned long long)ctx->alloc.bytes_in_use);
  drd_buffer dev = drd_test_buffer_f32(ctx, NULL, n);
  EXPECT(dev.block != hb.block, "a device tensor was placed in the host buffer's block");
  float *x = malloc(n * 4), *got = malloc(n * 4);
  drd_seq *q = NULL;
  drd_test_check(drd_seq_begin(ctx, &q), "host buffer: begin");
  drd_test_check(drd_op_eltwise(q, DRD_ELT_ADD, &hb, &hb, &dev, n, 0), "host buffer: record read");
  drd_test_check(drd_op_eltwise(q, DRD_ELT_ADD, &dev, &dev, &hb, n, 0), "host buffer: record write");
  drd_test_check(drd_seq_end(q), "host buffer: end");
  for (int run = 0; run < 2; run++) {
    for (uint64_t i = 0; i < n; i++) x[i] = drd_rng_uniform(rng, -1.0f, 1.0f);
    drd_test_check(drd_buffer_upload(ctx, &hb, 0, x, n * 4), "host buffer: upload");
    drd_test_check(drd_seq_run(q), "host buffer: run");
    drd_test_check(drd_buffer_download(ctx, &hb, 0, got, n * 4), "host buffer: download");
    uint64_t wrong = 0;
    for (uint64_t i = 0; i < n; i++) wrong += got[i] != 4.0f * x[i];
    EXPECT(wrong == 0, "host buffer, run %d: %llu of %llu values are not 4 x (exact in f32)", run,
           (unsigned long long)wrong, (unsigned long long)n);
  }
  drd_seq_destroy(q);
  drd_buffer_destroy(ctx, &hb);
  drd_buffer_destroy(ctx, &dev);
  /* a destroyed host buffer gives its block back: its slot is reused, not added to */
  const uint32_t blocks = ctx->alloc.n_blocks;
  for (int i = 0; i < 100; i++) {
    drd_test_check(drd_buffer_create_host(ctx, 4096, &hb), "host buffer again");
    drd_buffer_destroy(ctx, &hb);
  }
  EXPECT(ctx->alloc.n_blocks <= blocks + 1, "100 host buffers made and destroyed left %u block slots (%u before)",
         ctx->alloc.n_blocks, blocks);
  free(x), free(got);
}

static void run_small_kernel(drd_context *ctx) {
  drd_buffer a = drd_test_buffer_f32(ctx, (float[]){1, 2, 3}, 3), o = drd_test_buffer_f32(ctx, NULL, 3);
  drd_seq *s;
  drd_test_check(drd_seq_begin(ctx, &s), "seq_begin");
  drd_test_check(drd_op_eltwise(s, DRD_ELT_SILU, &a, NULL, &o, 3, 0), "silu");
  drd_test_check(drd_seq_end(s), "seq_end");
  drd_test_check(drd_seq_run(s), "seq_run");
  drd_seq_destroy(s);
  drd_buffer_destroy(ctx, &a);
  drd_buffer_destroy(ctx, &o);
}

static void test_pipeline_cache(void) {
  char dir[] = "/tmp/drdiff-cache-XXXXXX";
  if (!mkdtemp(dir)) {
    EXPECT(0, "mkdtemp failed");
    return;
  }
  char path[256];
  snprintf(path, sizeof path, "%s/sub/pipelines.bin", dir);
  drd_log_set(count_warnings, NULL, DRD_LOG_WARN);
  for (int pass = 0; pass < 4; pass++) {
    if (pass == 2) { /* corrupt one payload byte: the checksum must catch it */
      FILE *f = fopen(path, "r+b");
      struct stat st;
      EXPECT(f != NULL && stat(path, &st) == 0, "cache file missing");
      if (f) {
        long mid = 48 + ((long)st.st_size - 48) / 2; /* inside the payload, after our header */
        fseek(f, mid, SEEK_SET);
        int ch = fgetc(f);
        fseek(f, mid, SEEK_SET);
        fputc(ch ^ 0x5a, f);
        fclose(f);
      }
    }
    if (pass == 3) EXPECT(truncate(path, 40) == 0, "truncate failed");
    warnings = 0;
    drd_context *ctx = NULL;
    drd_test_check(drd_context_create(&(drd_context_desc){.validation = 1, .pipeline_cache_path = path}, &ctx),
                   "context with cache");
    run_small_kernel(ctx);
    EXPECT(drd_context_validation_messages(ctx) == 0, "validation messages with the pipeline cache");
    drd_context_destroy(ctx);
    struct stat st;
    EXPECT(stat(path, &st) == 0 && st.st_size > 48, "pass %d: cache not written", pass);
    if (pass <= 1) EXPECT(warnings == 0, "pass %d: %d warnings for a valid (or absent) cache", pass, warnings);
    else EXPECT(warnings == 1, "pass %d: a %s cache gave %d warnings, want 1", pass,
                pass == 2 ? "corrupt" : "truncated", warnings);
  }
  drd_log_set(NULL, NULL, DRD_LOG_WARN);
  remove(path);
  snprintf(path, sizeof path, "%s/sub", dir);
  rmdir(path);

  /* the default file under DRDIFF_CACHE_DIR carries the driver's cache UUID in its name */
  char *saved = set_env("DRDIFF_CACHE_DIR", dir);
  drd_context *ctx = NULL;
  drd_test_check(drd_context_create(&(drd_context_desc){.validation = 1}, &ctx), "context with the default cache");
  if (ctx) {
    const drd_device_caps *c = drd_context_caps(ctx);
    const uint8_t *u = c->pipeline_cache_uuid;
    snprintf(path, sizeof path, "%s/pipelines-%04x-%04x-%02x%02x%02x%02x%02x%02x%02x%02x.bin", dir, c->vendor_id,
             c->device_id, u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7]);
    run_small_kernel(ctx);
    drd_context_destroy(ctx);
    struct stat st;
    EXPECT(stat(path, &st) == 0 && st.st_size > 48, "default cache %s not written", path);
    remove(path);
  }
  restore_env("DRDIFF_CACHE_DIR", saved);
  EXPECT(rmdir(dir) == 0, "%s holds other files than the expected cache", dir);
}

/* DRDIFF_PIPELINE_STATS=1: either the device offers the driver's statistics (a line of
 * name=value pairs per pipeline executable) or one notice says it does not; never both, never
 * silence, and no validation message either way */
static int stats_lines, stats_empty, stats_notices;
static void count_stats(drd_log_level level, const char *msg, void *user) {
  (void)user;
  if (level != DRD_LOG_INFO) return;
  if (!strncmp(msg, "pipeline stats: ", 16)) {
    stats_lines++;
    stats_empty += strchr(msg, '=') == NULL;
    fprintf(stderr, "  %s\n", msg);
  } else if (strstr(msg, "DRDIFF_PIPELINE_STATS")) {
    stats_notices++;
  }
}

static void test_pipeline_stats(void) {
  setenv("DRDIFF_PIPELINE_STATS", "1", 1);
  drd_log_set(count_stats, NULL, DRD_LOG_INFO);
  drd_context *ctx = NULL;
  drd_test_check(drd_context_create(&(drd_context_desc){.validation = 1, .pipeline_cache_path = ""}, &ctx),
                 "context with pipeline statistics");
  run_small_kernel(ctx);
  EXPECT(drd_context_validation_messages(ctx) == 0, "validation messages with pipeline statistics");
  drd_context_destroy(ctx);
  drd_log_set(NULL, NULL, DRD_LOG_WARN);
  unsetenv("DRDIFF_PIPELINE_STATS");
  EXPECT((stats_notices == 1 && stats_lines == 0) || (stats_notices == 0 && stats_lines >= 1 && stats_empty == 0),
         "pipeline statistics: %d notices, %d lines (%d without a value)", stats_notices, stats_lines, stats_empty);
  printf("pipeline statistics: %s\n", stats_lines ? "offered and logged" : "not offered by this device (notice logged)");
}

int main(void) {
  uint64_t seed = drd_test_seed();
  drd_rng rng = {seed};
  drd_context *ctx = drd_test_context();
  const drd_device_caps *c = drd_context_caps(ctx);
  EXPECT(c->subgroup_size >= 1 && c->max_shared_memory >= 16384 && c->max_storage_buffer_range >= 65536,
         "implausible caps");
  test_replay_and_barriers(ctx, &rng, 1);
  test_replay_and_barriers(ctx, &rng, 1000003);
  test_group_submit(ctx, &rng, 1);
  test_group_submit(ctx, &rng, 300007);
  test_host_buffers(ctx, &rng, 1);
  test_host_buffers(ctx, &rng, 100003);
  test_errors(ctx);
  test_pipeline_subgroups(ctx);
  int rc = drd_test_finish(ctx);
  test_env_switches();
  test_cpu_coopmat_default();

  /* a 64 KiB binding limit forces every op above to split into chunks */
  setenv("DRDIFF_MAX_BUFFER_RANGE", "65536", 1);
  ctx = drd_test_context();
  EXPECT(drd_context_caps(ctx)->max_storage_buffer_range == 65536, "range switch ignored");
  test_replay_and_barriers(ctx, &rng, 100003);
  rc |= drd_test_finish(ctx);
  unsetenv("DRDIFF_MAX_BUFFER_RANGE");

  test_pipeline_cache();
  test_pipeline_stats();
  if (drd_test_failures || rc) fprintf(stderr, "test_vk_runtime: %d failures (seed %llu)\n", drd_test_failures, (unsigned long long)seed);
  return drd_test_failures || rc ? 1 : 0;
}
