"""Tokenized training data: tokenizer training, encoding, and the batch sampler.

    python3 -m drdiff.data [--cache models/.cache] [--vocab-size 4096] [--offline]

runs drdiff.corpora (fetch, clean, split) and then writes `<cache>/data/`, the only
folder the GPU machine needs (a few MB):

* `tokenizer.json`: {"tokens", "merges", "bos_id", "eos_id", "pad_id"}, a byte-level BPE
  trained with drdiff.tokenizer.train_bpe on the training split;
* `train.npy`, `validation.npy`: uint16 token streams, every document followed by EOS;
* `words.txt`: lowercased alphabetic words seen at least WORD_MIN_COUNT times in the
  training text, one per line (the word list of evaluate.py);
* `meta.json`: sizes and the corpus licences.

TokenData samples windows of N tokens from a stream: half of them start at the start of a
line (after a token that ends in "\\n", or after EOS) so prompts usually start a sentence,
the rest anywhere. Windows may cross a document boundary (the EOS token is then inside).
"""
import argparse
import json
import os
import re
import sys
import time
from collections import Counter

import numpy as np

from . import corpora
from .tokenizer import Tokenizer, train_bpe

WORD_MIN_COUNT = 3
DEFAULT_VOCAB = 4096
_WORD_RE = re.compile(r"[a-z]+")


def data_dir(cache):
    return os.path.join(cache, "data")


def words_of(text):
    return _WORD_RE.findall(text.lower())


def load_tokenizer(path):
    with open(path, encoding="utf-8") as f:
        t = json.load(f)
    return Tokenizer(t["tokens"], t["merges"], t["bos_id"], t["eos_id"], t["pad_id"])


def save_tokenizer(path, tokens, merges):
    V = len(tokens)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump({"tokens": tokens, "merges": merges, "bos_id": V - 3, "eos_id": V - 2,
                   "pad_id": V - 1}, f, ensure_ascii=True)
    os.replace(path + ".tmp", path)


def encode_documents(tok, docs):
    out = []
    for d in docs:
        out.extend(tok.encode(d["text"]))
        out.append(tok.eos_id)
    return np.asarray(out, dtype=np.uint16)


def prepare_from_documents(out_dir, train_docs, val_docs, vocab_size, extra_meta=None,
                           verbose=True):
    """Trains the tokenizer, encodes both splits and writes out_dir (see module doc)."""
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.time()
    tokens, merges = train_bpe([d["text"] for d in train_docs], vocab_size)
    save_tokenizer(os.path.join(out_dir, "tokenizer.json"), tokens, merges)
    tok = load_tokenizer(os.path.join(out_dir, "tokenizer.json"))
    if tok.vocab_size > 65535:
        raise ValueError("vocabulary too large for uint16 token streams")
    t1 = time.time()
    meta = {"vocab_size": tok.vocab_size, "merges": len(merges),
            "tokenizer_seconds": round(t1 - t0, 1)}
    for split, docs in (("train", train_docs), ("validation", val_docs)):
        ids = encode_documents(tok, docs)
        np.save(os.path.join(out_dir, f"{split}.npy.tmp.npy"), ids)
        os.replace(os.path.join(out_dir, f"{split}.npy.tmp.npy"),
                   os.path.join(out_dir, f"{split}.npy"))
        n_bytes = sum(len(d["text"].encode("utf-8")) for d in docs)
        meta[split] = {"documents": len(docs), "tokens": int(ids.size),
                       "words": sum(len(d["text"].split()) for d in docs),
                       "bytes": n_bytes, "bytes_per_token": round(n_bytes / max(1, ids.size), 3)}
    meta["encode_seconds"] = round(time.time() - t1, 1)
    counts = Counter()
    for d in train_docs:
        counts.update(words_of(d["text"]))
    wl = sorted(w for w, c in counts.items() if c >= WORD_MIN_COUNT)
    with open(os.path.join(out_dir, "words.txt"), "w") as f:
        f.write("\n".join(wl) + "\n")
    meta["word_list"] = {"min_count": WORD_MIN_COUNT, "words": len(wl)}
    meta.update(extra_meta or {})
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    if verbose:
        print(f"tokenizer: V = {tok.vocab_size} ({len(merges)} merges), "
              f"{meta['tokenizer_seconds']} s")
        for split in ("train", "validation"):
            m = meta[split]
            print(f"{split:10s}: {m['tokens']:9d} tokens, {m['bytes_per_token']} bytes/token")
        print(f"word list: {len(wl)} words seen >= {WORD_MIN_COUNT} times")
    return meta


def prepare(cache, vocab_size=DEFAULT_VOCAB, offline=False):
    stats = corpora.build(cache, offline)
    return prepare_from_documents(data_dir(cache), corpora.read_documents(cache, "train"),
                                  corpora.read_documents(cache, "validation"), vocab_size,
                                  {"licenses": stats["licenses"], "corpora": stats})


# ------------------------------------------------------------------ sampling

class TokenData:
    """One split's token stream plus the positions where a line starts."""

    def __init__(self, ids, tok):
        self.ids = np.asarray(ids, dtype=np.int64)
        ends_line = np.zeros(tok.vocab_size, dtype=bool)
        for i in range(tok.vocab_size):
            if i == tok.eos_id or (i not in tok.special_ids and tok.token_bytes(i).endswith(b"\n")):
                ends_line[i] = True
        starts = np.flatnonzero(ends_line[self.ids[:-1]]) + 1
        self.line_starts = np.concatenate([[0], starts]).astype(np.int64)

    def __len__(self):
        return self.ids.size

    def starts(self, rng, batch, n, line_frac=0.5):
        """batch window starts for windows of n tokens (n <= len)."""
        hi = self.ids.size - n
        if hi < 0:
            raise ValueError(f"window {n} longer than the stream ({self.ids.size} tokens)")
        s = rng.integers(0, hi + 1, size=batch)
        ls = self.line_starts[self.line_starts <= hi]
        use_line = rng.random(batch) < line_frac
        if ls.size:
            s = np.where(use_line, ls[rng.integers(0, ls.size, size=batch)], s)
        return s

    def windows(self, starts, n):
        return self.ids[starts[:, None] + np.arange(n)[None, :]]


def load_split(cache_or_dir, split):
    d = cache_or_dir if os.path.exists(os.path.join(cache_or_dir, "tokenizer.json")) \
        else data_dir(cache_or_dir)
    tok = load_tokenizer(os.path.join(d, "tokenizer.json"))
    return TokenData(np.load(os.path.join(d, f"{split}.npy")), tok), tok


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m drdiff.data",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--cache", default=corpora.DEFAULT_CACHE)
    ap.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB)
    ap.add_argument("--offline", action="store_true", help="use the tarballs already fetched")
    a = ap.parse_args(argv)
    prepare(a.cache, a.vocab_size, a.offline)


if __name__ == "__main__":
    sys.exit(main())
