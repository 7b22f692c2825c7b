/* The CLI's JSON string literals (samples/drdiff_json.c): escapes, stray bytes as U+FFFD, and
 * none of the characters on which readers of JSON lines split a line (U+0085, U+2028, U+2029,
 * the C1 controls) left raw, so that one record stays one line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drdiff_cli.h"

static int failures;

static void expect(const char *in, const char *want) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) {
    fprintf(stderr, "FAIL: open_memstream\n");
    exit(1);
  }
  drdiff_json_string(f, in);
  fclose(f);
  if (strcmp(buf, want)) {
    fprintf(stderr, "FAIL: json string of \"%s\": got %s, want %s\n", in, buf, want);
    failures++;
  }
  free(buf);
}

int main(void) {
  expect("plain", "\"plain\"");
  expect("q\"b\\n\nt\tr\r\x01\x1f", "\"q\\\"b\\\\n\\nt\\tr\\r\\u0001\\u001f\"");
  expect("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""); /* kept raw */
  expect("a\xc2\x85" "b\xc2\x80\xc2\x9f\xc2\xa0", "\"a\\u0085b\\u0080\\u009f\xc2\xa0\""); /* C1 escaped, U+00A0 raw */
  expect("x\xe2\x80\xa8y\xe2\x80\xa9z\xe2\x80\xa7", "\"x\\u2028y\\u2029z\xe2\x80\xa7\"");
  expect("\x85\xff\xc3(\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd(\\ufffd\\ufffd\\ufffd\""); /* stray, truncated, surrogate */
  if (failures) {
    fprintf(stderr, "test_cli_json: %d failures\n", failures);
    return 1;
  }
  fprintf(stderr, "test_cli_json: ok\n");
  return 0;
}
