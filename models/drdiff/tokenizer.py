"""Byte-level BPE tokenizer for DrDiff (SPEC section 2; rules in docs/tokenizer.md).

The C implementation in host/tokenizer.c must produce the same ids for every input, so every
rule here is defined on bytes with ASCII classes only (no Unicode tables):

* every byte is a letter (A-Z, a-z and every byte >= 0x80, so a UTF-8 character is never
  split), a digit (0-9), whitespace (\\t \\n \\v \\f \\r and space) or other;
* the pre-tokenizer is GPT-2's pattern over those classes:
  ``'s|'t|'re|'ve|'m|'ll|'d| ?L+| ?N+| ?O+|W+(?!\\S)|W+``;
* BPE inside each piece repeatedly applies the adjacent pair with the lowest merge rank,
  the leftmost one on ties, one merge at a time (as Hugging Face tokenizers does);
* tokens are stored in GPT-2's byte-to-unicode form; the special tokens (bos, eos, pad) are
  never produced by encode and decode to nothing.

Nothing here depends on numpy or torch.
"""

from __future__ import annotations

import heapq
import random
import re
from collections import Counter
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

SPECIAL_TOKENS = ("<|bos|>", "<|eos|>", "<|pad|>")


# --------------------------------------------------------------------------- byte <-> unicode
def bytes_to_unicode() -> Dict[int, str]:
    """GPT-2's table: printable Latin-1 bytes map to themselves, the other 68 bytes to
    U+0100.. in byte order, so every token string is printable and has no spaces."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) \
        + list(range(ord("\u00ae"), ord("\u00ff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_TO_UNICODE: Dict[int, str] = bytes_to_unicode()
UNICODE_TO_BYTE: Dict[str, int] = {c: b for b, c in BYTE_TO_UNICODE.items()}


def token_to_bytes(tok: str) -> bytes:
    """The raw bytes of a token string; ValueError if it is not in byte-unicode form."""
    try:
        return bytes(UNICODE_TO_BYTE[c] for c in tok)
    except KeyError as e:
        raise ValueError(f"token {tok!r} is not in byte-to-unicode form (character {e.args[0]!r})") \
            from None


def bytes_to_token(b: bytes) -> str:
    return "".join(BYTE_TO_UNICODE[x] for x in b)


# --------------------------------------------------------------------------- pre-tokenizer
# Byte classes (docs/tokenizer.md): L letters, N digits, W whitespace, O other.
_L = rb"A-Za-z\x80-\xff"
_N = rb"0-9"
_W = rb"\t\n\x0b\x0c\r "
_PRETOKENIZE_RE = re.compile(
    rb"'(?:s|t|re|ve|m|ll|d)"
    rb"| ?[" + _L + rb"]+"
    rb"| ?[" + _N + rb"]+"
    rb"| ?[^" + _L + _N + _W + rb"]+"
    rb"|[" + _W + rb"]+(?![^" + _W + rb"])"
    rb"|[" + _W + rb"]+")


def pretokenize(data: bytes) -> List[bytes]:
    """Splits bytes into the pieces BPE works on; the pieces concatenate to the input."""
    return _PRETOKENIZE_RE.findall(data)


def _byte_class(b: int) -> int:
    if b >= 0x80 or 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A:
        return 0  # letter
    if 0x30 <= b <= 0x39:
        return 1  # digit
    if b in (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20):
        return 2  # whitespace
    return 3      # other


def pretokenize_reference(data: bytes) -> List[bytes]:
    """The same split written as the scan loop that host/tokenizer.c uses; the parity test
    checks it against the regex so docs, Python and C cannot drift apart."""
    out = []
    n = len(data)
    i = 0
    while i < n:
        c = data[i]
        cls = _byte_class(c)
        j = i + 1
        if c == 0x27 and i + 1 < n and data[i + 1] in b"stmd":
            j = i + 2
        elif c == 0x27 and i + 2 < n and data[i + 1:i + 3] in (b"re", b"ve", b"ll"):
            j = i + 3
        elif cls != 2 or (c == 0x20 and i + 1 < n and _byte_class(data[i + 1]) != 2):
            k = cls if cls != 2 else _byte_class(data[i + 1])
            if cls == 2:
                j = i + 2  # the leading space joins the run after it
            while j < n and _byte_class(data[j]) == k:
                j += 1
        else:
            while j < n and _byte_class(data[j]) == 2:
                j += 1
            if j < n and j - i >= 2:
                j -= 1  # leave the last whitespace byte to the run that follows
        out.append(data[i:j])
        i = j
    return out


# --------------------------------------------------------------------------- tokenizer
class Tokenizer:
    """Byte-level BPE over a GPT-2 style vocabulary (token strings in byte-unicode form,
    merges as "left right"). Raises ValueError for the vocabularies the C loader rejects."""

    def __init__(self, tokens: Sequence[str], merges: Sequence[str],
                 bos_id: int = -1, eos_id: int = -1, pad_id: int = -1):
        self.tokens = list(tokens)
        self.merges = list(merges)
        self.bos_id, self.eos_id, self.pad_id = int(bos_id), int(eos_id), int(pad_id)
        V = len(self.tokens)
        specials = set()
        for name, sid in (("bos", self.bos_id), ("eos", self.eos_id), ("pad", self.pad_id)):
            if sid != -1 and not 0 <= sid < V:
                raise ValueError(f"{name} token id {sid} is outside the vocabulary (size {V})")
            if sid != -1:
                specials.add(sid)
        self.special_ids = frozenset(specials)
        self._bytes: List[bytes] = []
        self._id_of: Dict[bytes, int] = {}
        for i, t in enumerate(self.tokens):
            if not isinstance(t, str) or t == "":
                raise ValueError(f"token {i} is empty or not a string")
            b = token_to_bytes(t)
            if b in self._id_of:
                raise ValueError(f"token {i} {t!r} duplicates token {self._id_of[b]}")
            self._id_of[b] = i
            self._bytes.append(b)
        self._byte_id = []
        for x in range(256):
            i = self._id_of.get(bytes([x]))
            if i is None:
                raise ValueError(f"the single-byte token for byte 0x{x:02x} "
                                 f"({BYTE_TO_UNICODE[x]!r}) is missing")
            if i in self.special_ids:
                raise ValueError(f"special token id {i} is the single-byte token 0x{x:02x}")
            self._byte_id.append(i)
        # (left id, right id) -> (rank, result id)
        self._merge: Dict[Tuple[int, int], Tuple[int, int]] = {}
        for r, m in enumerate(self.merges):
            parts = m.split(" ") if isinstance(m, str) else []
            if len(parts) != 2 or not parts[0] or not parts[1]:
                raise ValueError(f"merge {r} {m!r} is not two tokens separated by one space")
            ids = []
            for p in parts:
                try:
                    pid = self._id_of.get(token_to_bytes(p))
                except ValueError:
                    pid = None
                if pid is None:
                    raise ValueError(f"merge {r} {m!r} names the unknown token {p!r}")
                if pid in self.special_ids:
                    raise ValueError(f"merge {r} {m!r} names a special token")
                ids.append(pid)
            res = self._id_of.get(self._bytes[ids[0]] + self._bytes[ids[1]])
            if res is None:
                raise ValueError(f"merge {r} {m!r}: the result {parts[0] + parts[1]!r} "
                                 f"is not a token")
            if res in self.special_ids:
                raise ValueError(f"merge {r} {m!r} produces a special token")
            key = (ids[0], ids[1])
            if key in self._merge:
                raise ValueError(f"merge {r} {m!r} repeats merge {self._merge[key][0]}")
            self._merge[key] = (r, res)
        self._cache: Dict[bytes, Tuple[int, ...]] = {}

    # -- construction helpers
    @classmethod
    def from_gguf_metadata(cls, md: dict) -> "Tokenizer":
        """From the tokenizer.ggml.* keys of a GGUF metadata dict (token ids absent -> -1)."""
        model = md.get("tokenizer.ggml.model", "gpt2")
        if model != "gpt2":
            raise ValueError(f"tokenizer.ggml.model is {model!r}, expected 'gpt2'")
        for k in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges"):
            if k not in md:
                raise ValueError(f"{k} is missing")
            if not isinstance(md[k], (list, tuple)):
                raise ValueError(f"{k} is not a list")
        def sid(key):
            v = md.get(key, -1)
            return -1 if v is None else int(v)

        def strs(key):  # a GGUF reader may hand strings over as bytes
            try:
                return [x.decode("utf-8") if isinstance(x, (bytes, bytearray)) else x
                        for x in md[key]]
            except UnicodeDecodeError as e:
                raise ValueError(f"{key} holds a string that is not UTF-8: {e}") from None
        return cls(strs("tokenizer.ggml.tokens"), strs("tokenizer.ggml.merges"),
                   sid("tokenizer.ggml.bos_token_id"), sid("tokenizer.ggml.eos_token_id"),
                   sid("tokenizer.ggml.padding_token_id"))

    def to_gguf_metadata(self) -> dict:
        md = {"tokenizer.ggml.model": "gpt2",
              "tokenizer.ggml.tokens": list(self.tokens),
              "tokenizer.ggml.merges": list(self.merges)}
        for key, v in (("bos", self.bos_id), ("eos", self.eos_id), ("padding", self.pad_id)):
            if v >= 0:
                md[f"tokenizer.ggml.{key}_token_id"] = v
        return md

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    # -- BPE
    def _bpe(self, piece: bytes) -> Tuple[int, ...]:
        ids = [self._byte_id[x] for x in piece]
        if len(ids) < 2:
            return tuple(ids)
        if len(ids) <= 32:
            return tuple(self._bpe_short(ids))
        return tuple(self._bpe_heap(ids))

    def _bpe_short(self, ids: List[int]) -> List[int]:
        """Lowest rank first, leftmost on ties, one merge at a time: a plain loop."""
        merge = self._merge
        while len(ids) > 1:
            best = None
            best_pos = -1
            for p in range(len(ids) - 1):
                m = merge.get((ids[p], ids[p + 1]))
                if m is not None and (best is None or m[0] < best[0]):
                    best, best_pos = m, p
            if best is None:
                break
            ids[best_pos:best_pos + 2] = [best[1]]
        return ids

    def _bpe_heap(self, ids: List[int]) -> List[int]:
        """The same rule with a heap of (rank, position) and lazy deletion, for long pieces
        (a long run of bytes >= 0x80 is one piece)."""
        merge = self._merge
        n = len(ids)
        sym = ids[:]
        nxt = list(range(1, n + 1))
        prv = list(range(-1, n - 1))
        alive = [True] * n
        heap = []
        for p in range(n - 1):
            m = merge.get((sym[p], sym[p + 1]))
            if m is not None:
                heap.append((m[0], p, sym[p], sym[p + 1]))
        heapq.heapify(heap)
        while heap:
            rank, p, a, b = heapq.heappop(heap)
            q = nxt[p]
            if not alive[p] or q >= n or sym[p] != a or sym[q] != b:
                continue  # stale: one side has been merged since this entry was pushed
            sym[p] = merge[(a, b)][1]
            alive[q] = False
            nxt[p] = nxt[q]
            if nxt[p] < n:
                prv[nxt[p]] = p
            if prv[p] >= 0:
                m = merge.get((sym[prv[p]], sym[p]))
                if m is not None:
                    heapq.heappush(heap, (m[0], prv[p], sym[prv[p]], sym[p]))
            if nxt[p] < n:
                m = merge.get((sym[p], sym[nxt[p]]))
                if m is not None:
                    heapq.heappush(heap, (m[0], p, sym[p], sym[nxt[p]]))
        return [sym[p] for p in range(n) if alive[p]]

    # -- public API
    def encode(self, text: Union[str, bytes, bytearray]) -> List[int]:
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        out: List[int] = []
        cache = self._cache
        for piece in pretokenize(data):
            r = cache.get(piece)
            if r is None:
                r = self._bpe(piece)
                if len(cache) < 1 << 18 and len(piece) <= 256:
                    cache[piece] = r
            out.extend(r)
        return out

    def decode(self, ids: Iterable[int]) -> bytes:
        """Raw bytes; special tokens decode to nothing; IndexError for an out-of-range id."""
        V = len(self._bytes)
        parts = []
        for i in ids:
            i = int(i)
            if not 0 <= i < V:
                raise IndexError(f"token id {i} is outside the vocabulary (size {V})")
            if i not in self.special_ids:
                parts.append(self._bytes[i])
        return b"".join(parts)

    def decode_text(self, ids: Iterable[int]) -> str:
        return self.decode(ids).decode("utf-8", errors="replace")

    def token_bytes(self, i: int) -> bytes:
        return self._bytes[i]


# --------------------------------------------------------------------------- random vocabulary
def random_vocab(V: int, seed: int) -> Tuple[List[str], List[str], int, int, int]:
    """A valid vocabulary of exactly V tokens (V >= 259) for tests and random models: the 256
    single-byte tokens (id = byte value), V - 259 merges drawn deterministically from seed
    (each makes a new token), then <|bos|>, <|eos|>, <|pad|> at ids V-3, V-2, V-1.
    Merges mostly join bytes of one class (optionally after a leading space), so most of them
    can fire on real text."""
    if V < 259:
        raise ValueError(f"V = {V}: need at least 256 byte tokens + 3 special tokens")
    rng = random.Random(int(seed))
    byte_tokens = [bytes([b]) for b in range(256)]
    known = set(byte_tokens) | {s.encode() for s in SPECIAL_TOKENS}
    singles = {0: [bytes([b]) for b in range(256) if _byte_class(b) == 0],
               1: [bytes([b]) for b in range(256) if _byte_class(b) == 1],
               2: [bytes([b]) for b in range(256) if _byte_class(b) == 2],
               3: [bytes([b]) for b in range(256) if _byte_class(b) == 3]}
    ascii_letters = [bytes([b]) for b in range(256) if b < 0x80 and _byte_class(b) == 0]
    bodies: Dict[int, List[bytes]] = {k: [] for k in range(4)}  # merged, one class only
    heads: Dict[int, List[bytes]] = {k: [] for k in range(4)}   # merged, " " + one class
    class_weights = [0.6, 0.12, 0.1, 0.18]

    def pick_body(k: int) -> bytes:
        if bodies[k] and rng.random() < 0.5:
            return rng.choice(bodies[k])
        if k == 0 and rng.random() < 0.7:
            return rng.choice(ascii_letters)
        return rng.choice(singles[k])

    merged: List[Tuple[bytes, bytes]] = []
    new_tokens: List[bytes] = []
    n_new = V - 259
    while len(new_tokens) < n_new:
        res = None
        for _ in range(64):
            k = rng.choices(range(4), class_weights)[0]
            u = rng.random()
            if k != 2 and u < 0.15:
                left, is_head = b" ", True
            elif k != 2 and u < 0.4 and heads[k]:
                left, is_head = rng.choice(heads[k]), True
            else:
                left, is_head = pick_body(k), False
            right = pick_body(k)
            if left + right not in known:
                res = (left, right, k, is_head)
                break
        if res is None:  # that corner is full: any two known tokens will do
            pool = byte_tokens + new_tokens
            while True:
                left, right = rng.choice(pool), rng.choice(pool)
                if left + right not in known:
                    break
            res = (left, right, -1, False)
        left, right, k, is_head = res
        tok = left + right
        known.add(tok)
        new_tokens.append(tok)
        merged.append((left, right))
        if k >= 0:
            (heads if is_head else bodies)[k].append(tok)
    tokens = [bytes_to_token(b) for b in byte_tokens + new_tokens] + list(SPECIAL_TOKENS)
    merges = [bytes_to_token(a) + " " + bytes_to_token(b) for a, b in merged]
    return tokens, merges, V - 3, V - 2, V - 1


# --------------------------------------------------------------------------- training
def train_bpe(texts: Iterable[Union[str, bytes]], vocab_size: int,
              min_frequency: int = 1) -> Tuple[List[str], List[str]]:
    """Trains merges on the pre-tokenized piece counts of texts. Returns (tokens, merges)
    with the layout of random_vocab: 256 byte tokens, the learned tokens, then the special
    tokens <|bos|>, <|eos|>, <|pad|> as the last three (ids len-3, len-2, len-1).

    Each step merges the most frequent adjacent pair (ties: smallest left id, then right id)
    in every piece, left to right. It stops at vocab_size tokens, or earlier (fewer tokens)
    when no pair occurs min_frequency times. Incremental: a step touches only the pieces
    that contain the pair, and a heap with lazy deletion finds the best pair."""
    if vocab_size < 259:
        raise ValueError(f"vocab_size = {vocab_size}: need at least 259")
    counts: Counter = Counter()
    for t in texts:
        data = t.encode("utf-8") if isinstance(t, str) else bytes(t)
        counts.update(pretokenize(data))
    tok_bytes: List[bytes] = [bytes([b]) for b in range(256)]
    id_of: Dict[bytes, int] = {b: i for i, b in enumerate(tok_bytes)}
    specials = {s.encode() for s in SPECIAL_TOKENS}
    words: List[List[int]] = []
    freq: List[int] = []
    for piece, c in counts.items():
        if len(piece) >= 2:
            words.append(list(piece))
            freq.append(c)
    pair_count: Dict[Tuple[int, int], int] = {}
    where: Dict[Tuple[int, int], set] = {}
    for wi, w in enumerate(words):
        f = freq[wi]
        for p in zip(w, w[1:]):
            pair_count[p] = pair_count.get(p, 0) + f
            where.setdefault(p, set()).add(wi)
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    merges: List[Tuple[int, int]] = []
    target = vocab_size - len(SPECIAL_TOKENS)
    banned = set()
    while len(tok_bytes) < target and heap:
        negc, pair = heapq.heappop(heap)
        cur = pair_count.get(pair, 0)
        if cur != -negc:
            if cur > 0:
                heapq.heappush(heap, (-cur, pair))
            continue
        if cur < max(1, min_frequency):
            break
        a, b = pair
        new_b = tok_bytes[a] + tok_bytes[b]
        if new_b in specials:  # would collide with a special token: never merge this pair
            banned.add(pair)
            pair_count[pair] = 0
            continue
        new = id_of.get(new_b)
        if new is None:
            new = len(tok_bytes)
            tok_bytes.append(new_b)
            id_of[new_b] = new
        merges.append(pair)
        for wi in sorted(where.pop(pair, ())):
            w = words[wi]
            f = freq[wi]
            # retract the word's old pairs, rewrite it, add its new pairs
            for p in zip(w, w[1:]):
                pair_count[p] -= f
            out = []
            i = 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(new)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            words[wi] = out
            for p in zip(out, out[1:]):
                if p in banned:
                    continue
                old = pair_count.get(p, 0)
                pair_count[p] = old + f
                where.setdefault(p, set()).add(wi)
            for p in set(zip(out, out[1:])):
                if p not in banned and pair_count[p] > 0:
                    heapq.heappush(heap, (-pair_count[p], p))
        pair_count.pop(pair, None)
    tokens = [bytes_to_token(b) for b in tok_bytes] + list(SPECIAL_TOKENS)
    merge_strs = [bytes_to_token(tok_bytes[a]) + " " + bytes_to_token(tok_bytes[b])
                  for a, b in merges]
    return tokens, merge_strs
