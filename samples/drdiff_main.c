/* drdiff: entry point and subcommand dispatch. */
#include <stdio.h>
#include <string.h>

#include "drdiff_cli.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: drdiff <command> [options]\n"
          "commands:\n"
          "  info [--json]         list Vulkan devices, their capabilities and the one drdiff would use\n"
          "  generate [options]    generate text with a DrDiff model (drdiff generate --help)\n"
          "  bench [options]       time generations for several N (drdiff bench --help)\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "info")) return drdiff_cmd_info(argc - 1, argv + 1);
  if (!strcmp(cmd, "generate")) return drdiff_cmd_generate(argc - 1, argv + 1);
  if (!strcmp(cmd, "bench")) return drdiff_cmd_bench(argc - 1, argv + 1);
  if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
    usage(stdout);
    return 0;
  }
  fprintf(stderr, "drdiff: unknown command '%s'\n", cmd);
  usage(stderr);
  return 2;
}
