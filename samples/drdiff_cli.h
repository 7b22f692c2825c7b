/* The drdiff command-line program: one file per subcommand. */
#ifndef DRDIFF_CLI_H
#define DRDIFF_CLI_H

int drdiff_cmd_info(int argc, char **argv);
int drdiff_cmd_generate(int argc, char **argv);
int drdiff_cmd_bench(int argc, char **argv);

/* Prints s as a JSON string literal (with quotes) to f. */
#include <stdio.h>
void drdiff_json_string(FILE *f, const char *s);

#endif
