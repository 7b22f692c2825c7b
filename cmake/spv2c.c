/* Build-time tool: turns one SPIR-V binary into a C source holding it as a uint32_t array,
 * so the library carries its shaders and needs no files beside it at run time. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: spv2c INPUT.spv OUTPUT.c SYMBOL\n");
    return 2;
  }
  FILE *in = fopen(argv[1], "rb");
  if (!in) { perror(argv[1]); return 1; }
  FILE *out = fopen(argv[2], "w");
  if (!out) { perror(argv[2]); fclose(in); return 1; }
  fprintf(out, "/* generated from %s by spv2c; do not edit */\n#include <stddef.h>\n#include <stdint.h>\n", argv[1]);
  fprintf(out, "const uint32_t %s[] = {", argv[3]);
  unsigned char w[4];
  size_t n = 0, got;
  while ((got = fread(w, 1, 4, in)) == 4) {
    uint32_t v = (uint32_t)w[0] | (uint32_t)w[1] << 8 | (uint32_t)w[2] << 16 | (uint32_t)w[3] << 24;
    fprintf(out, "%s0x%08xu,", n % 8 ? " " : "\n  ", v);
    n++;
  }
  fclose(in);
  if (got != 0 || n < 5) {
    fprintf(stderr, "spv2c: %s is not a SPIR-V word stream\n", argv[1]);
    fclose(out);
    return 1;
  }
  fprintf(out, "\n};\nconst size_t %s_size = sizeof(%s);\n", argv[3], argv[3]);
  return fclose(out) == 0 ? 0 : 1;
}
