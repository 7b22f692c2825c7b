/* tool_forward MODEL.gguf IN.f32 N U OUT.f32: one evaluation of the CPU reference denoiser.
 * IN and OUT are raw little-endian f32 arrays [N, de]. The Python parity test drives it.
 * Exit 0 on success, 1 on any failure (with the reason on stderr). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "log.h"
#include "model_file.h"

static int read_f32(const char *path, float *dst, size_t n) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "tool_forward: cannot open %s: %s\n", path, strerror(errno));
    return -1;
  }
  size_t got = fread(dst, sizeof(float), n, f);
  int extra = fgetc(f) != EOF;
  fclose(f);
  if (got != n || extra) {
    fprintf(stderr, "tool_forward: %s holds %s floats than N*de = %zu\n", path, got != n ? "fewer" : "more", n);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: tool_forward MODEL.gguf IN.f32 N U OUT.f32\n");
    return 1;
  }
  char *end = NULL;
  errno = 0;
  unsigned long N = strtoul(argv[3], &end, 10);
  if (errno || !end || *end || N == 0 || N > 0xffffffffUL) {
    fprintf(stderr, "tool_forward: bad N '%s'\n", argv[3]);
    return 1;
  }
  double u = strtod(argv[4], &end);
  if (!end || *end || !isfinite(u)) {
    fprintf(stderr, "tool_forward: bad U '%s'\n", argv[4]);
    return 1;
  }
  drd_model_file *m = NULL;
  drd_status st = drd_model_file_open(argv[1], &m);
  if (st != DRD_OK) {
    fprintf(stderr, "tool_forward: %s: %s: %s\n", argv[1], drd_status_string(st), drd_last_error());
    return 1;
  }
  int rc = 1;
  drd_cpu_model *cm = NULL;
  drd_cpu_forward *fw = NULL;
  const size_t n = (size_t)N * m->hp.de;
  float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n); // [N, de] each
  if (!x || !y) {
    fprintf(stderr, "tool_forward: out of memory for N=%lu\n", N);
    goto done;
  }
  if (read_f32(argv[2], x, n)) goto done;
  if ((st = drd_cpu_model_create(m, 0, &cm)) != DRD_OK ||
      (st = drd_cpu_forward_create(cm, (uint32_t)N, &fw)) != DRD_OK ||
      (st = drd_cpu_forward_run(fw, x, u, y)) != DRD_OK) {
    fprintf(stderr, "tool_forward: %s: %s\n", drd_status_string(st), drd_last_error());
    goto done;
  }
  FILE *f = fopen(argv[5], "wb");
  if (!f || fwrite(y, sizeof(float), n, f) != n) {
    fprintf(stderr, "tool_forward: cannot write %s\n", argv[5]);
    if (f) fclose(f);
    goto done;
  }
  if (fclose(f) != 0) {
    fprintf(stderr, "tool_forward: cannot write %s\n", argv[5]);
    goto done;
  }
  rc = 0;
done:
  drd_cpu_forward_destroy(fw);
  drd_cpu_model_destroy(cm);
  drd_model_file_close(m);
  free(x);
  free(y);
  return rc;
}
