"""The DrDiff denoiser x̂0 = f(x, u) of SPEC sections 4-6 as a torch.nn.Module.

Parameter names are the GGUF tensor names of section 3, so `state_dict()` converts to a
model file (and back) by name alone. Arithmetic is float32 except the sinusoid tables
(time embedding, RoPE), which are built in float64 and rounded once: their arguments
reach u·Ts = 2000 and n·θ^0 = N, where a float32 product is already off by ~1e-4 rad.
"""
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from . import gguf
from .hsa import HSAConfig, hsa_mask
from .schedule import SCHEDULES

# Every hyperparameter key of SPEC section 2 with its GGUF type; arrays are u32 arrays
# of the given length.
SPEC_KEYS = {
    "drdiff.vocab_size": gguf.U32,
    "drdiff.embed_dim": gguf.U32,
    "drdiff.hidden_dim": gguf.U32,
    "drdiff.block_count": gguf.U32,
    "drdiff.head_count": gguf.U32,
    "drdiff.time_embed_dim": gguf.U32,
    "drdiff.expert_count": gguf.U32,
    "drdiff.expert_hidden_dim": gguf.U32,
    "drdiff.expert_max_used": gguf.U32,
    "drdiff.expert_route_p": gguf.F32V,
    "drdiff.rope_theta": gguf.F32V,
    "drdiff.norm_eps": gguf.F32V,
    "drdiff.context_length": gguf.U32,
    "drdiff.diffusion.schedule": gguf.STRING,
    "drdiff.diffusion.time_scale": gguf.F32V,
    "drdiff.hsa.block_size": gguf.U32,
    "drdiff.hsa.dense_max": gguf.U32,
    "drdiff.hsa.mode_max": (gguf.ARRAY, gguf.U32, 2),
    "drdiff.hsa.window": (gguf.ARRAY, gguf.U32, 3),
    "drdiff.hsa.dilation": (gguf.ARRAY, gguf.U32, 3),
    "drdiff.hsa.dilated_hops": (gguf.ARRAY, gguf.U32, 3),
    "drdiff.hsa.global_blocks": (gguf.ARRAY, gguf.U32, 3),
    "drdiff.sampler.steps": gguf.U32,
    "drdiff.sas.gamma": gguf.F32V,
    "drdiff.sas.temperature": gguf.F32V,
    "drdiff.sas.start": gguf.F32V,
}


@dataclass
class ModelConfig:
    V: int
    de: int
    d: int
    L: int
    H: int
    dt: int
    E: int
    dff: int
    kmax: int
    route_p: float
    rope_theta: float
    norm_eps: float
    context_length: int
    schedule: str
    time_scale: float
    hsa: HSAConfig
    steps: int
    sas_gamma: float
    sas_temperature: float
    sas_start: float

    @classmethod
    def from_metadata(cls, meta, types):
        if meta.get("general.architecture") != "drdiff":
            raise ValueError(f"general.architecture is {meta.get('general.architecture')!r}, "
                             "not 'drdiff'")
        for key, want in SPEC_KEYS.items():
            if key not in meta:
                raise ValueError(f"missing key {key}")
            got = types[key]
            if isinstance(want, tuple):
                if got != want[:2] or len(meta[key]) != want[2]:
                    raise ValueError(f"{key} must be a u32 array of {want[2]}")
            elif got != want:
                raise ValueError(f"{key} has GGUF type {got}, want {want}")
        g = lambda k: meta["drdiff." + k]                                    # noqa: E731
        cfg = cls(
            V=g("vocab_size"), de=g("embed_dim"), d=g("hidden_dim"), L=g("block_count"),
            H=g("head_count"), dt=g("time_embed_dim"), E=g("expert_count"),
            dff=g("expert_hidden_dim"), kmax=g("expert_max_used"), route_p=g("expert_route_p"),
            rope_theta=g("rope_theta"), norm_eps=g("norm_eps"),
            context_length=g("context_length"), schedule=g("diffusion.schedule"),
            time_scale=g("diffusion.time_scale"),
            hsa=HSAConfig(block_size=g("hsa.block_size"), dense_max=g("hsa.dense_max"),
                          mode_max=tuple(g("hsa.mode_max")), window=tuple(g("hsa.window")),
                          dilation=tuple(g("hsa.dilation")),
                          dilated_hops=tuple(g("hsa.dilated_hops")),
                          global_blocks=tuple(g("hsa.global_blocks"))),
            steps=g("sampler.steps"), sas_gamma=g("sas.gamma"),
            sas_temperature=g("sas.temperature"), sas_start=g("sas.start"))
        cfg.validate()
        return cfg

    def validate(self):
        checks = [
            (min(self.V, self.de, self.d, self.L, self.H, self.dt, self.E, self.dff) >= 1,
             "sizes must be >= 1"),
            (self.d % self.H == 0, f"hidden_dim {self.d} not divisible by head_count {self.H}"),
            ((self.d // self.H) % 2 == 0, "head width d/H must be even"),
            (self.dt % 2 == 0, "time_embed_dim must be even"),
            (1 <= self.kmax <= self.E, f"expert_max_used {self.kmax} not in 1..{self.E}"),
            (0 < self.route_p <= 1, f"expert_route_p {self.route_p} not in (0, 1]"),
            (self.schedule in SCHEDULES, f"unknown schedule {self.schedule!r}"),
            (self.hsa.block_size >= 1, "hsa.block_size must be >= 1"),
            (min(self.hsa.dilation) >= 1, "hsa.dilation must be >= 1"),
            (self.steps >= 1, "sampler.steps must be >= 1"),
            (0 <= self.sas_gamma <= 1, f"sas.gamma {self.sas_gamma} not in [0, 1]"),
            (self.sas_temperature > 0, "sas.temperature must be > 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)

    def tensor_shapes(self):
        """name -> logical shape for every tensor of SPEC section 3, in file order."""
        V, de, d, dt, E, dff = self.V, self.de, self.d, self.dt, self.E, self.dff
        shapes = {"token_embd.weight": (V, de), "in_proj.weight": (d, de), "in_proj.bias": (d,),
                  "time_mlp.0.weight": (d, dt), "time_mlp.0.bias": (d,),
                  "time_mlp.2.weight": (d, d), "time_mlp.2.bias": (d,)}
        for l in range(self.L):
            p = f"blk.{l}."
            shapes.update({p + "attn_norm.weight": (d,), p + "attn_q.weight": (d, d),
                           p + "attn_k.weight": (d, d), p + "attn_v.weight": (d, d),
                           p + "attn_output.weight": (d, d), p + "ffn_norm.weight": (d,),
                           p + "ffn_gate_inp.weight": (E, d),
                           p + "ffn_gate_exps.weight": (E, dff, d),
                           p + "ffn_up_exps.weight": (E, dff, d),
                           p + "ffn_down_exps.weight": (E, d, dff)})
        shapes.update({"output_norm.weight": (d,), "out_proj.weight": (de, d),
                       "out_proj.bias": (de,)})
        return shapes


# ------------------------------------------------------------------ building blocks

def timestep_features(u, dt, time_scale):
    """[..., dt] float64 sinusoid of t = u·Ts, cos half first (section 4.1)."""
    half = dt // 2
    freqs = np.exp(-math.log(10000.0) * np.arange(half, dtype=np.float64) / half)
    t = np.asarray(u, dtype=np.float64)[..., None] * float(time_scale)
    s = np.concatenate([np.cos(t * freqs), np.sin(t * freqs)], axis=-1)
    return torch.from_numpy(s)


def rope_tables(n, dh, theta):
    """cos, sin: [n, dh/2] float64 for angle n·θ^(−2i/dh)."""
    inv = np.power(float(theta), -2.0 * np.arange(dh // 2, dtype=np.float64) / dh)
    ang = np.arange(n, dtype=np.float64)[:, None] * inv[None, :]
    return torch.from_numpy(np.cos(ang)), torch.from_numpy(np.sin(ang))


def apply_rope(x, cos, sin):
    """x: [..., N, dh]; rotate-half (NeoX) pairs (i, i + dh/2)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def des_select(probs, p, kmax):
    """Top-p expert choice of section 6 for router probabilities [T, E].

    Returns expert ids [T, kmax] and renormalised weights [T, kmax]; slots past a
    token's chosen count have weight 0. Ties go to the lower expert index (stable sort
    of −π); the prefix is the shortest whose float32 running sum reaches p, clamped to
    1..kmax; p >= 1 means exactly kmax (a running sum can round up to 1 early).
    """
    neg, order = torch.sort(-probs, dim=-1, stable=True)
    sorted_p = -neg
    if p >= 1:
        count = torch.full(probs.shape[:-1], kmax, dtype=torch.long)
    else:
        # a float32 running sum, added one expert at a time (torch.cumsum accumulates
        # in float64 on the CPU); it never decreases, so "not yet reached" is a prefix
        # and its length + 1 is the shortest prefix that reaches p
        running = torch.zeros_like(sorted_p[:, 0])
        not_reached = torch.zeros_like(sorted_p[:, 0], dtype=torch.long)
        for j in range(sorted_p.shape[-1]):
            running = running + sorted_p[:, j]
            not_reached += running < p
        count = (not_reached + 1).clamp(1, kmax)
    keep = torch.arange(kmax)[None, :] < count[:, None]
    w = sorted_p[:, :kmax] * keep
    return order[:, :kmax], w / w.sum(dim=-1, keepdim=True)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight


class Stacked(nn.Module):
    """One [E, rows, cols] parameter, so it is named `<module>.weight` like the file."""

    def __init__(self, *shape):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(*shape))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, E, dff = cfg.d, cfg.E, cfg.dff
        self.cfg = cfg
        self.attn_norm = RMSNorm(d, cfg.norm_eps)
        self.attn_q = nn.Linear(d, d, bias=False)
        self.attn_k = nn.Linear(d, d, bias=False)
        self.attn_v = nn.Linear(d, d, bias=False)
        self.attn_output = nn.Linear(d, d, bias=False)
        self.ffn_norm = RMSNorm(d, cfg.norm_eps)
        self.ffn_gate_inp = nn.Linear(d, E, bias=False)
        self.ffn_gate_exps = Stacked(E, dff, d)
        self.ffn_up_exps = Stacked(E, dff, d)
        self.ffn_down_exps = Stacked(E, d, dff)

    def attention(self, a, cos, sin, mask):
        """a: [B, N, d]; mask: [N, N] bool (True = attend)."""
        B, N, d = a.shape
        H = self.cfg.H
        dh = d // H
        heads = lambda t: t.view(B, N, H, dh).transpose(1, 2)               # noqa: E731
        q = apply_rope(heads(self.attn_q(a)), cos, sin)
        k = apply_rope(heads(self.attn_k(a)), cos, sin)
        v = heads(self.attn_v(a))
        scale = 1.0 / math.sqrt(dh)
        # queries in chunks so the [H, rows, N] scores stay bounded for long sequences
        rows = max(1, (1 << 24) // max(1, B * H * N))
        out = []
        for s in range(0, N, rows):
            scores = (q[:, :, s:s + rows] @ k.transpose(-1, -2)) * scale
            scores = scores.masked_fill(~mask[s:s + rows], float("-inf"))
            out.append(torch.softmax(scores, dim=-1) @ v)
        o = torch.cat(out, dim=2).transpose(1, 2).reshape(B, N, d)
        return self.attn_output(o)

    def des(self, b):
        """b: [T, d] -> [T, d], the dynamic mixture of SwiGLU experts."""
        probs = torch.softmax(self.ffn_gate_inp(b), dim=-1)
        idx, w = des_select(probs, self.cfg.route_p, self.cfg.kmax)
        out = torch.zeros_like(b)
        for e in range(self.cfg.E):
            rows, slots = torch.nonzero((idx == e) & (w > 0), as_tuple=True)
            if rows.numel() == 0:
                continue
            x = b[rows]
            y = F.silu(x @ self.ffn_gate_exps.weight[e].T) * (x @ self.ffn_up_exps.weight[e].T)
            y = y @ self.ffn_down_exps.weight[e].T
            out = out.index_add(0, rows, y * w[rows, slots, None])
        return out

    def forward(self, h, cos, sin, mask):
        h = h + self.attention(self.attn_norm(h), cos, sin, mask)
        b = self.ffn_norm(h)
        return h + self.des(b.reshape(-1, b.shape[-1])).view_as(b)


class DrDiff(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.token_embd = nn.Embedding(cfg.V, cfg.de)
        self.in_proj = nn.Linear(cfg.de, cfg.d)
        self.time_mlp = nn.Sequential(nn.Linear(cfg.dt, cfg.d), nn.SiLU(), nn.Linear(cfg.d, cfg.d))
        self.blk = nn.ModuleList(Block(cfg) for _ in range(cfg.L))
        self.output_norm = RMSNorm(cfg.d, cfg.norm_eps)
        self.out_proj = nn.Linear(cfg.d, cfg.de)

    def forward(self, x, u):
        """x: [N, de] or [B, N, de]; u: a float, or one per batch row. Returns x̂0."""
        unbatched = x.dim() == 2
        if unbatched:
            x = x[None]
        u = np.broadcast_to(np.asarray(u, dtype=np.float64), x.shape[:1])
        # the float64 tables are rounded once, to the model's dtype
        te = self.time_mlp(timestep_features(u, self.cfg.dt, self.cfg.time_scale).to(x.dtype))
        h = self.in_proj(x) + te[:, None, :]
        N = x.shape[1]
        cos, sin = (t.to(x.dtype) for t in
                    rope_tables(N, self.cfg.d // self.cfg.H, self.cfg.rope_theta))
        mask = torch.from_numpy(hsa_mask(N, self.cfg.hsa))
        for block in self.blk:
            h = block(h, cos, sin, mask)
        out = self.out_proj(self.output_norm(h))
        return out[0] if unbatched else out


def load_model(path):
    """GGUF file -> (DrDiff in eval mode, ModelConfig, GGUFFile)."""
    f = gguf.read_gguf(path)
    cfg = ModelConfig.from_metadata(f.metadata, f.types)
    shapes = cfg.tensor_shapes()
    for name, shape in shapes.items():
        if name not in f.tensors:
            raise ValueError(f"missing tensor {name}")
        if f.tensors[name].shape != shape:
            raise ValueError(f"{name} has shape {f.tensors[name].shape}, want {shape}")
    model = DrDiff(cfg)
    model.load_state_dict({n: torch.from_numpy(f.tensors[n]) for n in shapes})
    return model.eval(), cfg, f
