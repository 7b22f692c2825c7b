/* drdiff generate: placeholder until the CPU engine lands. */
#include <stdio.h>

#include "drdiff_cli.h"

int drdiff_cmd_generate(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "drdiff generate: not implemented yet\n");
  return 1;
}
