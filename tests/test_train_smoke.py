"""Smoke test of the training pipeline (models/drdiff: data, train, convert, evaluate) on a
tiny synthetic text, CPU only, no network, about 20 seconds.

Checks: BPE training and encoding; the training denoiser equals drdiff.model's forward
(dense and sparse HSA); a few optimizer steps lower the loss; a run resumed from a
checkpoint takes the same steps, bit for bit, as the run that went on; the checkpoint
converts to a GGUF that drdiff.gguf reads back with every SPEC key and the trained
tokenizer, and drdiff.evaluate runs on it.

Run: PYTHONPATH=models /usr/bin/python3 tests/test_train_smoke.py
Exit 0 pass, 1 fail, 77 when torch is not importable.
"""
import glob
import json
import os
import random
import shutil
import sys
import tempfile
import time
import traceback

try:
    import numpy as np
    import torch
except ImportError as e:
    print(f"skip: {e}")
    sys.exit(77)


from drdiff import configs, convert, data, evaluate, gguf, train
from drdiff.model import SPEC_KEYS, DrDiff, load_model
from drdiff.tokenizer import Tokenizer

TMP = tempfile.mkdtemp(prefix="drdiff_train_smoke_")
SUBJECTS = ["the cat", "a dog", "the old man", "my sister", "the teacher", "a small bird",
            "the river", "our neighbour"]
VERBS = ["sees", "likes", "follows", "finds", "watches", "calls", "helps", "paints"]
OBJECTS = ["the garden", "a red ball", "the house", "the green hill", "a quiet town",
           "the morning sun", "an open door", "the little boat"]
ENDINGS = [".", " today.", " again.", " in the rain.", " every day."]


def synthetic_docs(n_docs, seed):
    rng = random.Random(seed)
    docs = []
    for i in range(n_docs):
        lines = []
        for _ in range(rng.randint(4, 8)):
            s = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}{rng.choice(ENDINGS)}"
            lines.append(s[0].upper() + s[1:])
        docs.append({"source": "synthetic", "id": str(i), "text": "\n".join(lines)})
    return docs


def losses(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def run_train(out, *extra):
    args = ["--config", "smoke", "--data", os.path.join(TMP, "data"), "--out", out,
            "--minutes", "5", "--total-steps", "12", "--threads", "1", "--device", "cpu"]
    train.main(args + list(extra))


def main():
    t0 = time.time()
    torch.set_num_threads(1)
    failures = []

    def check(name, fn):
        try:
            fn()
            print(f"ok   {name} ({time.time() - t0:.1f} s)")
        except Exception:
            failures.append(name)
            print(f"FAIL {name}")
            traceback.print_exc()

    # 1. tokenizer + data
    def prepare():
        meta = data.prepare_from_documents(os.path.join(TMP, "data"), synthetic_docs(60, 1),
                                           synthetic_docs(6, 2), 300, verbose=False)
        assert meta["vocab_size"] == 300, meta
        tok = data.load_tokenizer(os.path.join(TMP, "data", "tokenizer.json"))
        ids = np.load(os.path.join(TMP, "data", "train.npy"))
        assert ids.dtype == np.uint16 and ids.max() < 300
        assert (ids == tok.eos_id).sum() == 60
        text = "The cat sees the garden."
        assert tok.decode_text(tok.encode(text)) == text
        n = len(tok.encode(text))
        assert n < 0.75 * len(text), f"BPE merged too little: {n} tokens"
    check("tokenizer and data", prepare)

    # 2. training denoiser == reference forward
    def denoiser_matches():
        cfg = configs.SMOKE
        m = DrDiff(cfg)
        train.init_weights(m, 3)
        with torch.no_grad():                 # non-trivial norms and biases
            for n, p in m.named_parameters():
                if n.endswith("norm.weight") or n.endswith(".bias"):
                    p.add_(0.1 * torch.randn(p.shape))
        den = train.Denoiser(m)
        g = torch.Generator().manual_seed(0)
        for n in (24, 40, 64):                # dense, mode 1, mode 2
            x = torch.randn((2, n, cfg.de), generator=g)
            with torch.no_grad():
                want = torch.stack([m(x[0], 0.3), m(x[1], 0.8)])
                got = den(x, [0.3, 0.8])
            err = float((want - got).abs().max())
            assert err < 1e-5 * max(1.0, float(want.abs().max())), (n, err)
    check("training denoiser equals drdiff.model forward", denoiser_matches)

    # 3. training lowers the loss; 4. resume gives the same steps
    out_a, out_b = os.path.join(TMP, "a"), os.path.join(TMP, "b")

    def loss_decreases():
        run_train(out_a, "--ckpt-every-steps", "6")
        recs = [r for r in losses(os.path.join(out_a, "losses.jsonl")) if "loss" in r]
        assert len(recs) == 12, len(recs)
        first = np.mean([r["loss"] for r in recs[:3]])
        last = np.mean([r["loss"] for r in recs[-3:]])
        assert last < 0.8 * first, (first, last)
        print(f"     loss {first:.3f} -> {last:.3f} over 12 steps")
        files = glob.glob(os.path.join(out_a, "ckpt-*.pt"))
        assert files and all(os.path.getsize(f) <= 16 * 2**20 for f in files)
        assert train.find_checkpoint(out_a).endswith("ckpt-0000012-0.pt")
    check("a few steps lower the loss", loss_decreases)

    def resume_same():
        run_train(out_b, "--max-steps", "6")
        assert train.find_checkpoint(out_b).endswith("ckpt-0000006-0.pt")
        run_train(out_b, "--resume")
        la = {r["step"]: r["loss"] for r in losses(os.path.join(out_a, "losses.jsonl")) if "loss" in r}
        lb = {r["step"]: r["loss"] for r in losses(os.path.join(out_b, "losses.jsonl")) if "loss" in r}
        assert sorted(lb) == list(range(1, 13)), sorted(lb)
        for s in range(7, 13):
            assert la[s] == lb[s], (s, la[s], lb[s])
        _, ta, _ = train.load_checkpoint(train.find_checkpoint(out_a))
        _, tb, _ = train.load_checkpoint(train.find_checkpoint(out_b))
        assert sorted(ta) == sorted(tb)
        for k in ta:
            assert torch.equal(ta[k], tb[k]), k
    check("resume takes the same steps as the run that went on", resume_same)

    # 5. convert + read back; evaluate runs
    def convert_reads_back():
        path = os.path.join(TMP, "smoke.gguf")
        assert convert.main(["--ckpt", out_a, "-o", path, "--no-cli"]) == 0
        f = gguf.read_gguf(path)
        for k, t in SPEC_KEYS.items():
            assert k in f.metadata, k
            assert f.types[k] == (t[:2] if isinstance(t, tuple) else t), k
        model, cfg, _ = load_model(path)
        assert cfg.V == 300 and cfg.E >= 4 and cfg.kmax >= 2
        tok = Tokenizer.from_gguf_metadata(f.metadata)
        want = data.load_tokenizer(os.path.join(TMP, "data", "tokenizer.json"))
        assert tok.tokens == want.tokens and tok.merges == want.merges
        assert tok.eos_id == want.eos_id
        norms = model.token_embd.weight.norm(dim=1)
        assert float((norms - cfg.de ** 0.5).abs().max()) < 1e-2, "embeddings not normalised"
        for name in cfg.tensor_shapes():
            want_t = gguf.F32 if name.endswith(".bias") or name.endswith("norm.weight") else gguf.F16
            assert f.tensor_types[name] == want_t, name
        ev = os.path.join(TMP, "eval.json")
        evaluate.main(["-m", path, "--data", os.path.join(TMP, "data"), "-o", ev,
                       "--device", "cpu", "--threads", "1", "--prompts", "2",
                       "--new-tokens", "8", "--steps-list", "4", "--long", "0"])
        with open(ev) as fe:
            r = json.load(fe)
        assert 0 <= r["accuracy"]["acc@0.5"] <= 1 and len(r["settings"]) == 2
    check("checkpoint converts to a GGUF that reads back; evaluate runs", convert_reads_back)

    shutil.rmtree(TMP, ignore_errors=True)
    print(f"{'FAILED ' + ', '.join(failures) if failures else 'all passed'} "
          f"in {time.time() - t0:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
