"""Configurations of trained models and their training runs.

`small` is the model the project ships (trained on real English text, see
models/README.md); `micro` is a reduced copy for CPU smoke runs of the whole pipeline;
`smoke` is the tiny one of tests/test_train_smoke.py. `tiny` and `base-220m` (random
weights for tests and benchmarks) live in drdiff.random_model.

The vocabulary size V of a model config is a placeholder: train.py sets it from the
tokenizer it trains with.
"""
import dataclasses
from dataclasses import dataclass

from . import gguf
from .hsa import HSAConfig
from .model import ModelConfig

_COMMON = dict(rope_theta=10000.0, norm_eps=1e-6, schedule="sqrt", time_scale=2000.0)


@dataclass
class TrainConfig:
    """Hyperparameters of train.py (see its docstring for what each one does)."""
    tokens_per_batch: int = 65536
    # (N, weight): every step draws one window length N; batch = tokens_per_batch // N
    lengths: tuple = ((32, 0.08), (64, 0.12), (128, 0.25), (256, 0.3), (512, 0.15),
                      (1024, 0.07), (2048, 0.03))
    lr: float = 2e-3
    min_lr_frac: float = 0.1
    warmup_steps: int = 300
    weight_decay: float = 0.1
    betas: tuple = (0.9, 0.98)
    grad_clip: float = 1.0
    ce_weight: float = 0.5          # rounding cross-entropy on x̂0·Eᵀ (shapes the embeddings)
    lb_weight: float = 0.01         # Switch load balancing, E·Σ f_e·P_e per layer
    u_high_frac: float = 0.5        # share of windows with u drawn from (0.5, 1]
    prompt_zero_frac: float = 0.1   # share of windows with no prompt
    prompt_max_frac: float = 0.5    # otherwise P ~ U{1 .. floor(frac·N)}
    line_start_frac: float = 0.5    # share of windows that start at a line start
    embed_norm: float = 0.0         # row norm of token_embd; 0 means sqrt(de)
    val_every: int = 250
    val_windows: int = 64
    val_length: int = 256
    log_every: int = 25
    ckpt_minutes: float = 3.0


SMALL = ModelConfig(
    V=4096, de=64, d=256, L=6, H=4, dt=128, E=4, dff=256, kmax=2, route_p=0.8,
    context_length=2048,
    hsa=HSAConfig(block_size=16, dense_max=256, mode_max=(512, 1024), window=(3, 3, 3),
                  dilation=(2, 4, 8), dilated_hops=(3, 3, 3), global_blocks=(1, 2, 4)),
    steps=20, sas_gamma=1.0, sas_temperature=1.0, sas_start=1.0, **_COMMON)

MICRO = dataclasses.replace(
    SMALL, de=32, d=64, L=2, H=2, dt=32, E=4, dff=64,
    hsa=HSAConfig(block_size=8, dense_max=64, mode_max=(128, 256), window=(2, 2, 2),
                  dilation=(2, 3, 4), dilated_hops=(2, 2, 2), global_blocks=(1, 2, 2)))

SMOKE = dataclasses.replace(
    SMALL, V=300, de=16, d=32, L=2, H=2, dt=16, E=4, dff=32, context_length=64,
    hsa=HSAConfig(block_size=8, dense_max=32, mode_max=(48, 64), window=(1, 1, 1),
                  dilation=(2, 2, 2), dilated_hops=(1, 1, 1), global_blocks=(1, 1, 1)),
    steps=8)

MODELS = {"small": SMALL, "micro": MICRO, "smoke": SMOKE}
TRAINING = {
    "small": TrainConfig(),
    "micro": TrainConfig(tokens_per_batch=2048, lengths=((32, 0.3), (64, 0.4), (128, 0.2),
                                                         (256, 0.1)),
                         warmup_steps=20, val_every=20, val_windows=16, val_length=64,
                         log_every=5, ckpt_minutes=0.5, lr=3e-3),
    "smoke": TrainConfig(tokens_per_batch=256, lengths=((16, 0.5), (32, 0.3), (48, 0.2)),
                         warmup_steps=2, val_every=4, val_windows=4, val_length=32,
                         log_every=1, lr=1e-2, weight_decay=0.0),
}


def param_counts(cfg):
    """(total parameters, active parameters per token with kmax experts)."""
    total = active = 0
    for name, shape in cfg.tensor_shapes().items():
        n = 1
        for s in shape:
            n *= s
        total += n
        if "_exps." in name:
            active += n * cfg.kmax // cfg.E
        elif name != "token_embd.weight":
            active += n
    return total, active


def gguf_bytes(cfg, ttype=gguf.F16, metadata_bytes=0):
    """Tensor bytes of a GGUF (norms and biases f32, 32-byte alignment) + metadata."""
    size = 0
    for name, shape in cfg.tensor_shapes().items():
        n = 1
        for s in shape:
            n *= s
        t = gguf.F32 if (name.endswith(".bias") or name.endswith("norm.weight")) else ttype
        if t == gguf.Q8_0 and shape[-1] % gguf.QK8_0:
            t = gguf.F16
        size += (gguf.tensor_nbytes(t, n) + 31) // 32 * 32
    return size + metadata_bytes


def describe(cfg):
    total, active = param_counts(cfg)
    return (f"V={cfg.V} de={cfg.de} d={cfg.d} L={cfg.L} H={cfg.H} dt={cfg.dt} E={cfg.E} "
            f"dff={cfg.dff} kmax={cfg.kmax} p={cfg.route_p}: {total / 1e6:.2f} M parameters, "
            f"{active / 1e6:.2f} M active per token (kmax experts, embeddings excluded), "
            f"f16 tensors {gguf_bytes(cfg) / 1e6:.2f} MB, q8_0 "
            f"{gguf_bytes(cfg, gguf.Q8_0) / 1e6:.2f} MB")


if __name__ == "__main__":
    for k, c in MODELS.items():
        print(k, describe(c))
