/* Byte-level BPE: vocabulary validation, pre-tokenizer, merges by rank, decoding.
 * Must match models/drdiff/tokenizer.py id for id; docs/tokenizer.md is the shared definition
 * and tests/test_tokenizer_parity.py checks the two against each other. */
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

/* GPT-2 maps 256 bytes to code points below 0x144 (U+0100 + 68 for the unprintable ones). */
#define DRD_TOK_MAX_CP 0x144
/* Positions inside a piece are uint32; a piece longer than this is refused (see header). */
#define DRD_TOK_MAX_PIECE (1u << 30)

typedef struct drd_merge_slot {
  uint64_t key;   /* (left id << 32) | right id; UINT64_MAX = empty */
  uint32_t rank;
  int32_t result;
} drd_merge_slot;

struct drd_tokenizer {
  uint32_t n_tokens;
  uint8_t *blob;         /* all tokens' raw bytes back to back */
  size_t *tok_off;       /* [V] offset of token i in blob */
  uint32_t *tok_len;     /* [V] raw byte length of token i */
  uint8_t *is_special;   /* [V] 1 for bos/eos/pad: never produced, decoded to nothing */
  int32_t byte_id[256];  /* the single-byte token of every byte */
  int32_t *tok_hash;     /* open addressing over raw bytes -> id, -1 = empty */
  size_t tok_mask;
  drd_merge_slot *merge_hash; /* open addressing over (left, right) -> rank, result */
  size_t merge_mask;
};

/* ------------------------------------------------------------------ byte <-> unicode */
typedef struct drd_byte_unicode {
  uint16_t cp_of_byte[256];
  int16_t byte_of_cp[DRD_TOK_MAX_CP]; /* -1: not a byte-unicode code point */
} drd_byte_unicode;

/* Printable Latin-1 bytes map to themselves; the rest, in byte order, to U+0100 onwards.
 * Built on every create (cheap) rather than in a static table that would need thread-safe
 * initialisation. */
static void byte_unicode_init(drd_byte_unicode *bu) {
  for (int c = 0; c < DRD_TOK_MAX_CP; c++) bu->byte_of_cp[c] = -1;
  int n = 0;
  for (int b = 0; b < 256; b++) {
    int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    int cp = printable ? b : 256 + n++;
    bu->cp_of_byte[b] = (uint16_t)cp;
    bu->byte_of_cp[cp] = (int16_t)b;
  }
}

/* Decodes a byte-unicode token string (UTF-8 of code points < 0x144, so one or two bytes
 * each) into raw bytes. Returns the number of raw bytes, or -1 if s is not in that form.
 * dst must hold strlen(s) bytes. */
static long byte_unicode_decode(const drd_byte_unicode *bu, const char *s, size_t n,
                                uint8_t *dst) {
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    unsigned c = (unsigned char)s[i];
    unsigned cp;
    if (c < 0x80) {
      cp = c;
      i += 1;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < n && ((unsigned char)s[i + 1] & 0xC0) == 0x80) {
      cp = ((c & 0x1Fu) << 6) | ((unsigned char)s[i + 1] & 0x3Fu);
      if (cp < 0x80) return -1; /* overlong encoding */
      i += 2;
    } else {
      return -1;
    }
    if (cp >= DRD_TOK_MAX_CP || bu->byte_of_cp[cp] < 0) return -1;
    dst[o++] = (uint8_t)bu->byte_of_cp[cp];
  }
  return (long)o;
}

/* ------------------------------------------------------------------ hash tables */
static uint64_t hash_bytes(const uint8_t *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t z) { /* splitmix64 finaliser */
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static size_t table_size(size_t n) {
  size_t s = 16;
  while (s < 2 * n) s <<= 1;
  return s;
}

static int32_t tok_find(const drd_tokenizer *t, const uint8_t *p, size_t n) {
  for (size_t h = hash_bytes(p, n) & t->tok_mask;; h = (h + 1) & t->tok_mask) {
    int32_t id = t->tok_hash[h];
    if (id < 0) return -1;
    if (t->tok_len[id] == n && memcmp(t->blob + t->tok_off[id], p, n) == 0) return id;
  }
}

/* Inserts id unless its bytes are already present; returns the id already there, or -1. */
static int32_t tok_insert(drd_tokenizer *t, int32_t id) {
  const uint8_t *p = t->blob + t->tok_off[id];
  size_t n = t->tok_len[id];
  size_t h = hash_bytes(p, n) & t->tok_mask;
  for (;; h = (h + 1) & t->tok_mask) {
    int32_t o = t->tok_hash[h];
    if (o < 0) break;
    if (t->tok_len[o] == n && memcmp(t->blob + t->tok_off[o], p, n) == 0) return o;
  }
  t->tok_hash[h] = id;
  return -1;
}

static const drd_merge_slot *merge_find(const drd_tokenizer *t, int32_t a, int32_t b) {
  uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
  for (size_t h = hash_u64(key) & t->merge_mask;; h = (h + 1) & t->merge_mask) {
    const drd_merge_slot *s = &t->merge_hash[h];
    if (s->key == key) return s;
    if (s->key == UINT64_MAX) return NULL;
  }
}

/* ------------------------------------------------------------------ create / destroy */
/* A token or merge for an error message: at most 48 bytes, anything outside printable ASCII
 * as \xNN, so a broken vocabulary cannot put broken UTF-8 or control bytes into the log. */
static const char *show(const char *s, char out[static 256]) {
  size_t o = 0;
  for (size_t i = 0; s[i] && o < 240; i++) {
    unsigned char c = (unsigned char)s[i];
    if (i == 48) {
      memcpy(out + o, "...", 3);
      o += 3;
      break;
    }
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
      out[o++] = (char)c;
    } else {
      static const char hex[] = "0123456789abcdef";
      out[o++] = '\\';
      out[o++] = 'x';
      out[o++] = hex[c >> 4];
      out[o++] = hex[c & 15];
    }
  }
  out[o] = '\0';
  return out;
}

void drd_tokenizer_destroy(drd_tokenizer *t) {
  if (!t) return;
  free(t->blob);
  free(t->tok_off);
  free(t->tok_len);
  free(t->is_special);
  free(t->tok_hash);
  free(t->merge_hash);
  free(t);
}

uint32_t drd_tokenizer_vocab_size(const drd_tokenizer *t) { return t ? t->n_tokens : 0; }

/* Parses merge r ("left right") into token ids; fills *a, *b or fails with BAD_MODEL. */
/* scratch holds `longest` bytes, the longest token string: a side longer than that cannot
 * name a token (the byte-unicode form of a token's bytes is unique). */
static drd_status parse_merge(const drd_tokenizer *t, const drd_byte_unicode *bu, uint32_t r,
                              const char *m, uint8_t *scratch, size_t longest, int32_t *a,
                              int32_t *b) {
  if (!m) return drd_fail(DRD_ERROR_BAD_MODEL, "tokenizer: merge %u is missing (NULL)", r);
  size_t n = strlen(m);
  const char *sp = memchr(m, ' ', n);
  char shown[256];
  if (!sp || sp == m || sp == m + n - 1 || memchr(sp + 1, ' ', (size_t)(m + n - sp - 1)))
    return drd_fail(DRD_ERROR_BAD_MODEL,
                    "tokenizer: merge %u \"%s\" is not two tokens separated by one space", r,
                    show(m, shown));
  const char *part[2] = {m, sp + 1};
  size_t plen[2] = {(size_t)(sp - m), n - (size_t)(sp - m) - 1};
  int32_t ids[2];
  for (int k = 0; k < 2; k++) {
    long nb = plen[k] > longest ? -1 : byte_unicode_decode(bu, part[k], plen[k], scratch);
    ids[k] = nb < 0 ? -1 : tok_find(t, scratch, (size_t)nb);
    if (ids[k] < 0)
      return drd_fail(DRD_ERROR_BAD_MODEL, "tokenizer: merge %u \"%s\" names an unknown token", r,
                      show(m, shown));
    if (t->is_special[ids[k]])
      return drd_fail(DRD_ERROR_BAD_MODEL, "tokenizer: merge %u \"%s\" names a special token", r,
                      show(m, shown));
  }
  *a = ids[0];
  *b = ids[1];
  return DRD_OK;
}

drd_status drd_tokenizer_create(const drd_vocab *v, drd_tokenizer **out) {
  if (!v || !out) return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "drd_tokenizer_create: NULL argument");
  *out = NULL;
  if (v->n_tokens == 0 || !v->tokens)
    return drd_fail(DRD_ERROR_BAD_MODEL, "tokenizer: the vocabulary has no tokens");
  if (v->n_tokens > (uint32_t)INT32_MAX)
    return drd_fail(DRD_ERROR_BAD_MODEL, "tokenizer: %u tokens is too many", v->n_tokens);
  if (v->n_merges > 0 && !v->merges)
    return drd_fail(DRD_ERROR_BAD_MODEL, "tokenizer: %u merges but no merge list", v->n_merges);
  const uint32_t V = v->n_tokens;
  const int32_t sid[3] = {v->bos_id, v->eos_id, v->pad_id};
  static const char *const sname[3] = {"bos", "eos", "pad"};
  for (int k = 0; k < 3; k++)
    if (sid[k] < -1 || sid[k] >= (int64_t)V)
      return drd_fail(DRD_ERROR_BAD_MODEL, "tokenizer: %s token id %d is outside the vocabulary (size %u)",
                      sname[k], sid[k], V);

  drd_byte_unicode bu;
  byte_unicode_init(&bu);
  char shown[256];
  drd_status st = DRD_ERROR_OUT_OF_HOST_MEMORY;
  uint8_t *scratch = NULL;
  drd_tokenizer *t = calloc(1, sizeof *t);
  if (!t) goto oom;
  t->n_tokens = V;

  /* The raw bytes are never longer than the token strings. */
  size_t total = 0, longest = 0;
  for (uint32_t i = 0; i < V; i++) {
    if (!v->tokens[i] || !v->tokens[i][0]) {
      st = drd_fail(DRD_ERROR_BAD_MODEL, "tokenizer: token %u is empty", i);
      goto fail;
    }
    size_t n = strlen(v->tokens[i]);
    if (n > UINT32_MAX) {
      st = drd_fail(DRD_ERROR_BAD_MODEL, "tokenizer: token %u is %zu bytes long", i, n);
      goto fail;
    }
    if (n > SIZE_MAX - total - 1) goto oom;
    total += n;
    if (n > longest) longest = n;
  }
  t->blob = malloc(total + 1);
  t->tok_off = malloc((size_t)V * sizeof *t->tok_off);
  t->tok_len = malloc((size_t)V * sizeof *t->tok_len);
  t->is_special = calloc(V, 1);
  t->tok_mask = table_size(V) - 1;
  t->tok_hash = malloc((t->tok_mask + 1) * sizeof *t->tok_hash);
  if (!t->blob || !t->tok_off || !t->tok_len || !t->is_special || !t->tok_hash) goto oom;
  memset(t->tok_hash, 0xff, (t->tok_mask + 1) * sizeof *t->tok_hash);
  for (int k = 0; k < 3; k++)
    if (sid[k] >= 0) t->is_special[sid[k]] = 1;

  size_t off = 0;
  for (uint32_t i = 0; i < V; i++) {
    const char *s = v->tokens[i];
    long nb = byte_unicode_decode(&bu, s, strlen(s), t->blob + off);
    if (nb < 0) {
      st = drd_fail(DRD_ERROR_BAD_MODEL, "tokenizer: token %u \"%s\" is not in GPT-2 byte-to-unicode form",
                    i, show(s, shown));
      goto fail;
    }
    t->tok_off[i] = off;
    t->tok_len[i] = (uint32_t)nb;
    off += (size_t)nb;
    int32_t dup = tok_insert(t, (int32_t)i);
    if (dup >= 0) {
      st = drd_fail(DRD_ERROR_BAD_MODEL, "tokenizer: token %u \"%s\" duplicates token %d", i,
                    show(s, shown), dup);
      goto fail;
    }
  }
  for (int b = 0; b < 256; b++) {
    uint8_t c = (uint8_t)b;
    t->byte_id[b] = tok_find(t, &c, 1);
    if (t->byte_id[b] < 0) {
      st = drd_fail(DRD_ERROR_BAD_MODEL, "tokenizer: the single-byte token for byte 0x%02x is missing", b);
      goto fail;
    }
    if (t->is_special[t->byte_id[b]]) {
      st = drd_fail(DRD_ERROR_BAD_MODEL, "tokenizer: special token id %d is the single-byte token 0x%02x",
                    t->byte_id[b], b);
      goto fail;
    }
  }

  /* Merges: ids of both sides, the id of their concatenation, rank = position in the list. */
  t->merge_mask = table_size(v->n_merges) - 1;
  t->merge_hash = malloc((t->merge_mask + 1) * sizeof *t->merge_hash);
  scratch = malloc(2 * longest + 2);
  if (!t->merge_hash || !scratch) goto oom;
  for (size_t h = 0; h <= t->merge_mask; h++) t->merge_hash[h].key = UINT64_MAX;
  for (uint32_t r = 0; r < v->n_merges; r++) {
    int32_t a = 0, b = 0;
    st = parse_merge(t, &bu, r, v->merges[r], scratch, longest, &a, &b);
    if (st != DRD_OK) goto fail;
    memcpy(scratch, t->blob + t->tok_off[a], t->tok_len[a]);
    memcpy(scratch + t->tok_len[a], t->blob + t->tok_off[b], t->tok_len[b]);
    int32_t res = tok_find(t, scratch, (size_t)t->tok_len[a] + t->tok_len[b]);
    if (res < 0) {
      st = drd_fail(DRD_ERROR_BAD_MODEL, "tokenizer: merge %u \"%s\": the result is not a token", r,
                    show(v->merges[r], shown));
      goto fail;
    }
    if (t->is_special[res]) {
      st = drd_fail(DRD_ERROR_BAD_MODEL, "tokenizer: merge %u \"%s\" produces a special token", r,
                    show(v->merges[r], shown));
      goto fail;
    }
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t h = hash_u64(key) & t->merge_mask;
    while (t->merge_hash[h].key != UINT64_MAX && t->merge_hash[h].key != key) h = (h + 1) & t->merge_mask;
    if (t->merge_hash[h].key == key) {
      st = drd_fail(DRD_ERROR_BAD_MODEL, "tokenizer: merge %u \"%s\" repeats merge %u", r,
                    show(v->merges[r], shown), t->merge_hash[h].rank);
      goto fail;
    }
    t->merge_hash[h] = (drd_merge_slot){.key = key, .rank = r, .result = res};
  }
  free(scratch);
  *out = t;
  return DRD_OK;

oom:
  st = drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "tokenizer: out of memory building the vocabulary");
fail:
  free(scratch);
  drd_tokenizer_destroy(t);
  return st;
}

/* ------------------------------------------------------------------ pre-tokenizer */
enum { CLS_LETTER = 0, CLS_DIGIT = 1, CLS_SPACE = 2, CLS_OTHER = 3 };

/* ASCII classes only; every byte >= 0x80 is a letter so UTF-8 characters stay whole. */
static int byte_class(uint8_t b) {
  if (b >= 0x80 || (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z')) return CLS_LETTER;
  if (b >= '0' && b <= '9') return CLS_DIGIT;
  if (b == ' ' || (b >= 0x09 && b <= 0x0D)) return CLS_SPACE;
  return CLS_OTHER;
}

/* Length of the piece starting at s[i] (GPT-2's pattern over the classes above:
 * 's|'t|'re|'ve|'m|'ll|'d| ?L+| ?N+| ?O+|W+(?!\S)|W+). */
static size_t piece_len(const uint8_t *s, size_t n, size_t i) {
  uint8_t c = s[i];
  int cls = byte_class(c);
  size_t j = i + 1;
  if (c == '\'' && i + 1 < n && (s[i + 1] == 's' || s[i + 1] == 't' || s[i + 1] == 'm' || s[i + 1] == 'd'))
    return 2;
  if (c == '\'' && i + 2 < n &&
      ((s[i + 1] == 'r' && s[i + 2] == 'e') || (s[i + 1] == 'v' && s[i + 2] == 'e') ||
       (s[i + 1] == 'l' && s[i + 2] == 'l')))
    return 3;
  if (cls != CLS_SPACE || (c == ' ' && i + 1 < n && byte_class(s[i + 1]) != CLS_SPACE)) {
    int k = cls;
    if (cls == CLS_SPACE) { /* a single leading space joins the run after it */
      k = byte_class(s[i + 1]);
      j = i + 2;
    }
    while (j < n && byte_class(s[j]) == k) j++;
    return j - i;
  }
  while (j < n && byte_class(s[j]) == CLS_SPACE) j++;
  /* W+(?!\S): a run followed by text gives its last byte to the piece that follows. */
  if (j < n && j - i >= 2) j--;
  return j - i;
}

/* ------------------------------------------------------------------ BPE */
typedef struct drd_bpe_entry {
  uint32_t rank, pos;  /* order: lowest rank first, then leftmost */
  int32_t a, b;        /* the pair when pushed; a mismatch later means the entry is stale */
} drd_bpe_entry;

typedef struct drd_bpe_work {
  size_t cap;          /* pieces up to this length fit */
  int32_t *sym;        /* [cap] token id of the symbol starting at each position */
  uint32_t *next, *prev; /* [cap] linked list of live symbols (next = n at the end) */
  uint8_t *dead;       /* [cap] */
  drd_bpe_entry *heap; /* [3 * cap]: n - 1 initial pairs + at most 2 per merge */
} drd_bpe_work;

static void work_free(drd_bpe_work *w) {
  free(w->sym);
  free(w->next);
  free(w->prev);
  free(w->dead);
  free(w->heap);
}

static int work_reserve(drd_bpe_work *w, size_t n) {
  if (n <= w->cap) return 1;
  size_t cap = w->cap ? w->cap : 64;
  while (cap < n) cap *= 2;
  work_free(w);
  memset(w, 0, sizeof *w);
  w->sym = malloc(cap * sizeof *w->sym);
  w->next = malloc(cap * sizeof *w->next);
  w->prev = malloc(cap * sizeof *w->prev);
  w->dead = malloc(cap);
  w->heap = malloc(3 * cap * sizeof *w->heap);
  if (!w->sym || !w->next || !w->prev || !w->dead || !w->heap) return 0;
  w->cap = cap;
  return 1;
}

static int entry_less(const drd_bpe_entry *x, const drd_bpe_entry *y) {
  return x->rank < y->rank || (x->rank == y->rank && x->pos < y->pos);
}

static void heap_push(drd_bpe_entry *h, size_t *n, drd_bpe_entry e) {
  size_t i = (*n)++;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!entry_less(&e, &h[p])) break;
    h[i] = h[p];
    i = p;
  }
  h[i] = e;
}

static drd_bpe_entry heap_pop(drd_bpe_entry *h, size_t *n) {
  drd_bpe_entry top = h[0], last = h[--(*n)];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= *n) break;
    if (c + 1 < *n && entry_less(&h[c + 1], &h[c])) c++;
    if (!entry_less(&h[c], &last)) break;
    h[i] = h[c];
    i = c;
  }
  if (*n > 0) h[i] = last;
  return top;
}

static void push_pair(const drd_tokenizer *t, drd_bpe_work *w, size_t *hn, uint32_t p, uint32_t q) {
  const drd_merge_slot *m = merge_find(t, w->sym[p], w->sym[q]);
  if (m) heap_push(w->heap, hn, (drd_bpe_entry){.rank = m->rank, .pos = p, .a = w->sym[p], .b = w->sym[q]});
}

/* Applies merges to one piece: always the live adjacent pair with the lowest rank, leftmost on
 * ties, one merge at a time; appends the resulting ids to out. */
static void bpe_piece(const drd_tokenizer *t, drd_bpe_work *w, const uint8_t *s, uint32_t n,
                      int32_t *out, size_t *n_out) {
  for (uint32_t i = 0; i < n; i++) {
    w->sym[i] = t->byte_id[s[i]];
    w->next[i] = i + 1;
    w->prev[i] = i - 1; /* wraps to UINT32_MAX for i = 0: "none" */
    w->dead[i] = 0;
  }
  size_t hn = 0;
  for (uint32_t i = 0; i + 1 < n; i++) push_pair(t, w, &hn, i, i + 1);
  while (hn > 0) {
    drd_bpe_entry e = heap_pop(w->heap, &hn);
    uint32_t p = e.pos, q = w->next[p];
    if (w->dead[p] || q >= n || w->sym[p] != e.a || w->sym[q] != e.b) continue; /* stale */
    w->sym[p] = merge_find(t, e.a, e.b)->result;
    w->dead[q] = 1;
    w->next[p] = w->next[q];
    if (w->next[p] < n) w->prev[w->next[p]] = p;
    if (w->prev[p] != UINT32_MAX) push_pair(t, w, &hn, w->prev[p], p);
    if (w->next[p] < n) push_pair(t, w, &hn, p, w->next[p]);
  }
  for (uint32_t i = 0; i < n; i = w->next[i]) out[(*n_out)++] = w->sym[i];
}

drd_status drd_tokenizer_encode(const drd_tokenizer *t, const char *bytes, size_t len,
                                int32_t **ids, size_t *n_ids) {
  if (!t || !ids || !n_ids || (!bytes && len > 0))
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "drd_tokenizer_encode: NULL argument");
  *ids = NULL;
  *n_ids = 0;
  /* Never more ids than bytes, so one allocation suffices. */
  if (len > SIZE_MAX / sizeof(int32_t) - 1)
    return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "drd_tokenizer_encode: input of %zu bytes is too long", len);
  int32_t *out = malloc((len ? len : 1) * sizeof *out);
  if (!out) return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "drd_tokenizer_encode: out of memory");
  const uint8_t *s = (const uint8_t *)bytes;
  drd_bpe_work w = {0};
  size_t n = 0;
  for (size_t i = 0; i < len;) {
    size_t pl = piece_len(s, len, i);
    if (pl == 1) {
      out[n++] = t->byte_id[s[i]];
    } else {
      if (pl > DRD_TOK_MAX_PIECE) {
        work_free(&w);
        free(out);
        return drd_fail(DRD_ERROR_INVALID_ARGUMENT,
                        "drd_tokenizer_encode: a run of %zu bytes of one class is too long to tokenize", pl);
      }
      if (!work_reserve(&w, pl)) {
        work_free(&w);
        free(out);
        return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "drd_tokenizer_encode: out of memory");
      }
      bpe_piece(t, &w, s + i, (uint32_t)pl, out, &n);
    }
    i += pl;
  }
  work_free(&w);
  *ids = out;
  *n_ids = n;
  return DRD_OK;
}

/* ------------------------------------------------------------------ decode */
drd_status drd_tokenizer_decode(const drd_tokenizer *t, const int32_t *ids, size_t n,
                                char **bytes, size_t *len) {
  if (!t || !bytes || !len || (!ids && n > 0))
    return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "drd_tokenizer_decode: NULL argument");
  *bytes = NULL;
  *len = 0;
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    if (ids[i] < 0 || (uint32_t)ids[i] >= t->n_tokens)
      return drd_fail(DRD_ERROR_INVALID_ARGUMENT, "drd_tokenizer_decode: id %d at position %zu is outside "
                      "the vocabulary (size %u)", ids[i], i, t->n_tokens);
    if (t->is_special[ids[i]]) continue;
    if (t->tok_len[ids[i]] > SIZE_MAX - 1 - total)
      return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "drd_tokenizer_decode: output too long");
    total += t->tok_len[ids[i]];
  }
  char *o = malloc(total + 1);
  if (!o) return drd_fail(DRD_ERROR_OUT_OF_HOST_MEMORY, "drd_tokenizer_decode: out of memory");
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (t->is_special[ids[i]]) continue;
    memcpy(o + k, t->blob + t->tok_off[ids[i]], t->tok_len[ids[i]]);
    k += t->tok_len[ids[i]];
  }
  o[k] = '\0';
  *bytes = o;
  *len = k;
  return DRD_OK;
}
