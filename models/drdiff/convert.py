"""Converts a training checkpoint into a DrDiff GGUF model file.

    python3 -m drdiff.convert --ckpt DIR_OR_SHARD0 -o MODEL.gguf [--dtype f16|q8_0|f32|bf16]
        [--steps S] [--sas-gamma G] [--sas-temperature T] [--sas-start U]
        [--name NAME] [--cli build/drdiff]

Writes every key of SPEC section 2 (the sampler defaults from the checkpoint's config
unless given here), the tokenizer the model was trained with (`tokenizer.ggml.*`), and
every tensor of section 3: matrices in the chosen type (default f16; q8_0 falls back to
f16 for rows that are not a multiple of 32), norm weights and biases f32. token_embd is
the effective (row-normalised) embedding table that training used.

Then it verifies the file: drdiff.gguf reads it back, drdiff.model.load_model accepts it
(all SPEC keys, types, shapes), the tokenizer loads, the tensors match the checkpoint
to the precision of the type, and one forward pass of the reference model on the file
agrees with the training denoiser on the checkpoint. With --cli (or when
build-train/drdiff or build/drdiff exists and --no-cli is not given) it also runs
`drdiff generate -m FILE --backend cpu -p "The" -n 32` and prints the text.
"""
import argparse
import os
import subprocess
import sys

import numpy as np
import torch

from . import gguf
from .model import SPEC_KEYS, load_model
from .random_model import DTYPES, add_model_metadata, storage_type
from .tokenizer import Tokenizer
from .train import Denoiser, effective_embeddings, find_checkpoint, model_from_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def resolve_checkpoint(path):
    if os.path.isdir(path):
        p = find_checkpoint(path)
        if p is None:
            raise SystemExit(f"no complete checkpoint in {path}")
        return p
    return path


def convert(ckpt, out, dtype="f16", name="drdiff-small", overrides=None):
    """Writes the GGUF; returns (model with the file's weights, cfg, meta)."""
    model, meta = model_from_checkpoint(resolve_checkpoint(ckpt))
    cfg = model.cfg
    for k, v in (overrides or {}).items():
        if v is not None:
            setattr(cfg, k, v)
    cfg.validate()
    embed_norm = meta["train_config"].get("embed_norm", 0.0)
    with torch.no_grad():
        model.token_embd.weight.copy_(effective_embeddings(model, embed_norm))
    t = meta["tokenizer"]
    tok = Tokenizer(t["tokens"], t["merges"], t["bos_id"], t["eos_id"], t["pad_id"])
    if tok.vocab_size != cfg.V:
        raise SystemExit(f"tokenizer has {tok.vocab_size} tokens, model V = {cfg.V}")
    w = gguf.GGUFWriter()
    add_model_metadata(w, cfg, (tok.tokens, tok.merges, tok.bos_id, tok.eos_id, tok.pad_id))
    w.add("general.name", gguf.STRING, name)
    w.add("general.license", gguf.STRING, "MIT")
    w.add("general.source.description", gguf.STRING,
          "trained by models/drdiff/train.py on the Brown corpus and nlp-corpus "
          f"(step {meta['step']}, {meta['tokens']} training tokens)")
    sd = model.state_dict()
    for index, (tname, shape) in enumerate(cfg.tensor_shapes().items()):
        arr = sd[tname].detach().float().numpy()
        w.add_tensor(tname, shape, storage_type(tname, shape, DTYPES[dtype], index), arr)
    tmp = out + ".tmp"
    w.write(tmp)
    os.replace(tmp, out)
    return model, cfg, meta


def verify(path, model, dtype):
    """Raises if the file does not read back as the model it was written from."""
    f = gguf.read_gguf(path)
    missing = [k for k in SPEC_KEYS if k not in f.metadata]
    if missing:
        raise AssertionError(f"missing keys {missing}")
    ref, cfg, _ = load_model(path)
    Tokenizer.from_gguf_metadata(f.metadata)
    tol = {"f32": 0.0, "f16": 1e-3, "bf16": 8e-3, "q8_0": 2e-2}[dtype]
    sd = model.state_dict()
    for name, arr in f.tensors.items():
        want = sd[name].detach().float().numpy()
        err = float(np.max(np.abs(arr - want))) if arr.size else 0.0
        scale = float(np.max(np.abs(want))) or 1.0
        if err > tol * scale + 1e-7:
            raise AssertionError(f"{name}: max error {err} (scale {scale})")
    # the reference forward on the file vs the training denoiser on the same weights
    g = torch.Generator().manual_seed(0)
    n = min(48, cfg.context_length)
    x = torch.randn((n, cfg.de), generator=g)
    with torch.no_grad():
        a = ref(x, 0.5)
        ref_den = Denoiser(ref)
        b = ref_den(x[None], [0.5])[0]
    diff = float((a - b).abs().max())
    if diff > 1e-3 * float(a.abs().max()):
        raise AssertionError(f"reference forward and training denoiser differ by {diff}")
    return {"file_bytes": os.path.getsize(path), "tensors": len(f.tensors),
            "keys": len(f.metadata), "forward_max_diff": diff}


def find_cli():
    for b in ("build-train", "build"):
        p = os.path.join(ROOT, b, "drdiff")
        if os.access(p, os.X_OK):
            return p
    return None


def run_cli(cli, path, prompt="The", n=32):
    r = subprocess.run([cli, "generate", "-m", path, "--backend", "cpu", "-p", prompt,
                        "-n", str(n)], capture_output=True, timeout=600)
    dec = lambda b: b.decode("utf-8", errors="replace").strip()                # noqa: E731
    return r.returncode, dec(r.stdout), dec(r.stderr)[-2000:]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m drdiff.convert",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", required=True, help="checkpoint folder or its shard-0 file")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="f16")
    ap.add_argument("--name", default="drdiff-small")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--sas-gamma", type=float)
    ap.add_argument("--sas-temperature", type=float)
    ap.add_argument("--sas-start", type=float)
    ap.add_argument("--cli", help="drdiff CLI to try the file with")
    ap.add_argument("--no-cli", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(min(4, os.cpu_count() or 1))
    overrides = {"steps": a.steps, "sas_gamma": a.sas_gamma,
                 "sas_temperature": a.sas_temperature, "sas_start": a.sas_start}
    model, cfg, meta = convert(a.ckpt, a.output, a.dtype, a.name, overrides)
    info = verify(a.output, model, a.dtype)
    print(f"wrote {a.output}: {info['file_bytes']} bytes ({info['file_bytes'] / 1e6:.2f} MB), "
          f"{info['tensors']} tensors, {info['keys']} keys, step {meta['step']}; "
          f"reads back; forward check max diff {info['forward_max_diff']:.2e}")
    cli = None if a.no_cli else (a.cli or find_cli())
    if cli:
        rc, out, err = run_cli(cli, a.output)
        print(f"{cli} generate -p 'The' -n 32 --backend cpu: exit {rc}")
        print(out if rc == 0 else err)
        if rc != 0:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
