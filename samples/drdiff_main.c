/* drdiff: entry point and subcommand dispatch. */
#include <stdio.h>
#include <string.h>

#include "drdiff_cli.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: drdiff <command> [options]\n"
          "commands:\n"
          "  info [--json]         list Vulkan devices, their capabilities and the one drdiff would use\n"
          "  generate [options]    generate text with a DrDiff model (drdiff generate --help)\n");
}

void drdiff_json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
    else if (*p == '\n') fputs("\\n", f);
    else if (*p == '\t') fputs("\\t", f);
    else if (*p == '\r') fputs("\\r", f);
    else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
    else fputc(*p, f);
  }
  fputc('"', f);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "info")) return drdiff_cmd_info(argc - 1, argv + 1);
  if (!strcmp(cmd, "generate")) return drdiff_cmd_generate(argc - 1, argv + 1);
  if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
    usage(stdout);
    return 0;
  }
  fprintf(stderr, "drdiff: unknown command '%s'\n", cmd);
  usage(stderr);
  return 2;
}
