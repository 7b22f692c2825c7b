"""Held-out metrics of a model file computed by the C engine, checked against PyTorch.

    python3 -m drdiff.evaluate_engine -m MODEL.gguf --data models/.cache/data
        --drdiff build/drdiff --tool-forward build/tests/tool_forward -o eval_engine.json
        [--backend cpu|vulkan] [--prompts 24] [--new-tokens 48] [--steps 20] [--windows 64]

drdiff.evaluate measures a model with the PyTorch reference; this script measures the same
things with what users run, the C engine, and says how far the two agree:

* accuracy: one-step denoising on validation windows (128 tokens, no prompt) at u = 0.25,
  0.5, 0.75 through tool_forward (the C reference denoiser, which the Vulkan engine is tested
  to equal), tokens = argmax x̂0·Eᵀ; the same inputs through the PyTorch module, and the
  share of positions where the two predict the same token.
* generation: prompted continuation (the first 8 tokens of validation lines) at --steps
  steps with SAS off and on (the file's γ, τ, us), sample i with seed i, through
  `drdiff generate --backend B`; the text metrics of drdiff.evaluate on the decoded text;
  the PyTorch sampler on the same prompts and seeds, and the share of equal tokens.
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

import numpy as np
import torch

from .evaluate import Evaluator, text_metrics
from .sampler import visible_tokens


def c_forward(tool, model, x, u, tmp):
    """x [N, de] float32 -> the C reference denoiser's x̂0 [N, de]."""
    src, dst = os.path.join(tmp, "in.f32"), os.path.join(tmp, "out.f32")
    x.astype("<f4").tofile(src)
    subprocess.run([tool, model, src, str(x.shape[0]), repr(float(u)), dst], check=True,
                   stdout=subprocess.DEVNULL)
    return np.fromfile(dst, dtype="<f4").reshape(x.shape)


def accuracy(ev, a, tmp):
    rng = np.random.default_rng(0)
    n = 128
    ids = ev.val.windows(ev.val.starts(rng, a.windows, n, 0.0), n)
    E = ev.E_cpu.numpy().astype(np.float32)
    g = np.random.default_rng(1)
    out = {"length": n, "windows": a.windows}
    for u in (0.25, 0.5, 0.75):
        ab = ev.sched.alpha_bar(u)
        c_ok = t_ok = same = 0
        for w in ids:
            z0 = E[w]
            xu = (np.sqrt(ab) * z0 + np.sqrt(1 - ab) * g.standard_normal(z0.shape)).astype(np.float32)
            xc = c_forward(a.tool_forward, a.model, xu, u, tmp)
            with torch.no_grad():
                xt = ev.model(torch.from_numpy(xu), u).float().numpy()
            pc, pt = np.argmax(xc @ E.T, axis=1), np.argmax(xt @ E.T, axis=1)
            c_ok += int((pc == w).sum())
            t_ok += int((pt == w).sum())
            same += int((pc == pt).sum())
        out[f"acc@{u}"] = round(c_ok / ids.size, 4)
        out[f"acc_torch@{u}"] = round(t_ok / ids.size, 4)
        out[f"same_token@{u}"] = round(same / ids.size, 4)
    return out


def c_generate(a, prompt, steps, gamma, seed):
    cmd = [a.drdiff, "generate", "-m", a.model, "--prompt-ids", ",".join(map(str, prompt)),
           "-n", str(a.new_tokens), "--steps", str(steps), "--seed", str(seed),
           "--sas-gamma", repr(float(gamma)), "--backend", a.backend, "--json", "--no-progress"]
    r = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(r.stdout)["tokens"]


def generation(ev, a):
    prompts = ev.prompts(a.prompts, new_tokens=a.new_tokens)
    cfg = ev.cfg
    res = []
    for on in (False, True):
        g = cfg.sas_gamma if on else 0.0
        texts, same, total = [], 0, 0
        t0 = time.time()
        for i, (p, _) in enumerate(prompts):
            toks = c_generate(a, p, a.steps, g, i)
            texts.append(ev.tok.decode_text(visible_tokens(toks, ev.tok.eos_id, ev.tok.pad_id)))
            ref, _ = ev.generate(p, a.new_tokens, a.steps, g, cfg.sas_temperature, cfg.sas_start,
                                 seed=i)
            same += int(np.sum(np.array(ref) == np.array(toks)))
            total += len(toks)
        r = {"steps": a.steps, "sas": on, "sas_gamma": g, **text_metrics(texts, ev.wordlist, ev.bigrams),
             "same_token_as_torch": round(same / max(1, total), 4),
             "seconds": round(time.time() - t0, 1)}
        print("generation", json.dumps(r), flush=True)
        res.append(r)
    return res, prompts


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m drdiff.evaluate_engine")
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--drdiff", required=True)
    ap.add_argument("--tool-forward", required=True)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--backend", default="cpu", choices=("cpu", "vulkan"))
    ap.add_argument("--prompts", type=int, default=24)
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--windows", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    t0 = time.time()
    ev = Evaluator(a.model, a.data, torch.device("cpu"))
    res = {"model": os.path.basename(a.model), "engine": f"drdiff generate --backend {a.backend}"}
    with tempfile.TemporaryDirectory() as tmp:
        res["accuracy"] = accuracy(ev, a, tmp)
    print("accuracy", json.dumps(res["accuracy"]), flush=True)
    res["generation"], prompts = generation(ev, a)
    res["truth"] = text_metrics([ev.tok.decode_text(visible_tokens(c, ev.tok.eos_id, ev.tok.pad_id))
                                 for _, c in prompts], ev.wordlist, ev.bigrams)
    res["seconds"] = round(time.time() - t0, 1)
    with open(a.output, "w") as f:
        json.dump(res, f, indent=1)
    print(f"wrote {a.output} in {res['seconds']} s", flush=True)


if __name__ == "__main__":
    main()
