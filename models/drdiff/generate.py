"""Generates tokens with the PyTorch reference (SPEC section 8).

    python3 -m drdiff.generate -m FILE [--prompt-ids 1,2,3] [-n NEW_TOKENS] [--steps S]
        [--order 1|2|3] [--grid time_uniform|logsnr_uniform] [--seed U64]
        [--sas-gamma G] [--sas-temperature T] [--sas-start U] [--json]

Steps and the SAS parameters default to the model file's values. Prints the text, or with
--json {"tokens": [generated ids, prompt excluded], "text": "..."}.
"""
import argparse
import json
import sys

import torch

from .model import load_model
from .sampler import SamplerParams, sample, visible_tokens
from .schedule import GRIDS
from .tokenizer import Tokenizer

DEFAULT_NEW_TOKENS = 32


def _ids(s):
    return [int(t) for t in s.split(",") if t.strip()]


def _u64(s):
    v = int(s, 0)
    if not 0 <= v < 1 << 64:
        raise argparse.ArgumentTypeError(f"{s} is not a u64")
    return v


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="python3 -m drdiff.generate",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--prompt-ids", type=_ids, default=[])
    ap.add_argument("-n", "--new-tokens", type=int, default=DEFAULT_NEW_TOKENS)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--order", type=int, choices=(1, 2, 3), default=2)
    ap.add_argument("--grid", choices=GRIDS, default="time_uniform")
    ap.add_argument("--seed", type=_u64, default=0)
    ap.add_argument("--sas-gamma", type=float)
    ap.add_argument("--sas-temperature", type=float)
    ap.add_argument("--sas-start", type=float)
    ap.add_argument("--json", action="store_true")
    return ap.parse_args(argv)


def run(argv):
    """Parses the command line and generates; returns ({"tokens", "text"}, whether --json)."""
    a = parse_args(argv)
    model, cfg, f = load_model(a.model)
    if any(not 0 <= t < cfg.V for t in a.prompt_ids):
        raise SystemExit(f"prompt id outside the vocabulary (V = {cfg.V})")
    if a.new_tokens < 1:
        raise SystemExit("-n must be >= 1")
    pick = lambda v, default: default if v is None else v                  # noqa: E731
    params = SamplerParams(steps=pick(a.steps, cfg.steps), order=a.order, grid=a.grid,
                           seed=a.seed, sas_gamma=pick(a.sas_gamma, cfg.sas_gamma),
                           sas_temperature=pick(a.sas_temperature, cfg.sas_temperature),
                           sas_start=pick(a.sas_start, cfg.sas_start))
    if params.steps < 1:
        raise SystemExit("--steps must be >= 1")
    tok = Tokenizer.from_gguf_metadata(f.metadata)
    E = model.token_embd.weight.detach()
    tokens = sample(model, cfg.schedule, E, a.prompt_ids, a.new_tokens, params)
    text = tok.decode_text(visible_tokens(tokens, tok.eos_id, tok.pad_id))
    return {"tokens": tokens, "text": text}, a.json


def main(argv=None):
    torch.set_num_threads(1)
    result, as_json = run(sys.argv[1:] if argv is None else argv)
    print(json.dumps(result) if as_json else result["text"])


if __name__ == "__main__":
    main()
