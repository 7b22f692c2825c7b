/* host/tokenizer.c on its own (no Python): round trips of random bytes, random UTF-8 and edge
 * cases through random vocabularies, a few hand-checked encodings (merge order, pre-tokenizer
 * boundaries), and the rejection of bad vocabularies and bad arguments.
 * Seed from DRDIFF_TEST_SEED or the clock, printed on failure. Exit 0 pass, 1 fail. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tokenizer.h"
#include "util_rand.h"

static int g_failures;
static uint64_t g_seed;

#define CHECK(cond, ...)                                                              \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      fprintf(stderr, "FAIL %s:%d (seed %llu): ", __FILE__, __LINE__,                 \
              (unsigned long long)g_seed);                                            \
      fprintf(stderr, __VA_ARGS__);                                                   \
      fprintf(stderr, "\n");                                                          \
      g_failures++;                                                                   \
    }                                                                                 \
  } while (0)

/* ------------------------------------------------------------------ vocabulary building */
typedef struct test_vocab {
  drd_vocab v;
  uint32_t cap_tokens, cap_merges;
} test_vocab;

/* GPT-2 byte-to-unicode code point of byte b. */
static unsigned byte_cp(unsigned b) {
  if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return b;
  unsigned n = 0;
  for (unsigned x = 0; x < b; x++)
    if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE)) n++;
  return 256 + n;
}

/* Byte-unicode string of n raw bytes (malloc'd, NUL-terminated). */
static char *to_unicode(const uint8_t *p, size_t n) {
  char *s = malloc(2 * n + 1), *o = s;
  if (!s) exit(1);
  for (size_t i = 0; i < n; i++) {
    unsigned cp = byte_cp(p[i]);
    if (cp < 0x80) {
      *o++ = (char)cp;
    } else {
      *o++ = (char)(0xC0 | (cp >> 6));
      *o++ = (char)(0x80 | (cp & 0x3F));
    }
  }
  *o = '\0';
  return s;
}

static char *xstrdup(const char *s) {
  char *d = malloc(strlen(s) + 1);
  if (!d) exit(1);
  return strcpy(d, s);
}

static void tv_add_token(test_vocab *tv, char *s) {
  if (tv->v.n_tokens == tv->cap_tokens) {
    tv->cap_tokens = tv->cap_tokens ? 2 * tv->cap_tokens : 512;
    tv->v.tokens = realloc(tv->v.tokens, tv->cap_tokens * sizeof *tv->v.tokens);
    if (!tv->v.tokens) exit(1);
  }
  tv->v.tokens[tv->v.n_tokens++] = s;
}

static void tv_add_merge(test_vocab *tv, char *s) {
  if (tv->v.n_merges == tv->cap_merges) {
    tv->cap_merges = tv->cap_merges ? 2 * tv->cap_merges : 512;
    tv->v.merges = realloc(tv->v.merges, tv->cap_merges * sizeof *tv->v.merges);
    if (!tv->v.merges) exit(1);
  }
  tv->v.merges[tv->v.n_merges++] = s;
}

static void tv_free(test_vocab *tv) {
  for (uint32_t i = 0; i < tv->v.n_tokens; i++) free(tv->v.tokens[i]);
  for (uint32_t i = 0; i < tv->v.n_merges; i++) free(tv->v.merges[i]);
  free(tv->v.tokens);
  free(tv->v.merges);
  memset(tv, 0, sizeof *tv);
}

/* The 256 byte tokens (id = byte) and no merges or specials yet. */
static void tv_bytes(test_vocab *tv) {
  memset(tv, 0, sizeof *tv);
  tv->v.bos_id = tv->v.eos_id = tv->v.pad_id = -1;
  for (unsigned b = 0; b < 256; b++) {
    uint8_t c = (uint8_t)b;
    tv_add_token(tv, to_unicode(&c, 1));
  }
}

static void tv_specials(test_vocab *tv) {
  tv->v.bos_id = (int32_t)tv->v.n_tokens;
  tv_add_token(tv, xstrdup("<|bos|>"));
  tv->v.eos_id = (int32_t)tv->v.n_tokens;
  tv_add_token(tv, xstrdup("<|eos|>"));
  tv->v.pad_id = (int32_t)tv->v.n_tokens;
  tv_add_token(tv, xstrdup("<|pad|>"));
}

/* Adds the merge of two byte strings; the result must be new. */
static void tv_merge(test_vocab *tv, const uint8_t *a, size_t na, const uint8_t *b, size_t nb) {
  char *ua = to_unicode(a, na), *ub = to_unicode(b, nb);
  char *m = malloc(strlen(ua) + strlen(ub) + 2);
  uint8_t *r = malloc(na + nb);
  if (!m || !r) exit(1);
  sprintf(m, "%s %s", ua, ub);
  memcpy(r, a, na);
  memcpy(r + na, b, nb);
  tv_add_merge(tv, m);
  tv_add_token(tv, to_unicode(r, na + nb));
  free(ua);
  free(ub);
  free(r);
}

/* The idea of models/drdiff/tokenizer.py random_vocab (not the same stream): V - 259 merges of
 * tokens of one byte class, so most of them fire on text, then the three special tokens. The
 * raw bytes of every token are kept to build merges and to reject duplicates. */
typedef struct raw_tok {
  uint8_t *p;
  size_t n;
  int cls;       /* 0 letters, 1 digits, 2 whitespace, 3 other, -1 mixed */
  int lead_space;
} raw_tok;

static int cls_of(uint8_t b) {
  if (b >= 0x80 || (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z')) return 0;
  if (b >= '0' && b <= '9') return 1;
  if (b == ' ' || (b >= 0x09 && b <= 0x0D)) return 2;
  return 3;
}

static void tv_random(test_vocab *tv, uint32_t V, drd_rng *rng) {
  tv_bytes(tv);
  raw_tok *raw = calloc(V, sizeof *raw);
  if (!raw) exit(1);
  for (unsigned b = 0; b < 256; b++) {
    raw[b].p = malloc(1);
    if (!raw[b].p) exit(1);
    raw[b].p[0] = (uint8_t)b;
    raw[b].n = 1;
    raw[b].cls = cls_of((uint8_t)b);
  }
  uint32_t n = 256;
  while (n < V - 3) {
    uint32_t a = 0, b = 0;
    int found = 0;
    for (int attempt = 0; attempt < 200 && !found; attempt++) {
      int k = (int)drd_rng_range(rng, 0, 9);
      k = k < 6 ? 0 : k < 7 ? 1 : k < 8 ? 2 : 3;
      /* left: a lone space, a token of class k (maybe after a space) or a byte of class k */
      uint32_t u = drd_rng_range(rng, 0, 99);
      if (k != 2 && u < 15) {
        a = ' ';
      } else {
        a = drd_rng_range(rng, 0, n - 1);
        if (raw[a].cls != k || (raw[a].lead_space && k == 2)) continue;
      }
      b = drd_rng_range(rng, 0, n - 1);
      if (raw[b].cls != k || raw[b].lead_space) continue;
      if (k == 0 && drd_rng_range(rng, 0, 1) && b < 256 && b >= 0x80) continue; /* favour ASCII */
      found = 1;
      /* reject results that exist already */
      size_t rn = raw[a].n + raw[b].n;
      for (uint32_t i = 0; i < n && found; i++)
        if (raw[i].n == rn && !memcmp(raw[i].p, raw[a].p, raw[a].n) &&
            !memcmp(raw[i].p + raw[a].n, raw[b].p, raw[b].n))
          found = 0;
    }
    if (!found) break; /* V larger than this generator can fill: fewer tokens */
    raw[n].n = raw[a].n + raw[b].n;
    raw[n].p = malloc(raw[n].n);
    if (!raw[n].p) exit(1);
    memcpy(raw[n].p, raw[a].p, raw[a].n);
    memcpy(raw[n].p + raw[a].n, raw[b].p, raw[b].n);
    int k = raw[b].cls;
    raw[n].cls = k;
    raw[n].lead_space = a == ' ' || raw[a].lead_space;
    tv_merge(tv, raw[a].p, raw[a].n, raw[b].p, raw[b].n);
    n++;
  }
  for (uint32_t i = 0; i < n; i++) free(raw[i].p);
  free(raw);
  tv_specials(tv);
}

/* ------------------------------------------------------------------ round trips */
static void roundtrip(const drd_tokenizer *t, const uint8_t *data, size_t n, const char *what) {
  int32_t *ids = NULL;
  size_t n_ids = 0;
  drd_status st = drd_tokenizer_encode(t, (const char *)data, n, &ids, &n_ids);
  CHECK(st == DRD_OK, "%s: encode of %zu bytes failed: %s", what, n, drd_last_error());
  if (st != DRD_OK) return;
  CHECK(ids != NULL, "%s: encode returned NULL ids", what);
  CHECK(n_ids <= n, "%s: %zu ids for %zu bytes", what, n_ids, n);
  uint32_t V = drd_tokenizer_vocab_size(t);
  for (size_t i = 0; i < n_ids; i++) {
    if (ids[i] < 0 || (uint32_t)ids[i] >= V - 3) { /* specials are the last three */
      CHECK(0, "%s: id %d at %zu is out of range or special", what, ids[i], i);
      break;
    }
  }
  char *out = NULL;
  size_t len = 0;
  st = drd_tokenizer_decode(t, ids, n_ids, &out, &len);
  CHECK(st == DRD_OK, "%s: decode failed: %s", what, drd_last_error());
  if (st == DRD_OK) {
    CHECK(len == n && memcmp(out, data, n) == 0, "%s: round trip of %zu bytes gave %zu bytes", what, n,
          len);
    CHECK(out[len] == '\0', "%s: decode output not NUL-terminated", what);
  }
  free(out);
  free(ids);
}

static size_t put_utf8(uint8_t *o, uint32_t cp) {
  if (cp < 0x80) {
    o[0] = (uint8_t)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (uint8_t)(0xC0 | (cp >> 6));
    o[1] = (uint8_t)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (uint8_t)(0xE0 | (cp >> 12));
    o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (uint8_t)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (uint8_t)(0xF0 | (cp >> 18));
  o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (uint8_t)(0x80 | (cp & 0x3F));
  return 4;
}

static void roundtrip_suite(const drd_tokenizer *t, drd_rng *rng) {
  static uint8_t buf[1 << 17];
  roundtrip(t, (const uint8_t *)"", 0, "empty");
  for (int b = 0; b < 256; b++) buf[b] = (uint8_t)b;
  roundtrip(t, buf, 256, "all 256 bytes");
  for (int b = 0; b < 256; b++) buf[b] = (uint8_t)(255 - b);
  roundtrip(t, buf, 256, "all 256 bytes reversed");
  static const char *const edges[] = {
      " ", "  ", "\n", "\r\n", " \t\n\r\v\f", "a", " a", "a ", "a  b", "a \n b", "\n a", "it's",
      "''s", "'", "don't you'll we've I'm they're he'd", "x\n\n\n  \t y", "1 22 333 4444",
      "!!!???... ...", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\x89", "\xff\xfe\x80\x80"};
  for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
    roundtrip(t, (const uint8_t *)edges[i], strlen(edges[i]), edges[i]);
  /* long runs: whitespace, one letter run (a single 100000-byte piece), digits */
  static const uint8_t fill[] = {' ', '\n', '\t', 'a', 0x80, '7', '.'};
  for (size_t k = 0; k < sizeof fill; k++) {
    memset(buf, fill[k], 100000);
    roundtrip(t, buf, 100000, "long run");
    buf[99999] = 'x';
    roundtrip(t, buf, 100000, "long run + x");
  }
  for (int it = 0; it < 300; it++) { /* random bytes */
    size_t n = drd_rng_range(rng, 0, it < 290 ? 300 : 60000);
    for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)drd_rng_next(rng);
    roundtrip(t, buf, n, "random bytes");
  }
  for (int it = 0; it < 300; it++) { /* random valid UTF-8 */
    size_t n = 0, chars = drd_rng_range(rng, 0, 200);
    for (size_t c = 0; c < chars; c++) {
      uint32_t cls = drd_rng_range(rng, 0, 3), cp;
      if (cls == 0) cp = drd_rng_range(rng, 0x09, 0x7E);
      else if (cls == 1) cp = drd_rng_range(rng, 0x80, 0x7FF);
      else if (cls == 2) cp = drd_rng_range(rng, 0x800, 0xFFFF);
      else cp = drd_rng_range(rng, 0x10000, 0x10FFFF);
      if (cp >= 0xD800 && cp <= 0xDFFF) cp = ' ';
      n += put_utf8(buf + n, cp);
    }
    roundtrip(t, buf, n, "random UTF-8");
  }
  static const char *const pieces[] = {"the", " the", "a", " ", "  ", "\n", "'s", "'", "1", "42",
                                       ".", ",", "e", "\xc3\xa9", "\xf0\x9f\x8e\x89", "\t"};
  for (int it = 0; it < 300; it++) { /* boundary-heavy text */
    size_t n = 0, k = drd_rng_range(rng, 0, 60);
    for (size_t c = 0; c < k; c++) {
      const char *p = pieces[drd_rng_range(rng, 0, sizeof pieces / sizeof pieces[0] - 1)];
      memcpy(buf + n, p, strlen(p));
      n += strlen(p);
    }
    roundtrip(t, buf, n, "boundary text");
  }
}

/* ------------------------------------------------------------------ hand-checked encodings */
static void expect_ids(const drd_tokenizer *t, const char *text, const int32_t *want, size_t n_want) {
  int32_t *ids = NULL;
  size_t n = 0;
  if (drd_tokenizer_encode(t, text, strlen(text), &ids, &n) != DRD_OK) {
    CHECK(0, "encode \"%s\" failed", text);
    return;
  }
  int same = n == n_want;
  for (size_t i = 0; same && i < n; i++) same = ids[i] == want[i];
  if (!same) {
    fprintf(stderr, "  \"%s\" ->", text);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n");
  }
  CHECK(same, "encode \"%s\" gave unexpected ids (above)", text);
  free(ids);
}

static void known_encodings(void) {
  test_vocab tv;
  tv_bytes(&tv);
  /* ids 256.. in this order; rank = merge index */
  tv_merge(&tv, (const uint8_t *)"b", 1, (const uint8_t *)"c", 1);   /* 256 bc, rank 0 */
  tv_merge(&tv, (const uint8_t *)"a", 1, (const uint8_t *)"b", 1);   /* 257 ab, rank 1 */
  tv_merge(&tv, (const uint8_t *)"a", 1, (const uint8_t *)"a", 1);   /* 258 aa, rank 2 */
  tv_merge(&tv, (const uint8_t *)" ", 1, (const uint8_t *)"a", 1);   /* 259 " a", rank 3 */
  tv_merge(&tv, (const uint8_t *)"a", 1, (const uint8_t *)" ", 1);   /* 260 "a ", rank 4: never fires */
  tv_merge(&tv, (const uint8_t *)"'", 1, (const uint8_t *)"s", 1);   /* 261 's */
  tv_merge(&tv, (const uint8_t *)" ", 1, (const uint8_t *)" ", 1);   /* 262 two spaces */
  tv_merge(&tv, (const uint8_t *)"1", 1, (const uint8_t *)"2", 1);   /* 263 12 */
  tv_merge(&tv, (const uint8_t *)"a", 1, (const uint8_t *)"1", 1);   /* 264 a1: never fires */
  tv_specials(&tv);
  drd_tokenizer *t = NULL;
  CHECK(drd_tokenizer_create(&tv.v, &t) == DRD_OK, "hand vocabulary rejected: %s", drd_last_error());
  if (t) {
    expect_ids(t, "abc", (const int32_t[]){'a', 256}, 2);          /* lower rank wins over leftmost */
    expect_ids(t, "aaa", (const int32_t[]){258, 'a'}, 2);          /* leftmost on equal rank */
    expect_ids(t, "aaaa", (const int32_t[]){258, 258}, 2);
    expect_ids(t, "a a", (const int32_t[]){'a', 259}, 2);          /* space joins the next word */
    expect_ids(t, "a1", (const int32_t[]){'a', '1'}, 2);           /* letters and digits split */
    expect_ids(t, "a's", (const int32_t[]){'a', 261}, 2);          /* contraction piece */
    expect_ids(t, "'''s", (const int32_t[]){'\'', '\'', '\'', 's'}, 4); /* ''' is one "other" run */
    expect_ids(t, "   a", (const int32_t[]){262, 259}, 2);         /* last space goes to the word */
    expect_ids(t, "  \na", (const int32_t[]){262, '\n', 'a'}, 3);  /* \n does not join a word */
    expect_ids(t, "a   ", (const int32_t[]){'a', 262, ' '}, 3);    /* trailing run stays whole */
    expect_ids(t, " 12", (const int32_t[]){' ', 263}, 2);          /* " 1" is not a token */
    int32_t ids[] = {tv.v.bos_id, 'a', tv.v.pad_id, 256, tv.v.eos_id};
    char *out = NULL;
    size_t len = 0;
    CHECK(drd_tokenizer_decode(t, ids, 5, &out, &len) == DRD_OK && len == 3 && !memcmp(out, "abc", 3),
          "special tokens must decode to nothing");
    free(out);
  }
  drd_tokenizer_destroy(t);
  tv_free(&tv);
}

/* ------------------------------------------------------------------ rejections */
static int g_logged;
static void count_log(drd_log_level level, const char *message, void *user) {
  (void)level;
  (void)message;
  (void)user;
  g_logged++;
}

/* Builds the small valid vocabulary, lets `edit` break it, and expects BAD_MODEL. */
typedef void (*vocab_edit)(test_vocab *tv);

static void small_vocab(test_vocab *tv) {
  tv_bytes(tv);
  tv_merge(tv, (const uint8_t *)"a", 1, (const uint8_t *)"b", 1);
  tv_merge(tv, (const uint8_t *)" ", 1, (const uint8_t *)"ab", 2);
  tv_specials(tv);
}

static void replace_token(test_vocab *tv, uint32_t i, const char *s) {
  free(tv->v.tokens[i]);
  tv->v.tokens[i] = xstrdup(s);
}
static void replace_merge(test_vocab *tv, uint32_t i, const char *s) {
  free(tv->v.merges[i]);
  tv->v.merges[i] = xstrdup(s);
}

static void e_missing_byte(test_vocab *tv) { replace_token(tv, 'q', "<|other|>"); }
static void e_duplicate(test_vocab *tv) { replace_token(tv, tv->v.pad_id, "ab"); }
static void e_raw_space(test_vocab *tv) { replace_token(tv, tv->v.pad_id, "a b"); }
static void e_bad_utf8(test_vocab *tv) { replace_token(tv, tv->v.pad_id, "\xc4"); }
static void e_overlong(test_vocab *tv) { replace_token(tv, tv->v.pad_id, "\xc1\xa1"); }
static void e_high_cp(test_vocab *tv) { replace_token(tv, tv->v.pad_id, "\xc5\x84"); /* U+0144 */ }
static void e_three_byte(test_vocab *tv) { replace_token(tv, tv->v.pad_id, "\xe2\x82\xac"); }
static void e_latin1_space(test_vocab *tv) { replace_token(tv, tv->v.pad_id, "\xc2\xa0"); /* U+00A0 */ }
static void e_empty(test_vocab *tv) { replace_token(tv, tv->v.pad_id, ""); }
static void e_null_token(test_vocab *tv) {
  free(tv->v.tokens[tv->v.pad_id]);
  tv->v.tokens[tv->v.pad_id] = NULL;
}
static void e_unknown_merge(test_vocab *tv) { replace_merge(tv, 0, "a zz"); }
static void e_one_side(test_vocab *tv) { replace_merge(tv, 0, "ab"); }
static void e_two_spaces(test_vocab *tv) { replace_merge(tv, 0, "a  b"); }
static void e_lead_space(test_vocab *tv) { replace_merge(tv, 0, " a"); }
static void e_three_parts(test_vocab *tv) { replace_merge(tv, 0, "a b c"); }
static void e_result_missing(test_vocab *tv) { replace_merge(tv, 0, "a c"); }
static void e_repeat(test_vocab *tv) { replace_merge(tv, 1, "a b"); }
static void e_null_merge(test_vocab *tv) {
  free(tv->v.merges[0]);
  tv->v.merges[0] = NULL;
}
static void e_merge_special(test_vocab *tv) {
  /* a token "<|bos|>x" exists, so the merge is well formed apart from naming a special */
  replace_token(tv, tv->v.eos_id, "<|bos|>x");
  tv->v.eos_id = -1;
  replace_merge(tv, 1, "<|bos|> x");
}
static void e_merge_makes_special(test_vocab *tv) { tv->v.eos_id = 256; /* "ab" */ }
static void e_special_range(test_vocab *tv) { tv->v.bos_id = (int32_t)tv->v.n_tokens; }
static void e_special_negative(test_vocab *tv) { tv->v.pad_id = -2; }
static void e_special_byte(test_vocab *tv) { tv->v.bos_id = 'a'; }
static void e_no_tokens(test_vocab *tv) { tv->v.n_tokens = 0; }

static void rejections(void) {
  static const struct {
    const char *name;
    vocab_edit edit;
  } cases[] = {
      {"missing single-byte token", e_missing_byte}, {"duplicate token", e_duplicate},
      {"raw space in token", e_raw_space},           {"truncated UTF-8", e_bad_utf8},
      {"overlong UTF-8", e_overlong},                {"code point U+0144", e_high_cp},
      {"three-byte UTF-8", e_three_byte},            {"U+00A0 (space byte is U+0120)", e_latin1_space},
      {"empty token", e_empty},                      {"NULL token", e_null_token},
      {"merge names unknown token", e_unknown_merge}, {"merge with one side", e_one_side},
      {"merge with two spaces", e_two_spaces},       {"merge with leading space", e_lead_space},
      {"merge with three parts", e_three_parts},     {"merge result not a token", e_result_missing},
      {"repeated merge", e_repeat},                  {"NULL merge", e_null_merge},
      {"merge names a special token", e_merge_special},
      {"merge produces a special token", e_merge_makes_special},
      {"special id out of range", e_special_range},  {"special id below -1", e_special_negative},
      {"special id is a byte token", e_special_byte}, {"no tokens", e_no_tokens},
  };
  test_vocab tv;
  small_vocab(&tv);
  drd_tokenizer *t = NULL;
  CHECK(drd_tokenizer_create(&tv.v, &t) == DRD_OK, "the small vocabulary is rejected: %s", drd_last_error());
  drd_tokenizer_destroy(t);
  tv_free(&tv);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    small_vocab(&tv);
    uint32_t n_tokens = tv.v.n_tokens;
    cases[i].edit(&tv);
    t = (drd_tokenizer *)&tv; /* must be reset to NULL on failure */
    g_logged = 0;
    drd_status st = drd_tokenizer_create(&tv.v, &t);
    CHECK(st == DRD_ERROR_BAD_MODEL, "%s: status %s, want bad model", cases[i].name, drd_status_string(st));
    CHECK(t == NULL, "%s: *out not NULL after failure", cases[i].name);
    CHECK(drd_last_error()[0] != '\0' && g_logged == 1, "%s: no error message", cases[i].name);
    if (st == DRD_ERROR_BAD_MODEL) printf("  rejected (%s): %s\n", cases[i].name, drd_last_error());
    if (st == DRD_OK) drd_tokenizer_destroy(t);
    tv.v.n_tokens = n_tokens;
    tv_free(&tv);
  }
}

static void bad_arguments(void) {
  test_vocab tv;
  small_vocab(&tv);
  drd_tokenizer *t = NULL;
  CHECK(drd_tokenizer_create(NULL, &t) == DRD_ERROR_INVALID_ARGUMENT, "create(NULL vocab)");
  CHECK(drd_tokenizer_create(&tv.v, NULL) == DRD_ERROR_INVALID_ARGUMENT, "create(NULL out)");
  if (drd_tokenizer_create(&tv.v, &t) != DRD_OK) {
    CHECK(0, "small vocabulary rejected");
    tv_free(&tv);
    return;
  }
  int32_t *ids = NULL;
  size_t n = 0, len = 0;
  char *out = NULL;
  CHECK(drd_tokenizer_encode(t, NULL, 3, &ids, &n) == DRD_ERROR_INVALID_ARGUMENT, "encode(NULL, 3)");
  CHECK(drd_tokenizer_encode(NULL, "a", 1, &ids, &n) == DRD_ERROR_INVALID_ARGUMENT, "encode(NULL t)");
  CHECK(drd_tokenizer_encode(t, NULL, 0, &ids, &n) == DRD_OK && ids && n == 0, "encode(NULL, 0)");
  free(ids);
  int32_t bad_hi[] = {'a', (int32_t)tv.v.n_tokens};
  int32_t bad_lo[] = {-1};
  CHECK(drd_tokenizer_decode(t, bad_hi, 2, &out, &len) == DRD_ERROR_INVALID_ARGUMENT && !out,
        "decode of id V must fail");
  CHECK(drd_tokenizer_decode(t, bad_lo, 1, &out, &len) == DRD_ERROR_INVALID_ARGUMENT && !out,
        "decode of id -1 must fail");
  CHECK(drd_tokenizer_decode(t, NULL, 0, &out, &len) == DRD_OK && out && len == 0 && out[0] == '\0',
        "decode of nothing");
  free(out);
  drd_tokenizer_destroy(t);
  drd_tokenizer_destroy(NULL);
  tv_free(&tv);
}

int main(void) {
  g_seed = drd_test_seed();
  drd_rng rng = {g_seed};
  /* The rejection cases log on purpose: count them instead of printing them. */
  drd_log_set(count_log, NULL, DRD_LOG_DEBUG); /* failures are logged once, at debug level */
  known_encodings();
  rejections();
  bad_arguments();
  static const uint32_t sizes[] = {259, 300, 2000, 20000};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    test_vocab tv;
    tv_random(&tv, sizes[i], &rng);
    drd_tokenizer *t = NULL;
    drd_status st = drd_tokenizer_create(&tv.v, &t);
    CHECK(st == DRD_OK, "random vocabulary of %u tokens rejected: %s", tv.v.n_tokens, drd_last_error());
    if (st == DRD_OK) {
      roundtrip_suite(t, &rng);
      printf("  round trips through a random vocabulary of %u tokens (%u merges)\n", tv.v.n_tokens,
             tv.v.n_merges);
    }
    drd_tokenizer_destroy(t);
    tv_free(&tv);
  }
  drd_log_set(NULL, NULL, DRD_LOG_WARN);
  if (g_failures) {
    fprintf(stderr, "%d failure(s); rerun with DRDIFF_TEST_SEED=%llu\n", g_failures,
            (unsigned long long)g_seed);
    return 1;
  }
  printf("ok (seed %llu)\n", (unsigned long long)g_seed);
  return 0;
}
