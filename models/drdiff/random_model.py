"""Writes a DrDiff GGUF with random weights: the test and benchmark models.

    python3 -m drdiff.random_model --config tiny|base-220m --seed S
                                   --dtype f32|f16|q8_0|bf16|mixed -o FILE

Weights are drawn per tensor from numpy's PCG64 seeded with (seed, tensor index), so a
file is reproducible and big ones stream to disk one tensor at a time. Norm weights are
1 + N(0, 0.1²) and biases N(0, 0.1²) rather than exactly 1 and 0, so an implementation
that forgets one of them fails the parity tests instead of passing by accident.
"""
import argparse
import dataclasses

import numpy as np

from . import gguf
from .hsa import HSAConfig
from .model import SPEC_KEYS, ModelConfig
from .tokenizer import random_vocab

_COMMON = dict(route_p=0.7, rope_theta=10000.0, norm_eps=1e-6, schedule="sqrt",
               time_scale=2000.0, sas_gamma=0.5, sas_temperature=0.1, sas_start=0.5)

CONFIGS = {
    "tiny": ModelConfig(
        V=300, de=16, d=64, L=2, H=4, dt=32, E=4, dff=96, kmax=2, context_length=512,
        hsa=HSAConfig(block_size=8, dense_max=32, mode_max=(64, 128), window=(1, 1, 2),
                      dilation=(2, 3, 4), dilated_hops=(1, 2, 2), global_blocks=(1, 2, 2)),
        steps=8, **_COMMON),
    "base-220m": ModelConfig(
        V=32768, de=128, d=1024, L=12, H=16, dt=256, E=8, dff=2304, kmax=2,
        context_length=16384,
        hsa=HSAConfig(block_size=64, dense_max=1024, mode_max=(4096, 8192),
                      window=(4, 4, 4), dilation=(2, 4, 8), dilated_hops=(4, 4, 4),
                      global_blocks=(2, 4, 8)),
        steps=20, **{**_COMMON, "route_p": 0.9}),
}

DTYPES = {"f32": gguf.F32, "f16": gguf.F16, "q8_0": gguf.Q8_0, "bf16": gguf.BF16,
          # every matrix its own type, cycling through these: files SPEC allows that a
          # converter keeping some tensors at higher precision would write
          "mixed": (gguf.F32, gguf.F16, gguf.Q8_0, gguf.BF16)}


def metadata_values(cfg):
    """SPEC section 2 key -> value for a config (types come from SPEC_KEYS)."""
    h = cfg.hsa
    return {
        "drdiff.vocab_size": cfg.V, "drdiff.embed_dim": cfg.de, "drdiff.hidden_dim": cfg.d,
        "drdiff.block_count": cfg.L, "drdiff.head_count": cfg.H,
        "drdiff.time_embed_dim": cfg.dt, "drdiff.expert_count": cfg.E,
        "drdiff.expert_hidden_dim": cfg.dff, "drdiff.expert_max_used": cfg.kmax,
        "drdiff.expert_route_p": cfg.route_p, "drdiff.rope_theta": cfg.rope_theta,
        "drdiff.norm_eps": cfg.norm_eps, "drdiff.context_length": cfg.context_length,
        "drdiff.diffusion.schedule": cfg.schedule,
        "drdiff.diffusion.time_scale": cfg.time_scale,
        "drdiff.hsa.block_size": h.block_size, "drdiff.hsa.dense_max": h.dense_max,
        "drdiff.hsa.mode_max": h.mode_max, "drdiff.hsa.window": h.window,
        "drdiff.hsa.dilation": h.dilation, "drdiff.hsa.dilated_hops": h.dilated_hops,
        "drdiff.hsa.global_blocks": h.global_blocks, "drdiff.sampler.steps": cfg.steps,
        "drdiff.sas.gamma": cfg.sas_gamma, "drdiff.sas.temperature": cfg.sas_temperature,
        "drdiff.sas.start": cfg.sas_start,
    }


def add_model_metadata(writer, cfg, vocab):
    """Architecture, hyperparameter and tokenizer keys; vocab as random_vocab returns it."""
    writer.add("general.architecture", gguf.STRING, "drdiff")
    for key, value in metadata_values(cfg).items():
        t = SPEC_KEYS[key]
        if isinstance(t, tuple):
            writer.add_array(key, t[1], value)
        else:
            writer.add(key, t, value)
    tokens, merges, bos, eos, pad = vocab
    writer.add("tokenizer.ggml.model", gguf.STRING, "gpt2")
    writer.add_array("tokenizer.ggml.tokens", gguf.STRING, tokens)
    writer.add_array("tokenizer.ggml.merges", gguf.STRING, merges)
    writer.add("tokenizer.ggml.bos_token_id", gguf.U32, bos)
    writer.add("tokenizer.ggml.eos_token_id", gguf.U32, eos)
    writer.add("tokenizer.ggml.padding_token_id", gguf.U32, pad)


def storage_type(name, shape, ttype, index=0):
    """Norms and biases stay F32; Q8_0 needs rows of 32, else the tensor falls back to F16.
    ttype may be a tuple ("mixed"): tensor number index takes its entry index % len."""
    if name.endswith(".bias") or name.endswith("norm.weight"):
        return gguf.F32
    if isinstance(ttype, tuple):
        ttype = ttype[index % len(ttype)]
    if ttype == gguf.Q8_0 and shape[-1] % gguf.QK8_0:
        return gguf.F16
    return ttype


def _init(name, shape, seed, index):
    def draw():
        rng = np.random.default_rng([seed, index])
        z = rng.standard_normal(shape, dtype=np.float32)
        if name.endswith("norm.weight"):
            return 1 + np.float32(0.1) * z
        if name.endswith(".bias"):
            return np.float32(0.1) * z
        if name == "token_embd.weight":
            return z
        return z / np.float32(np.sqrt(shape[-1]))   # fan_in is the last (input) dim
    return draw


def write_random_model(path, config="tiny", seed=0, dtype="f32", **overrides):
    """overrides: ModelConfig fields to change (the tests vary the schedule this way)."""
    cfg = dataclasses.replace(CONFIGS[config], **overrides)
    cfg.validate()
    w = gguf.GGUFWriter()
    add_model_metadata(w, cfg, random_vocab(cfg.V, seed))
    for index, (name, shape) in enumerate(cfg.tensor_shapes().items()):
        w.add_tensor(name, shape, storage_type(name, shape, DTYPES[dtype], index),
                     _init(name, shape, seed, index))
    w.write(path)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m drdiff.random_model",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="f32")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args(argv)
    write_random_model(a.output, a.config, a.seed, a.dtype)


if __name__ == "__main__":
    main()
