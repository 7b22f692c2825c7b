"""DrDiff generation steps in PyTorch on CUDA: the baseline the Vulkan engine is measured against.

    python3 -m drdiff.bench_torch (-m MODEL.gguf | --config base-220m|tiny)
        -n 1024,4096,16384,65536 [--steps S] [--timed-steps K] [--modes eager,compile]
        [--dtype fp16|bf16|fp32] [--seed S] [--json OUT.json] [--time-limit SECONDS]
        [--device auto|cuda|cpu] [--flex-block 128] [--compile-mode MODE]

The same model and the same work per step as `drdiff bench`, written the way a competent
PyTorch user would write it, not the way drdiff.model (the oracle) does:

* weights in fp16 (or bf16), QKV fused into one matmul, gate and up fused per expert;
  RMSNorm, router softmax and the soft-absorption softmax in fp32;
* attention: F.scaled_dot_product_attention when N <= dense_max (dense HSA mode), else
  FlexAttention with a BlockMask built from drdiff.hsa's block table: tiles of
  --flex-block tokens (128, what flex's kernels are tuned for) that the HSA pattern covers
  completely are "full" (no masking), tiles it covers partly are "partial" and take a
  mask_mod that looks the HSA block pair up in the table;
* DES: router softmax and the top-p / kmax selection of SPEC section 6, (token, slot)
  pairs sorted by expert, one gate/up matmul and one down matmul per expert over that
  expert's rows, combined with the routing weights by index_add;
* one step = one denoiser evaluation over N tokens (batch 1) + SAS where active + the
  DPM-Solver++(2M) update (SPEC section 8, no prompt).

Modes: "eager" runs the model's Python eagerly but flex_attention through torch.compile
(flex is only fast compiled; this is what its documentation prescribes); "compile" is
torch.compile of the whole step function. The per-expert matmuls have data-dependent
sizes, so they run outside the compiled graphs in both modes (torch.compiler.disable):
compiling them would recompile for every new set of expert sizes.

Timing: CUDA events around each step; warm-up steps first (torch.compile works there, and
its wall time is reported as compile_s), then --timed-steps steps spread over the S-step
schedule (every step when K >= S), median ms. Peak memory is torch.cuda.max_memory_allocated
over the run, weights included. FLOPs per step: flops_per_step(), the count of `drdiff
bench`, averaged over the S-step schedule (SAS runs on part of the steps) as it does.

--device cpu (for the tests): fp32, attention by an explicit masked softmax over exactly the
tiles and mask_mod that flex would be given, no compile. Each (N, mode) runs in its own
try/except: an OOM or compile failure is recorded as its error and the next one runs; once
--time-limit seconds have passed, the remaining pairs are recorded as skipped. The JSON
(rewritten after every run, so a killed process leaves the finished runs behind):
{device, torch, dtype, config, ..., runs: [{N, mode, step_ms_median, step_ms_all, compile_s,
peak_mem_bytes, flops_per_step, tflops, error?, skipped?, ...}]}.
"""
import argparse
import gc
import inspect
import json
import math
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from .hsa import block_visibility, mode_for
from .model import apply_rope, load_model, rope_tables, timestep_features
from .random_model import CONFIGS
from .sampler import initial_noise, step_order
from .schedule import Schedule, time_grid

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
SOLVER_ORDER = 2           # DPM-Solver++(2M), the engine's default
SAS_CHUNK_ELEMS = 1 << 27  # rows x V logits per SAS chunk (512 MiB in fp32)


# ------------------------------------------------------------------ FLOPs

def hsa_pairs(cfg, n):
    """Visited (query, key) pairs of one head: N² when dense, else from the block table."""
    if mode_for(n, cfg.hsa) == 0:
        return n * n
    vis = block_visibility(n, cfg.hsa).astype(np.int64)
    B = cfg.hsa.block_size
    sizes = np.minimum(B, n - np.arange(vis.shape[0], dtype=np.int64) * B)   # rows per block
    return int(sizes @ vis @ sizes)


def flops_per_step(cfg, n, sas_active):
    """FLOPs of one step, counted as `drdiff bench` does (samples/drdiff_bench_flops.c):
    2·rows·in·out for every projection: the time MLP (one row), in/out projections, Q, K,
    V, O, router, and kmax experts' gate, up and down per token (an upper bound: top-p may
    pick fewer); 4·d·pairs for attention (Q·Kᵀ and P·V over the visited pairs, all heads);
    2·2·N·V·de for soft absorption when it is active. Element-wise work is left out."""
    d, de, E, dff, k = cfg.d, cfg.de, cfg.E, cfg.dff, cfg.kmax
    proj = 2 * (cfg.dt * d + d * d) + 2 * n * (de * d + d * de)
    layer = 2 * n * (4 * d * d + d * E + k * 3 * d * dff) + 4 * d * hsa_pairs(cfg, n)
    sas = 2 * 2 * n * cfg.V * de if sas_active else 0
    return proj + cfg.L * layer + sas


# ------------------------------------------------------------------ attention plan

class AttentionPlan:
    """The HSA pattern of one N as flex_attention's block lists.

    Tiles are fb x fb tokens. A tile pair the HSA pattern covers completely is "full"
    (flex skips mask_mod there); one it covers partly is "partial" (flex evaluates
    mask_mod per element); the rest is never visited. mask_mod reads the HSA block table,
    padded with False so that positions past N (flex's last tile) index inside it.
    """

    def __init__(self, cfg, n, fb, device):
        hsa = cfg.hsa
        B = hsa.block_size
        self.n, self.fb, self.B = n, fb, B
        self.dense = mode_for(n, hsa) == 0
        vis = block_visibility(n, hsa)                              # [nb, nb] HSA blocks
        self.ntile = -(-n // fb)
        # work in units of g tokens: each unit lies inside one HSA block and one tile
        g = math.gcd(B, fb)
        units = -(-n // g)
        ublock = np.arange(units) * g // B
        per_tile = fb // g
        pad = self.ntile * per_tile - units
        unit_vis = vis[ublock[:, None], ublock[None, :]]
        # units past N are never attended (flex masks them); they must not stop a tile
        # from being full, nor make one partial
        shape = (self.ntile, per_tile, self.ntile, per_tile)
        any_ = np.pad(unit_vis, ((0, pad), (0, pad)), constant_values=False).reshape(shape)
        all_ = np.pad(unit_vis, ((0, pad), (0, pad)), constant_values=True).reshape(shape)
        full = all_.all(axis=(1, 3))
        partial = any_.any(axis=(1, 3)) & ~full
        self.full_tiles, self.partial_tiles = full, partial
        self.kv_num, self.kv_idx = _ordered(partial)
        self.full_num, self.full_idx = _ordered(full)
        nb_pad = -(-(self.ntile * fb) // B)
        table = np.zeros((nb_pad, nb_pad), dtype=bool)
        table[:vis.shape[0], :vis.shape[1]] = vis
        self.table = table_t = torch.from_numpy(table).to(device)
        self.hsa_pairs = hsa_pairs(cfg, n)
        self.tile_pairs = int((full | partial).sum()) * fb * fb     # what flex iterates over

        def mask_mod(b, h, q_idx, kv_idx):
            # flex's mask_mod signature; the table is a captured tensor, as flex allows
            return table_t[q_idx // B, kv_idx // B]
        self.mask_mod = mask_mod

    def block_mask(self):
        """The torch.nn.attention.flex_attention.BlockMask of this plan (torch >= 2.5)."""
        from torch.nn.attention.flex_attention import BlockMask
        dev = self.table.device
        t = lambda a: torch.from_numpy(a).to(dev)[None, None]       # noqa: E731  [1, 1, ...]
        kw = dict(full_kv_num_blocks=t(self.full_num), full_kv_indices=t(self.full_idx),
                  BLOCK_SIZE=self.fb, mask_mod=self.mask_mod)
        # seq_lengths (torch >= 2.6) states N exactly when it is not a multiple of fb
        if "seq_lengths" in inspect.signature(BlockMask.from_kv_blocks).parameters:
            kw["seq_lengths"] = (self.n, self.n)
        return BlockMask.from_kv_blocks(t(self.kv_num), t(self.kv_idx), **kw)

    def tile_keys(self, a):
        """Key positions of query tile a and which of them each query row may attend, as
        flex would compute them: full tiles unmasked, partial tiles through mask_mod,
        positions >= N dropped. Returns (keys [K] long, allowed [rows, K] bool)."""
        tiles = np.concatenate([self.full_idx[a, :self.full_num[a]],
                                self.kv_idx[a, :self.kv_num[a]]]).astype(np.int64)
        is_full = np.arange(len(tiles)) < self.full_num[a]
        keys = (tiles[:, None] * self.fb + np.arange(self.fb)[None, :])
        key_full = np.repeat(is_full, self.fb)
        keys = keys.reshape(-1)
        keep = keys < self.n
        keys, key_full = keys[keep], key_full[keep]
        dev = self.table.device
        rows = torch.arange(a * self.fb, min((a + 1) * self.fb, self.n), device=dev)
        kt = torch.from_numpy(keys).to(dev)
        zero = torch.zeros((), dtype=torch.long, device=dev)
        masked = self.mask_mod(zero, zero, rows[:, None], kt[None, :])
        return kt, masked | torch.from_numpy(key_full).to(dev)[None, :]


def _ordered(tiles):
    """[nq, nk] bool -> (counts [nq] i32, indices [nq, nk] i32, listed tiles first)."""
    counts = tiles.sum(axis=1).astype(np.int32)
    idx = np.argsort(~tiles, axis=1, kind="stable").astype(np.int32)
    return counts, idx


def block_table_attention(q, k, v, plan):
    """q, k, v: [1, H, N, dh] -> [1, H, N, dh]; explicit softmax per query tile over the
    keys `plan` lists (the CPU stand-in for flex_attention, same tiles, same mask_mod)."""
    out = torch.empty_like(q)
    scale = 1.0 / math.sqrt(q.shape[-1])
    for a in range(plan.ntile):
        keys, allowed = plan.tile_keys(a)
        rows = slice(a * plan.fb, min((a + 1) * plan.fb, plan.n))
        s = (q[:, :, rows] @ k[:, :, keys].transpose(-1, -2)).float() * scale
        s = s.masked_fill(~allowed, float("-inf"))
        out[:, :, rows] = torch.softmax(s, dim=-1).to(v.dtype) @ v[:, :, keys]
    return out


_flex_compiled = None


class Attention:
    """How one N's attention runs: 'sdpa' (dense), 'flex' or 'table' (CPU)."""

    def __init__(self, cfg, n, device, dtype, fb, compiled_flex):
        self.plan = AttentionPlan(cfg, n, fb, device)
        dh = cfg.d // cfg.H
        cos, sin = rope_tables(n, dh, cfg.rope_theta)
        self.cos, self.sin = cos.to(device, dtype), sin.to(device, dtype)
        self.kernel_options = None
        if device.type != "cuda":
            self.kind = "table"
        elif self.plan.dense:
            self.kind = "sdpa"
        else:
            global _flex_compiled
            from torch.nn.attention.flex_attention import flex_attention
            if compiled_flex:
                if _flex_compiled is None:
                    _flex_compiled = torch.compile(flex_attention, dynamic=False)
                self.flex = _flex_compiled
            else:                       # inside a compiled step, dynamo traces flex itself
                self.flex = flex_attention
            self.kind = "flex"
            self.block_mask = self.plan.block_mask()
            if fb < 128:
                # flex's default kernel tiles are 128 x 64 or 128 x 128; each must divide the
                # mask's tile, so smaller masks need smaller kernel tiles
                self.kernel_options = {"BLOCK_M": fb, "BLOCK_N": fb}

    def __call__(self, q, k, v):
        if self.kind == "sdpa":
            return F.scaled_dot_product_attention(q, k, v)
        if self.kind == "flex":
            return self.flex(q, k, v, block_mask=self.block_mask,
                             kernel_options=self.kernel_options)
        return block_table_attention(q, k, v, self.plan)

    def describe(self):
        d = {"kind": self.kind, "hsa_pairs": self.plan.hsa_pairs}
        if self.kind != "sdpa":
            d.update(flex_block=self.plan.fb, tile_pairs=self.plan.tile_pairs)
        return d


# ------------------------------------------------------------------ the model

def _no_compile(fn):
    disable = getattr(getattr(torch, "compiler", None), "disable", None)
    return disable(fn) if disable else fn


def rms_norm(x, w, eps):
    """In fp32 whatever x is (w is kept fp32), the result in x's dtype."""
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + eps) * w).to(x.dtype)


def route(b, router_w, p, kmax):
    """SPEC section 6 selection as drdiff.model.des_select, on b's device.

    Returns per (token, slot) pair, flattened as token·kmax + slot: the expert id (E for
    slots past the token's chosen count) and the renormalised weight (fp32)."""
    E = router_w.shape[0]
    probs = torch.softmax(F.linear(b, router_w).float(), dim=-1)
    neg, order = torch.sort(-probs, dim=-1, stable=True)     # ties to the lower index
    sorted_p = -neg
    if p >= 1:
        count = torch.full_like(order[:, 0], kmax)
    else:
        # a float32 running sum one expert at a time, as the reference: "not reached yet"
        # is a prefix, its length + 1 is the shortest prefix that reaches p
        running = torch.zeros_like(sorted_p[:, 0])
        not_reached = torch.zeros_like(order[:, 0])
        for j in range(E):
            running = running + sorted_p[:, j]
            not_reached = not_reached + (running < p).long()
        count = (not_reached + 1).clamp(1, kmax)
    keep = torch.arange(kmax, device=b.device)[None, :] < count[:, None]
    w = sorted_p[:, :kmax] * keep
    w = w / w.sum(dim=-1, keepdim=True)
    expert = torch.where(w > 0, order[:, :kmax], torch.full_like(order[:, :kmax], E))
    return expert.reshape(-1), w.reshape(-1)


def sort_by_expert(expert, E):
    """(pair order grouped by expert, unused slots last; pairs per expert [E])."""
    order = torch.sort(expert, stable=True)[1]
    counts = (expert[:, None] == torch.arange(E, device=expert.device)[None, :]).sum(dim=0)
    return order, counts


@_no_compile
def run_experts(b, order, counts, weight, gate_up, down, kmax):
    """One gate/up and one down matmul per expert over its rows, then the weighted combine.

    Expert sizes drive the matmul shapes, so they are read on the host (one sync per
    layer, as any PyTorch MoE without a grouped-GEMM kernel does) and this function stays
    out of torch.compile's graphs."""
    counts = counts.tolist()
    pairs = order[:sum(counts)]
    token = torch.div(pairs, kmax, rounding_mode="floor")
    x = b.index_select(0, token)                                  # [P, d] grouped by expert
    outs, start = [], 0
    for e, c in enumerate(counts):
        if c:
            g, u = F.linear(x[start:start + c], gate_up[e]).chunk(2, dim=-1)
            outs.append(F.linear(F.silu(g) * u, down[e]))
            start += c
    y = torch.cat(outs) * weight.index_select(0, pairs).to(b.dtype)[:, None]
    # index_add sums a token's (at most kmax) contributions; with kmax <= 2 the order of
    # a two-term sum from zero cannot change its value
    return torch.zeros_like(b).index_add_(0, token, y)


class Layer:
    def __init__(self, t, l, dev, dt):
        p = f"blk.{l}."
        g = lambda n, dtype=dt: t[p + n].to(dev, dtype).contiguous()     # noqa: E731
        self.attn_norm = g("attn_norm.weight", torch.float32)
        self.qkv = torch.cat([g("attn_q.weight"), g("attn_k.weight"), g("attn_v.weight")])
        self.wo = g("attn_output.weight")
        self.ffn_norm = g("ffn_norm.weight", torch.float32)
        self.router = g("ffn_gate_inp.weight")
        # [E, 2·dff, d]: gate rows then up rows, one matmul per expert for both
        self.gate_up = torch.cat([g("ffn_gate_exps.weight"), g("ffn_up_exps.weight")], dim=1)
        self.down = g("ffn_down_exps.weight")


class BenchModel:
    """The denoiser and one solver step, on one device in one dtype."""

    def __init__(self, cfg, tensors, device, dtype):
        """tensors: GGUF tensor name -> tensor (any device / float dtype)."""
        self.cfg, self.device, self.dtype = cfg, device, dtype
        g = lambda n, d=dtype: tensors[n].to(device, d).contiguous()     # noqa: E731
        self.embd = g("token_embd.weight")
        self.in_w, self.in_b = g("in_proj.weight"), g("in_proj.bias")
        self.t0_w, self.t0_b = g("time_mlp.0.weight"), g("time_mlp.0.bias")
        self.t2_w, self.t2_b = g("time_mlp.2.weight"), g("time_mlp.2.bias")
        self.layers = [Layer(tensors, l, device, dtype) for l in range(cfg.L)]
        self.out_norm = g("output_norm.weight", torch.float32)
        self.out_w, self.out_b = g("out_proj.weight"), g("out_proj.bias")

    def attention(self, ly, h, attn):
        n, d = h.shape
        H = self.cfg.H
        a = rms_norm(h, ly.attn_norm, self.cfg.norm_eps)
        q, k, v = F.linear(a, ly.qkv).view(n, 3, H, d // H).unbind(1)     # [N, H, dh] each
        q = apply_rope(q.transpose(0, 1), attn.cos, attn.sin)[None]       # [1, H, N, dh]
        k = apply_rope(k.transpose(0, 1), attn.cos, attn.sin)[None]
        v = v.transpose(0, 1)[None]
        o = attn(q, k, v)[0].transpose(0, 1).reshape(n, d)
        return F.linear(o, ly.wo)

    def des(self, ly, b):
        cfg = self.cfg
        expert, weight = route(b, ly.router, cfg.route_p, cfg.kmax)
        order, counts = sort_by_expert(expert, cfg.E)
        return run_experts(b, order, counts, weight, ly.gate_up, ly.down, cfg.kmax)

    def forward(self, x, tfeat, attn):
        """x: [N, de] fp32, tfeat: [dt] fp32 timestep features -> x̂0 [N, de] fp32."""
        cfg, dt = self.cfg, self.dtype
        te = F.linear(F.silu(F.linear(tfeat.to(dt), self.t0_w, self.t0_b)), self.t2_w, self.t2_b)
        h = F.linear(x.to(dt), self.in_w, self.in_b) + te
        for ly in self.layers:
            h = h + self.attention(ly, h, attn)
            h = h + self.des(ly, rms_norm(h, ly.ffn_norm, cfg.norm_eps))
        return F.linear(rms_norm(h, self.out_norm, cfg.norm_eps), self.out_w, self.out_b).float()

    def soft_absorb(self, D):
        """(1 − γ)·D + γ·softmax(D·Eᵀ/τ)·E in row chunks, so N×V logits never all exist."""
        cfg, E = self.cfg, self.embd
        rows = max(1, SAS_CHUNK_ELEMS // E.shape[0])
        out = []
        for s in range(0, D.shape[0], rows):
            logits = (D[s:s + rows].to(E.dtype) @ E.T).float() / cfg.sas_temperature
            out.append((torch.softmax(logits, dim=-1).to(E.dtype) @ E).float())
        return (1.0 - cfg.sas_gamma) * D + cfg.sas_gamma * torch.cat(out)

    def step(self, x, D_prev, tfeat, rho, c1, c2, sas, attn):
        """One DPM-Solver++(2M) step: x ← ρ·x − c1·D − c2·(D − D_prev), D = f(x, u) (+ SAS).
        The coefficients are 0-d fp32 tensors so a compiled step does not specialise on
        them; `sas` is a Python bool (two graphs)."""
        D = self.forward(x, tfeat, attn)
        if sas:
            D = self.soft_absorb(D)
        return rho * x - c1 * D - c2 * (D - D_prev), D


# ------------------------------------------------------------------ schedule

class SolverPlan:
    """Per step i = 1..S of an order-2 time_uniform generation without a prompt: the
    timestep features of u_{i-1}, the update's coefficients and whether SAS is on."""

    def __init__(self, cfg, steps, device):
        sched = Schedule(cfg.schedule)
        us = time_grid(sched, steps)
        lam = [sched.lam(u) for u in us]
        f32 = lambda v: torch.tensor(v, dtype=torch.float32, device=device)   # noqa: E731
        feats = timestep_features(np.asarray(us[:-1]), cfg.dt, cfg.time_scale).float()
        self.steps = []
        for i in range(1, steps + 1):
            h = lam[i] - lam[i - 1]
            c1 = sched.alpha(us[i]) * math.expm1(-h)
            rho = sched.sigma(us[i]) / sched.sigma(us[i - 1])
            if step_order(i, SOLVER_ORDER, steps) == 2:
                c2 = 0.5 * c1 / ((lam[i - 1] - lam[i - 2]) / h)
            else:
                c2 = 0.0
            sas = cfg.sas_gamma > 0 and us[i - 1] <= cfg.sas_start
            self.steps.append(dict(i=i, tfeat=feats[i - 1].to(device), rho=f32(rho), c1=f32(c1),
                                   c2=f32(c2), sas=bool(sas)))
        self.sas_share = sum(s["sas"] for s in self.steps) / steps


def run_step(step_fn, s, x, D_prev, attn):
    return step_fn(x, D_prev, s["tfeat"], s["rho"], s["c1"], s["c2"], s["sas"], attn)


def sample(model, plan, x, attn, step_fn=None):
    """Every step of `plan` from state x; the final state [N, de] fp32 (before rounding)."""
    step_fn = step_fn or model.step
    D = torch.zeros_like(x)
    with torch.no_grad():
        for s in plan.steps:
            x, D = run_step(step_fn, s, x, D, attn)
    return x


# ------------------------------------------------------------------ weights

def random_tensors(cfg, seed, device):
    """Random weights drawn like drdiff.random_model (norms 1 + N(0, 0.1²), biases
    N(0, 0.1²), embeddings N(0, 1), matrices N(0, 1/fan_in)), with torch's generator on
    the device: the same distributions (so routing behaves alike), not the same values."""
    gen = torch.Generator(device=device)
    out = {}
    for index, (name, shape) in enumerate(cfg.tensor_shapes().items()):
        gen.manual_seed(seed * 100003 + index)
        z = torch.randn(shape, generator=gen, device=device, dtype=torch.float32)
        if name.endswith("norm.weight"):
            z = 1 + 0.1 * z
        elif name.endswith(".bias"):
            z = 0.1 * z
        elif name != "token_embd.weight":
            z = z / math.sqrt(shape[-1])
        out[name] = z
    return out


# ------------------------------------------------------------------ benchmark

def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timer:
    """CUDA events on the GPU, perf_counter on the CPU; ms."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"
        self.pairs = []

    def start(self):
        if self.cuda:
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            return e
        return time.perf_counter()

    def stop(self, start):
        if self.cuda:
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            self.pairs.append((start, e))
        else:
            self.pairs.append((time.perf_counter() - start) * 1e3)

    def ms(self):
        if self.cuda:
            torch.cuda.synchronize()
            return [s.elapsed_time(e) for s, e in self.pairs]
        return list(self.pairs)


def timed_indices(steps, k):
    """k step numbers spread over 1..steps (all of them when k >= steps)."""
    if k >= steps:
        return list(range(1, steps + 1))
    return sorted({int(round(v)) for v in np.linspace(1, steps, k)})


def bench_one(model, cfg, n, mode, a, x0, deadline):
    """Warm-up + timed steps of one (N, mode); returns the run's JSON record."""
    dev = model.device
    rec = {"N": n, "mode": mode}
    plan = SolverPlan(cfg, a.steps, dev)
    rec["flops_per_step"] = (plan.sas_share * flops_per_step(cfg, n, True)
                             + (1 - plan.sas_share) * flops_per_step(cfg, n, False))
    rec["flops_per_step_forward"] = flops_per_step(cfg, n, False)
    rec["sas_share"] = plan.sas_share
    if mode == "compile":
        if not hasattr(torch, "compile"):
            raise RuntimeError(f"torch {torch.__version__} has no torch.compile")
        step_fn = torch.compile(model.step, dynamic=False, mode=a.compile_mode)
    else:
        step_fn = model.step
    attn = Attention(cfg, n, dev, model.dtype, a.flex_block,
                     compiled_flex=(mode == "eager"))
    rec["attention"] = attn.describe()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)

    # warm-up: one step of each graph variant (SAS off / on) to compile, then once more
    variants = [plan.steps[0]]
    sas_steps = [s for s in plan.steps if s["sas"]]
    if sas_steps and not plan.steps[0]["sas"]:
        variants.append(sas_steps[0])
    x, D = x0.clone(), torch.zeros_like(x0)
    with torch.no_grad():
        t0 = time.perf_counter()
        for s in variants:
            x, D = run_step(step_fn, s, x, D, attn)
        _sync(dev)
        first_pass = time.perf_counter() - t0
        t0 = time.perf_counter()
        for s in variants:
            x, D = run_step(step_fn, s, x, D, attn)
        _sync(dev)
        second_pass = time.perf_counter() - t0
        # compile (and autotuning, and first-call setup) = what the first pass took more
        rec["compile_s"] = round(max(0.0, first_pass - second_pass), 3)

        # timed: the real sampler from fresh noise over the chosen steps
        timer = Timer(dev)
        idx = set(timed_indices(a.steps, a.timed_steps))
        x, D = x0.clone(), torch.zeros_like(x0)
        done, sas_flags = 0, []
        for s in plan.steps:
            if s["i"] not in idx:
                continue
            if done and time.perf_counter() > deadline:
                rec["truncated"] = True
                break
            ev = timer.start()
            x, D = run_step(step_fn, s, x, D, attn)
            timer.stop(ev)
            sas_flags.append(s["sas"])
            done += 1
        ms = timer.ms()
    rec["step_ms_all"] = [round(v, 4) for v in ms]
    rec["step_sas"] = sas_flags
    rec["step_ms_median"] = round(statistics.median(ms), 4)
    rec["gen_s_est"] = round(rec["step_ms_median"] * a.steps / 1e3, 4)
    rec["tflops"] = round(rec["flops_per_step"] / (rec["step_ms_median"] * 1e-3) / 1e12, 4)
    rec["peak_mem_bytes"] = (torch.cuda.max_memory_allocated(dev) if dev.type == "cuda"
                             else None)
    if not torch.isfinite(x).all():
        rec["note"] = "non-finite state (timing unaffected)"
    return rec


def _cleanup(device):
    gc.collect()
    if hasattr(torch, "_dynamo"):
        torch._dynamo.reset()          # every (N, mode) compiles afresh: compile_s is its own
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _config_json(cfg):
    h = cfg.hsa
    return {"V": cfg.V, "de": cfg.de, "d": cfg.d, "L": cfg.L, "H": cfg.H, "dt": cfg.dt,
            "E": cfg.E, "dff": cfg.dff, "kmax": cfg.kmax, "route_p": cfg.route_p,
            "hsa": {"block_size": h.block_size, "dense_max": h.dense_max,
                    "mode_max": list(h.mode_max), "window": list(h.window),
                    "dilation": list(h.dilation), "dilated_hops": list(h.dilated_hops),
                    "global_blocks": list(h.global_blocks)},
            "sas": [cfg.sas_gamma, cfg.sas_temperature, cfg.sas_start]}


def _ints(s):
    return [int(v) for v in s.split(",") if v.strip()]


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="python3 -m drdiff.bench_torch",
                                 description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("-m", "--model", help="GGUF model file")
    src.add_argument("--config", choices=sorted(CONFIGS), help="random weights of a config")
    ap.add_argument("-n", type=_ints, default=[1024, 4096, 16384, 65536])
    ap.add_argument("--steps", type=int, help="schedule length S (default: the model's)")
    ap.add_argument("--timed-steps", type=int, default=5)
    ap.add_argument("--modes", default=None, help="eager,compile (CPU: eager)")
    ap.add_argument("--dtype", choices=sorted(DTYPES), help="default fp16 (CPU: fp32)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the results here (else to stdout)")
    ap.add_argument("--time-limit", type=float, default=float("inf"),
                    help="seconds; (N, mode) pairs not started by then are skipped")
    ap.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    ap.add_argument("--flex-block", type=int, default=128,
                    help="flex BlockMask tile (128: flex's kernel tiles divide it)")
    ap.add_argument("--compile-mode", default=None,
                    help="torch.compile mode (default, max-autotune-no-cudagraphs, ...)")
    a = ap.parse_args(argv)
    if a.device == "auto":
        a.device = "cuda" if torch.cuda.is_available() else "cpu"
    if a.modes is None:
        a.modes = "eager,compile" if a.device == "cuda" else "eager"
    a.modes = [m for m in a.modes.split(",") if m]
    for m in a.modes:
        if m not in ("eager", "compile"):
            ap.error(f"unknown mode {m!r}")
    if a.dtype is None:
        a.dtype = "fp16" if a.device == "cuda" else "fp32"
    if a.timed_steps < 1 or (a.steps is not None and a.steps < 1):
        ap.error("--steps and --timed-steps must be >= 1")
    if a.flex_block < 16 or a.flex_block & (a.flex_block - 1):
        ap.error("--flex-block must be a power of two >= 16")
    return a


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    t_start = time.perf_counter()
    deadline = t_start + a.time_limit
    dev = torch.device(a.device)
    dtype = DTYPES[a.dtype]
    if a.model:
        ref, cfg, _ = load_model(a.model)
        tensors, source = {k: v.detach() for k, v in ref.state_dict().items()}, a.model
    else:
        cfg = CONFIGS[a.config]
        tensors, source = random_tensors(cfg, a.seed, dev), f"random {a.config}"
    if a.steps is None:
        a.steps = cfg.steps
    model = BenchModel(cfg, tensors, dev, dtype)
    del tensors
    if hasattr(torch, "_dynamo"):
        # one graph per (N, SAS on/off) and per resumed piece after a graph break
        for knob in ("cache_size_limit", "recompile_limit"):
            if hasattr(torch._dynamo.config, knob):
                setattr(torch._dynamo.config, knob, 64)
    out = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
           "torch": torch.__version__, "cuda": getattr(torch.version, "cuda", None),
           "dtype": a.dtype, "config": _config_json(cfg), "model": source,
           "steps": a.steps, "timed_steps": a.timed_steps, "solver_order": SOLVER_ORDER,
           "flex_block": a.flex_block, "compile_mode": a.compile_mode, "runs": []}
    if dev.type == "cuda":
        out["weights_bytes"] = torch.cuda.memory_allocated(dev)

    def flush():
        if a.json:
            with open(a.json, "w") as f:
                json.dump(out, f, indent=1)

    for n in a.n:
        x0 = None
        for mode in a.modes:
            if time.perf_counter() > deadline:
                out["runs"].append({"N": n, "mode": mode, "skipped": True,
                                    "error": f"skipped: --time-limit {a.time_limit:g} s spent"})
                print(f"N={n} {mode}: skipped (time limit)", file=sys.stderr)
                flush()
                continue
            t0 = time.perf_counter()
            try:
                if x0 is None:
                    x0 = initial_noise(a.seed, n, cfg.de).to(dev)
                rec = bench_one(model, cfg, n, mode, a, x0, deadline)
                print(f"N={n} {mode}: {rec['step_ms_median']:.3f} ms/step, "
                      f"{rec['tflops']:.2f} TFLOP/s, compile {rec['compile_s']:.1f} s, "
                      f"peak {rec['peak_mem_bytes']} B", file=sys.stderr)
            except Exception as e:                   # OOM, compile failure, ...: record, go on
                msg = f"{type(e).__name__}: {e}"
                rec = {"N": n, "mode": mode, "error": msg[:4000]}
                print(f"N={n} {mode}: error {msg[:500]}", file=sys.stderr)
            rec["wall_s"] = round(time.perf_counter() - t0, 3)
            out["runs"].append(rec)
            _cleanup(dev)
            flush()
    out["total_s"] = round(time.perf_counter() - t_start, 3)
    flush()
    if not a.json:
        json.dump(out, sys.stdout, indent=1)
        print()


if __name__ == "__main__":
    main()
