/* tool_tokenize VOCAB.txt MERGES.txt encode|decode [BOS EOS PAD]
 * Drives host/tokenizer.c for tests/test_tokenizer_parity.py. VOCAB.txt has one token per line
 * (line i = id i) and MERGES.txt one "left right" merge per line, both in byte-unicode form
 * (which has no newlines). BOS/EOS/PAD are the special ids (default -1: none).
 * encode: stdin bytes -> ids, space-separated, one line on stdout.
 * decode: whitespace-separated ids on stdin -> raw bytes on stdout.
 * Exit 0 on success, 1 on a tokenizer error (message on stderr), 2 on bad usage or I/O. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

typedef struct buf {
  char *p;
  size_t n, cap;
} buf;

static int buf_read_all(FILE *f, buf *b) {
  b->p = NULL;
  b->n = b->cap = 0;
  for (;;) {
    if (b->cap - b->n < 65536) {
      size_t cap = b->cap ? 2 * b->cap : 1 << 20;
      char *p = realloc(b->p, cap + 1);
      if (!p) return 0;
      b->p = p;
      b->cap = cap;
    }
    size_t got = fread(b->p + b->n, 1, b->cap - b->n, f);
    b->n += got;
    if (got == 0) break;
  }
  if (ferror(f)) return 0;
  b->p[b->n] = '\0';
  return 1;
}

/* Splits a file into lines (in place); a final newline does not start another line. */
static char **read_lines(const char *path, uint32_t *n_lines, buf *b) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "tool_tokenize: cannot open %s: %s\n", path, strerror(errno));
    return NULL;
  }
  int ok = buf_read_all(f, b);
  fclose(f);
  if (!ok) {
    fprintf(stderr, "tool_tokenize: cannot read %s\n", path);
    return NULL;
  }
  size_t n = 0;
  for (size_t i = 0; i < b->n; i++) n += b->p[i] == '\n';
  if (b->n > 0 && b->p[b->n - 1] != '\n') n++;
  char **lines = malloc((n ? n : 1) * sizeof *lines);
  if (!lines) return NULL;
  size_t k = 0;
  char *s = b->p;
  while (k < n) {
    char *e = strchr(s, '\n');
    if (e) *e = '\0';
    lines[k++] = s;
    s = e ? e + 1 : s + strlen(s);
  }
  *n_lines = (uint32_t)n;
  return lines;
}

int main(int argc, char **argv) {
  if (argc != 4 && argc != 7) {
    fprintf(stderr, "usage: tool_tokenize VOCAB.txt MERGES.txt encode|decode [BOS EOS PAD]\n");
    return 2;
  }
  int encode = strcmp(argv[3], "encode") == 0;
  if (!encode && strcmp(argv[3], "decode") != 0) {
    fprintf(stderr, "tool_tokenize: mode must be encode or decode\n");
    return 2;
  }
  int rc = 2;
  buf vb = {0}, mb = {0}, in = {0};
  drd_vocab v = {.bos_id = -1, .eos_id = -1, .pad_id = -1};
  drd_tokenizer *t = NULL;
  int32_t *ids = NULL;
  char *out = NULL;
  if (argc == 7) {
    v.bos_id = (int32_t)strtol(argv[4], NULL, 10);
    v.eos_id = (int32_t)strtol(argv[5], NULL, 10);
    v.pad_id = (int32_t)strtol(argv[6], NULL, 10);
  }
  v.tokens = read_lines(argv[1], &v.n_tokens, &vb);
  if (!v.tokens) goto done;
  v.merges = read_lines(argv[2], &v.n_merges, &mb);
  if (!v.merges) goto done;
  if (drd_tokenizer_create(&v, &t) != DRD_OK) {
    rc = 1; /* the library already logged drd_last_error() */
    goto done;
  }
  if (!buf_read_all(stdin, &in)) {
    fprintf(stderr, "tool_tokenize: cannot read stdin\n");
    goto done;
  }
  if (encode) {
    size_t n = 0;
    if (drd_tokenizer_encode(t, in.p, in.n, &ids, &n) != DRD_OK) {
      rc = 1;
      goto done;
    }
    for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    printf("\n");
  } else {
    size_t cap = in.n / 2 + 1, n = 0; /* every id takes at least 2 characters with its separator */
    ids = malloc(cap * sizeof *ids);
    if (!ids) goto done;
    char *s = in.p;
    for (;;) {
      char *end;
      errno = 0;
      long x = strtol(s, &end, 10);
      if (end == s) break;
      if (errno || x < INT32_MIN || x > INT32_MAX || n == cap) {
        fprintf(stderr, "tool_tokenize: bad id in input\n");
        goto done;
      }
      ids[n++] = (int32_t)x;
      s = end;
    }
    size_t len;
    if (drd_tokenizer_decode(t, ids, n, &out, &len) != DRD_OK) {
      rc = 1;
      goto done;
    }
    fwrite(out, 1, len, stdout);
  }
  rc = fflush(stdout) == 0 ? 0 : 2;
done:
  free(out);
  free(ids);
  drd_tokenizer_destroy(t);
  free(v.tokens);
  free(v.merges);
  free(vb.p);
  free(mb.p);
  free(in.p);
  return rc;
}
