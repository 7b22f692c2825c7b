/* libFuzzer target for host/tokenizer.c.
 * Normal inputs: encode the input with a fixed vocabulary (built once) and decode it again;
 * the bytes must come back unchanged and no id may be special or out of range.
 * Inputs that start with "VOCAB\n" fuzz vocabulary validation instead: the lines up to an
 * empty line are extra tokens after the 256 byte tokens, the lines after it are merges; a
 * vocabulary that is accepted must then round-trip a fixed text. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* GPT-2 byte-to-unicode form of n raw bytes, appended to out (room for 2 * n + 1). */
static size_t to_unicode(const uint8_t *p, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned b = p[i], cp = b;
    if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)) {
      cp = 256;
      for (unsigned x = 0; x < b; x++)
        if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE)) cp++;
    }
    if (cp < 0x80) {
      out[o++] = (char)cp;
    } else {
      out[o++] = (char)(0xC0 | (cp >> 6));
      out[o++] = (char)(0x80 | (cp & 0x3F));
    }
  }
  out[o] = '\0';
  return o;
}

static char *dup_unicode(const uint8_t *p, size_t n) {
  char *s = malloc(2 * n + 1);
  assert(s);
  to_unicode(p, n, s);
  return s;
}

/* The fixed vocabulary: byte tokens, then merges that spell common English words (with and
 * without a leading space), space/newline runs, digit pairs and UTF-8 pairs, then specials. */
#define MAX_TOKENS 4096
static char *g_tokens[MAX_TOKENS];
static char *g_merges[MAX_TOKENS];
static uint8_t g_raw[MAX_TOKENS][32];
static size_t g_raw_len[MAX_TOKENS];
static drd_vocab g_vocab;

static int find_raw(const uint8_t *p, size_t n) {
  for (uint32_t i = 0; i < g_vocab.n_tokens; i++)
    if (g_raw_len[i] == n && memcmp(g_raw[i], p, n) == 0) return (int)i;
  return -1;
}

/* Adds merges building p[0..n) left to right (p[0..k) + p[k]), skipping existing tokens. */
static void add_word(const uint8_t *p, size_t n) {
  for (size_t k = 2; k <= n && k <= 32; k++) {
    if (find_raw(p, k) >= 0) continue;
    if (g_vocab.n_tokens >= MAX_TOKENS - 3) return;
    char *m = malloc(4 * k + 2);
    assert(m);
    size_t o = to_unicode(p, k - 1, m);
    m[o++] = ' ';
    to_unicode(p + k - 1, 1, m + o);
    g_merges[g_vocab.n_merges++] = m;
    uint32_t id = g_vocab.n_tokens++;
    memcpy(g_raw[id], p, k);
    g_raw_len[id] = k;
    g_tokens[id] = dup_unicode(p, k);
  }
}

static void build_vocab(void) {
  g_vocab.tokens = g_tokens;
  g_vocab.merges = g_merges;
  for (unsigned b = 0; b < 256; b++) {
    g_raw[b][0] = (uint8_t)b;
    g_raw_len[b] = 1;
    g_tokens[b] = dup_unicode(g_raw[b], 1);
  }
  g_vocab.n_tokens = 256;
  static const char *const words[] = {
      "the", "and", "tokenizer", "diffusion", "it", "is", "in", "on", "of", "to", "a", "an",
      "that", "this", "with", "for", "'s", "'t", "'ll", "  ", "   ", "    ", "\n\n", "\n\n\n",
      "\t\t", "00", "000", "12", "123", "1234", "..", "...", "!!", "--", "\xc3\xa9", "caf\xc3\xa9",
      "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x8e\x89", "\x80\x80", "\xff\xff\xff", "aaaa", "ab",
      "ba", "bab", "abab", "ing", "tion", "er", "re", "th", "he"};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
    const uint8_t *w = (const uint8_t *)words[i];
    size_t n = strlen(words[i]);
    add_word(w, n);
    uint8_t sp[40] = {' '};
    memcpy(sp + 1, w, n);
    add_word(sp, n + 1);
  }
  static const char *const specials[] = {"<|bos|>", "<|eos|>", "<|pad|>"};
  g_vocab.bos_id = (int32_t)g_vocab.n_tokens;
  g_vocab.eos_id = g_vocab.bos_id + 1;
  g_vocab.pad_id = g_vocab.bos_id + 2;
  for (int k = 0; k < 3; k++) {
    g_tokens[g_vocab.n_tokens] = malloc(strlen(specials[k]) + 1);
    assert(g_tokens[g_vocab.n_tokens]);
    strcpy(g_tokens[g_vocab.n_tokens++], specials[k]);
  }
}

/* Encode + decode must give the input back; every id must lie below limit and differ from
 * special (a special token is never produced). */
static void roundtrip(const drd_tokenizer *t, const uint8_t *data, size_t size, int32_t limit,
                      int32_t special) {
  int32_t *ids = NULL;
  size_t n = 0;
  drd_status st = drd_tokenizer_encode(t, (const char *)data, size, &ids, &n);
  assert(st == DRD_OK);
  assert(ids && n <= size);
  for (size_t i = 0; i < n; i++) assert(ids[i] >= 0 && ids[i] < limit && ids[i] != special);
  char *out = NULL;
  size_t len = 0;
  st = drd_tokenizer_decode(t, ids, n, &out, &len);
  assert(st == DRD_OK);
  assert(len == size && (size == 0 || memcmp(out, data, size) == 0) && out[len] == '\0');
  free(out);
  free(ids);
}

/* VOCAB mode: 256 byte tokens + the input's lines as tokens, then merges, no specials. */
static void fuzz_vocab(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  assert(text);
  memcpy(text, data, size);
  text[size] = '\0';
  char **tokens = malloc((256 + size + 1) * sizeof *tokens);
  char **merges = malloc((size + 1) * sizeof *merges);
  char bytes[256][3];
  assert(tokens && merges);
  drd_vocab v = {.tokens = tokens, .merges = merges, .bos_id = -1, .eos_id = -1, .pad_id = -1};
  for (unsigned b = 0; b < 256; b++) {
    uint8_t c = (uint8_t)b;
    to_unicode(&c, 1, bytes[b]);
    tokens[v.n_tokens++] = bytes[b];
  }
  int in_merges = 0;
  size_t start = 0;
  for (size_t i = 0; i <= size; i++) { /* lines as text.split('\n'), minus a final empty one */
    if (i < size && text[i] != '\n') continue;
    if (i == size && start == size) break;
    text[i] = '\0';
    char *line = text + start;
    start = i + 1;
    if (!in_merges && *line == '\0')
      in_merges = 1;
    else if (in_merges)
      merges[v.n_merges++] = line;
    else
      tokens[v.n_tokens++] = line;
  }
  /* the last token may be used as a special id to reach those checks too */
  if (v.n_tokens > 256 && size > 0 && (data[0] & 1)) v.eos_id = (int32_t)v.n_tokens - 1;
  drd_tokenizer *t = NULL;
  if (drd_tokenizer_create(&v, &t) == DRD_OK) {
    static const char sample[] = "the cat's  tokens\n\n 123 caf\xc3\xa9 \xf0\x9f\x8e\x89 \xff\x80 ";
    roundtrip(t, (const uint8_t *)sample, sizeof sample - 1, (int32_t)v.n_tokens, v.eos_id);
    roundtrip(t, data, size, (int32_t)v.n_tokens, v.eos_id);
    drd_tokenizer_destroy(t);
  } else {
    assert(t == NULL);
  }
  free(tokens);
  free(merges);
  free(text);
}

/* VOCAB mode fails on purpose all the time: drop the log messages. */
static void quiet(drd_log_level level, const char *message, void *user) {
  (void)level;
  (void)message;
  (void)user;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static drd_tokenizer *tok;
  if (!tok) {
    build_vocab();
    drd_status st = drd_tokenizer_create(&g_vocab, &tok);
    assert(st == DRD_OK);
    (void)st;
    drd_log_set(quiet, NULL, DRD_LOG_ERROR);
  }
  if (size >= 6 && memcmp(data, "VOCAB\n", 6) == 0) {
    fuzz_vocab(data + 6, size - 6);
    return 0;
  }
  roundtrip(tok, data, size, g_vocab.bos_id, -1); /* the specials are the last three ids */
  return 0;
}
