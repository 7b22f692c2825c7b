#!/usr/bin/env python3
"""Prints the engine-vs-PyTorch table of scripts/bench_compare.sh from its JSON files.

    python3 scripts/bench_table.py OUTDIR
        [--ours drdiff.json] [--scalar drdiff-scalar.json] [--torch torch.json]

OUTDIR holds drdiff.json (`drdiff bench --json`), drdiff-scalar.json (the same with
DRDIFF_DISABLE_COOPMAT=1) and torch.json (python3 -m drdiff.bench_torch); any of them may
be missing, truncated or hold failed runs: those cells print "-" and the reasons are listed
under the table. One Markdown row per N: ms per step of each, the time ratios ours/eager and
ours/compiled (below 1: the engine is faster), TFLOP/s (FLOPs per step over the median
step) and memory (engine: device bytes; PyTorch: peak allocated); then, where the files
say which steps ran SAS absorption, the median of those steps on each side. Standard
library only, so any python3 runs it.
"""
import argparse
import json
import os
import sys


def load(path):
    """The JSON object in `path`, or None. Tolerates text around it (a log line before the
    object, a cut-off tail after it) by decoding from the first '{'."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        start = text.find("{")
        if start < 0:
            return None
        try:
            obj = json.JSONDecoder().raw_decode(text[start:])[0]
        except ValueError:
            return None
    return obj if isinstance(obj, dict) else None


def _num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v else None


def runs_by_n(doc, mode=None):
    """N -> run (the last one of that N, and of `mode` when given); also the problems."""
    out, problems = {}, []
    if not doc or not isinstance(doc.get("runs"), list):
        return out, problems
    for r in doc["runs"]:
        if not isinstance(r, dict) or _num(r.get("N")) is None:
            continue
        if mode is not None and r.get("mode") != mode:
            continue
        if r.get("error") or r.get("skipped"):
            problems.append((int(r["N"]), r.get("error") or "skipped"))
            continue
        out[int(r["N"])] = r
    return out, problems


def ms(r):
    return _num(r.get("step_ms_median")) if r else None


def sas_ms(r):
    """Median of the timed steps that ran SAS absorption: the engine's step_ms_sas (0: none
    timed), PyTorch's step_ms_all where step_sas is true; None when there are none."""
    if not r:
        return None
    if "step_ms_sas" in r:
        v = _num(r.get("step_ms_sas"))
        return v if v else None
    flags, times = r.get("step_sas"), r.get("step_ms_all")
    if not isinstance(flags, list) or not isinstance(times, list):
        return None
    t = sorted(x for x, f in zip(times, flags) if f is True and _num(x) is not None)
    if not t:
        return None
    k = len(t)
    return t[k // 2] if k % 2 else 0.5 * (t[k // 2 - 1] + t[k // 2])


def tflops(r):
    """FLOPs per step over the median step, the same definition for every file (the
    engine's own "tflops" also counts the final rounding over the whole generation's
    time); the file's "tflops" only when it gives no FLOP count."""
    if not r:
        return None
    f, m = _num(r.get("flops_per_step")), ms(r)
    return f / (m * 1e-3) / 1e12 if f and m else _num(r.get("tflops"))


def mem(r, key):
    return _num(r.get(key)) if r else None


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def fmt_mib(v):
    return "-" if v is None else f"{v / 2**20:.0f}"


def ratio(a, b):
    return a / b if a is not None and b else None


def table(ours, scalar, torch_doc):
    lines = []
    o, o_err = runs_by_n(ours)
    s, s_err = runs_by_n(scalar)
    e, e_err = runs_by_n(torch_doc, "eager")
    c, c_err = runs_by_n(torch_doc, "compile")
    for name, doc in (("ours", ours), ("ours scalar", scalar), ("torch", torch_doc)):
        if doc is None:
            lines.append(f"{name}: no results")
            continue
        bits = [str(doc[k]) for k in ("device", "driver", "torch", "dtype", "model")
                if doc.get(k) is not None]
        lines.append(f"{name}: " + ", ".join(bits))
    lines.append("")
    lines.append("| N | ours ms | scalar ms | eager ms | compiled ms | ours/eager | "
                 "ours/compiled | TFLOP/s ours | scalar | eager | compiled | "
                 "MiB ours | eager | compiled |")
    lines.append("|" + "---|" * 14)
    ns = sorted(set(o) | set(s) | set(e) | set(c) |
                {n for n, _ in o_err + s_err + e_err + c_err})
    notes = []
    for n in ns:
        ro, rs, re_, rc = o.get(n), s.get(n), e.get(n), c.get(n)
        row = [str(n), fmt(ms(ro), ".2f"), fmt(ms(rs), ".2f"), fmt(ms(re_), ".2f"),
               fmt(ms(rc), ".2f"), fmt(ratio(ms(ro), ms(re_)), ".2f"),
               fmt(ratio(ms(ro), ms(rc)), ".2f"), fmt(tflops(ro), ".1f"),
               fmt(tflops(rs), ".1f"), fmt(tflops(re_), ".1f"), fmt(tflops(rc), ".1f"),
               fmt_mib(mem(ro, "device_bytes")), fmt_mib(mem(re_, "peak_mem_bytes")),
               fmt_mib(mem(rc, "peak_mem_bytes"))]
        lines.append("| " + " | ".join(row) + " |")
        fo = _num(ro.get("flops_per_step")) if ro else None
        ft = next((_num(r.get("flops_per_step")) for r in (re_, rc) if r), None)
        if fo and ft and abs(fo - ft) > 0.01 * max(fo, ft):
            notes.append(f"N={n}: FLOPs per step differ: ours {fo:.4g}, torch {ft:.4g}")
    # the steps that run SAS absorption (longer: logits against the whole vocabulary), apart
    sas_rows = []
    for n in ns:
        ro, rs, re_, rc = o.get(n), s.get(n), e.get(n), c.get(n)
        v = [sas_ms(ro), sas_ms(rs), sas_ms(re_), sas_ms(rc)]
        if any(x is not None for x in v):
            sas_rows.append("| " + " | ".join([str(n)] + [fmt(x, ".2f") for x in v] +
                                              [fmt(ratio(v[0], v[2]), ".2f"),
                                               fmt(ratio(v[0], v[3]), ".2f")]) + " |")
    if sas_rows:
        lines.append("")
        lines.append("Steps with SAS absorption, median ms (the table above: all timed steps):")
        lines.append("")
        lines.append("| N | ours ms | scalar ms | eager ms | compiled ms | ours/eager | ours/compiled |")
        lines.append("|" + "---|" * 7)
        lines.extend(sas_rows)
    for label, errs in (("ours", o_err), ("ours scalar", s_err), ("eager", e_err),
                        ("compiled", c_err)):
        for n, msg in errs:
            notes.append(f"N={n} {label}: {str(msg).splitlines()[0][:300] if msg else ''}")
    if notes:
        lines.append("")
        lines.extend(notes)
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--ours")
    ap.add_argument("--scalar")
    ap.add_argument("--torch")
    a = ap.parse_args(argv)
    path = lambda given, name: given or os.path.join(a.outdir, name)      # noqa: E731
    print(table(load(path(a.ours, "drdiff.json")), load(path(a.scalar, "drdiff-scalar.json")),
                load(path(a.torch, "torch.json"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
