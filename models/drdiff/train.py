"""Trains a DrDiff denoiser on tokenized text (DiffuSeq-style partial noising).

    python3 -m drdiff.train --config small --data models/.cache/data --out OUTDIR
        [--minutes M] [--total-minutes T | --total-steps S] [--resume] [--device auto]

What one step does (SPEC sections 4, 6, 7; the math of drdiff.model):

* draw a window length N (TrainConfig.lengths; the batch is tokens_per_batch // N
  windows) and the windows from the training stream (drdiff.data.TokenData);
* per window: a prompt length P (none for prompt_zero_frac of them, else uniform in
  1..prompt_max_frac·N) and u ~ U(0, 1], except that a share u_high_frac of the windows
  draw u from (0.5, 1] (below 0.5 the one-step accuracy is already ~90-100 %, the hard
  part is high noise); Z0 = E[ids], Zu = α(u)·Z0 + σ(u)·ε, and rows
  n < P of Zu are set back to Z0 (the sampler's prompt clamp);
* x̂0 = f(Zu, u); on the generated rows (n ≥ P):
  loss = MSE(x̂0, Z0) (mean over de) + ce_weight · CE(x̂0·Eᵀ, ids)
         + lb_weight · mean over layers of E·Σ_e f_e·P_e
  (f_e: share of the token→expert assignments that DES makes to e, P_e: mean router
  probability of e, over all rows; Switch-style load balancing).
* Embeddings: the effective table is E = r·W/‖W‖ per row with r = embed_norm or
  sqrt(de) (every coordinate has RMS 1, the scale the schedules assume), so the MSE term
  cannot shrink the embeddings to make itself small; the file stores E.
* AdamW (no decay on embeddings, norms and biases), linear warmup then cosine to
  min_lr_frac; gradient clipping; bf16 autocast on CUDA, float32 on the CPU.

The denoiser used for training is `Denoiser` below: the same function as
drdiff.model.DrDiff.forward on the same parameters (the module's RMSNorm, Linear and
time-MLP submodules, its timestep_features, rope_tables, apply_rope and hsa_mask), but
device-aware (model.py builds its tables and mask on the CPU) and batched: the HSA mask
goes to scaled_dot_product_attention, and DES computes every expert densely with weight
0 for the experts top-p did not choose, which is the same sum as model.py's gather.
tests/test_train_smoke.py checks it against model.py's forward.

Length of training: --minutes bounds this run's wall clock. The cosine schedule needs a
total step count: --total-steps, or --total-minutes (default: --minutes), turned into
steps from the measured speed of the first steps; it is stored in the checkpoint, so a
resumed run continues the same schedule. Training stops at the total step count.

Checkpoints (atomic, every ckpt_minutes and at the end) are `ckpt-<step>-<k>.pt`, each
at most 15 MiB: shard 0 holds the metadata (configs, step, schedule, RNG states,
data-sampler state, tokenizer) and lists the others, written last. To keep the set
small, weights (matrices) are stored as float16 and Adam's moments as bfloat16; at every
save the live model and optimizer are rounded the same way, so a resumed run is
bit-for-bit the run that continued (on the same device). Norm weights, biases and 1-D
tensors stay float32. About 6 bytes per parameter: ~40 MB for `small` (3 shards).

Logs: `losses.jsonl` in OUTDIR, one JSON object per log/validation event.
"""
import argparse
import dataclasses
import glob
import json
import math
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from . import configs
from .data import TokenData, load_tokenizer
from .hsa import HSAConfig, hsa_mask
from .model import DrDiff, ModelConfig, apply_rope, rope_tables, timestep_features
from .schedule import Schedule

SHARD_BYTES = 15 * 1024 * 1024
_HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


# ------------------------------------------------------------------ the denoiser

class Denoiser:
    """x̂0 = f(x, u) of drdiff.model on any device, batched; optional DES statistics."""

    def __init__(self, model):
        self.model = model
        self._tables = {}

    def tables(self, n, device):
        key = (n, str(device))
        if key not in self._tables:
            cfg = self.model.cfg
            cos, sin = rope_tables(n, cfg.d // cfg.H, cfg.rope_theta)
            mask = hsa_mask(n, cfg.hsa)
            mask_t = None if mask.all() else torch.from_numpy(mask).to(device)
            self._tables[key] = (cos.float().to(device), sin.float().to(device), mask_t)
        return self._tables[key]

    def __call__(self, x, u, stats=None):
        """x: [B, N, de]; u: [B] floats (numpy or list). stats: a list that receives, per
        layer, (router probs [T, E] f32, chosen weights [T, E], count [T])."""
        m, cfg = self.model, self.model.cfg
        B, N, _ = x.shape
        u = np.broadcast_to(np.asarray(u, dtype=np.float64), (B,))
        feats = to_device(timestep_features(u, cfg.dt, cfg.time_scale).numpy(), x.device,
                          torch.float32)
        te = m.time_mlp(feats)
        h = m.in_proj(x).float() + te.float()[:, None, :]
        cos, sin, mask = self.tables(N, x.device)
        for blk in m.blk:
            h = h + self.attention(blk, blk.attn_norm(h), cos, sin, mask).float()
            b = blk.ffn_norm(h)
            h = h + self.des(blk, b.reshape(B * N, -1), stats).view(B, N, -1).float()
        return m.out_proj(m.output_norm(h)).float()

    def attention(self, blk, a, cos, sin, mask):
        cfg = self.model.cfg
        B, N, d = a.shape
        H = cfg.H
        dh = d // H
        heads = lambda t: t.view(B, N, H, dh).transpose(1, 2)               # noqa: E731
        v = heads(blk.attn_v(a))
        q = apply_rope(heads(blk.attn_q(a)), cos, sin).to(v.dtype)
        k = apply_rope(heads(blk.attn_k(a)), cos, sin).to(v.dtype)
        if _HAS_SDPA:
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(dh))
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            o = torch.softmax(scores.float(), dim=-1).to(v.dtype) @ v
        return blk.attn_output(o.transpose(1, 2).reshape(B, N, d))

    def des(self, blk, b, stats):
        """SPEC section 6 for rows b [T, d]: every expert computed, unchosen ones weigh 0."""
        cfg = self.model.cfg
        probs = torch.softmax(blk.ffn_gate_inp(b).float(), dim=-1)
        sp, order = torch.sort(probs, dim=-1, descending=True, stable=True)
        if cfg.route_p >= 1:
            count = torch.full(probs.shape[:1], cfg.kmax, device=b.device, dtype=torch.long)
        else:
            count = ((torch.cumsum(sp, dim=-1) < cfg.route_p).sum(dim=-1) + 1)
            count = count.clamp(1, cfg.kmax)
        keep = torch.arange(cfg.E, device=b.device)[None, :] < count[:, None]
        ws = sp * keep
        ws = ws / ws.sum(dim=-1, keepdim=True)
        w = torch.zeros_like(probs).scatter(1, order, ws)                   # [T, E]
        if stats is not None:
            stats.append((probs, w, count))
        x = b
        g = torch.einsum("td,efd->etf", x, blk.ffn_gate_exps.weight)
        up = torch.einsum("td,efd->etf", x, blk.ffn_up_exps.weight)
        hid = F.silu(g) * up * w.t()[:, :, None].to(g.dtype)
        return torch.einsum("etf,edf->td", hid, blk.ffn_down_exps.weight)


def effective_embeddings(model, norm=0.0):
    """E = r·W/‖W‖ per row, r = norm or sqrt(de)."""
    W = model.token_embd.weight
    r = norm if norm > 0 else math.sqrt(W.shape[1])
    return W * (r / W.norm(dim=1, keepdim=True).clamp_min(1e-12))


def init_weights(model, seed):
    """N(0, 1/fan_in) matrices (residual outputs scaled by 1/sqrt(2L)), zero biases, unit
    norms, N(0, 1) embeddings."""
    g = torch.Generator().manual_seed(seed)
    L = model.cfg.L
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            elif name.endswith(".bias"):
                p.zero_()
            elif name == "token_embd.weight":
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                std = 1.0 / math.sqrt(p.shape[-1])
                if name.endswith("attn_output.weight") or name.endswith("ffn_down_exps.weight"):
                    std /= math.sqrt(2 * L)
                p.copy_(torch.randn(p.shape, generator=g) * std)


def schedule_coeffs(sched, u):
    ab = np.array([sched.alpha_bar(float(x)) for x in u], dtype=np.float64)
    return np.sqrt(ab), np.sqrt(1.0 - ab)


# ------------------------------------------------------------------ loss

def to_device(arr, device, dtype=None):
    """numpy -> tensor on device; to CUDA through pinned memory without a host sync."""
    t = torch.from_numpy(np.ascontiguousarray(arr))
    if dtype is not None:
        t = t.to(dtype)
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def diffusion_loss(den, model, ids, P, u, eps, tc, sched):
    """ids [B, N] long, P [B] prompt lengths (numpy), u [B] (numpy), eps [B, N, de].
    Written without host-device synchronisation (no boolean indexing, no .item())."""
    cfg = model.cfg
    B, N = ids.shape
    dev = ids.device
    E = effective_embeddings(model, tc.embed_norm)
    z0 = E[ids]                                                              # [B, N, de]
    a, s = schedule_coeffs(sched, u)
    coef = to_device(np.stack([a, s, np.asarray(P, dtype=np.float64)], axis=1), dev,
                     torch.float32)                                          # [B, 3]
    a, s, Pt = coef[:, 0, None, None], coef[:, 1, None, None], coef[:, 2]
    prompt = torch.arange(N, device=dev, dtype=torch.float32)[None, :] < Pt[:, None]
    zu = torch.where(prompt[:, :, None], z0, a * z0 + s * eps)
    stats = []
    x0 = den(zu, u, stats)
    gen = (~prompt).float()
    ngen = gen.sum().clamp_min(1.0)
    # The MSE target is detached: with gradient through z0 the target moves toward the
    # (averaged) prediction, which pulls the embeddings of confusable tokens together.
    # Run 1 of the shipped model collapsed that way (val accuracy 0.71 -> 0.53 while the
    # MSE kept falling). The embeddings learn from the noisy input and the CE term.
    mse = (((x0 - z0.detach()) ** 2).mean(dim=-1) * gen).sum() / ngen
    logits = x0 @ E.t()                                                      # [B, N, V]
    ce_tok = F.cross_entropy(logits.reshape(B * N, -1).float(), ids.reshape(-1),
                             reduction="none")
    ce = (ce_tok * gen.reshape(-1)).sum() / ngen
    lbs, counts = [], []
    for probs, w, count in stats:
        f = (w > 0).float().sum(dim=0) / count.sum().float()
        lbs.append(cfg.E * (f * probs.mean(dim=0)).sum())
        counts.append(count.float().mean())
    lb = torch.stack(lbs).mean()
    loss = mse + tc.ce_weight * ce + tc.lb_weight * lb
    with torch.no_grad():
        acc = ((logits.argmax(dim=-1) == ids).float() * gen).sum() / ngen
        experts = torch.stack(counts).mean()
    return loss, {"mse": mse, "ce": ce, "lb": lb, "acc": acc, "experts": experts}


def sample_u(rng, n, high_frac):
    """u in (0, 1]: uniform, except that a share high_frac is drawn from (0.5, 1]."""
    u = 1.0 - rng.random(n)
    high = rng.random(n) < high_frac
    return np.where(high, 1.0 - 0.5 * rng.random(n), u)


class Validator:
    """A fixed validation set: windows, prompt lengths, u and noise drawn once."""
    U_GRID = (0.1, 0.25, 0.5, 0.75, 0.9)

    def __init__(self, val, tc, de, device):
        rng = np.random.default_rng(1234)
        n = min(tc.val_length, len(val) - 1)
        self.ids = torch.from_numpy(val.windows(val.starts(rng, tc.val_windows, n), n)).to(device)
        self.P = np.full(tc.val_windows, n // 4)
        g = torch.Generator().manual_seed(4321)
        self.eps = [torch.randn((tc.val_windows, n, de), generator=g).to(device)
                    for _ in self.U_GRID]

    @torch.no_grad()
    def __call__(self, den, model, tc, sched, autocast):
        out = {}
        for u, eps in zip(self.U_GRID, self.eps):
            uu = np.full(self.ids.shape[0], u)
            with autocast():
                _, parts = diffusion_loss(den, model, self.ids, self.P, uu, eps, tc, sched)
            for k in ("mse", "ce", "acc"):
                out[f"val_{k}@{u}"] = float(parts[k])
        for k in ("mse", "ce", "acc"):
            out[f"val_{k}"] = float(np.mean([out[f"val_{k}@{u}"] for u in self.U_GRID]))
        return out


# ------------------------------------------------------------------ checkpoints

def _round_live_state(model, opt):
    """Rounds weights to what the checkpoint stores (f16 matrices) and Adam's moments to
    bf16, in place, so continuing equals resuming."""
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.copy_(p.half().float())
        for st in opt.state.values():
            for k in ("exp_avg", "exp_avg_sq"):
                if k in st:
                    st[k].copy_(st[k].bfloat16().float())


def _ckpt_files(outdir):
    found = {}
    for path in glob.glob(os.path.join(outdir, "ckpt-*-*.pt")):
        m = re.fullmatch(r"ckpt-(\d+)-(\d+)\.pt", os.path.basename(path))
        if m:
            found.setdefault(int(m.group(1)), {})[int(m.group(2))] = path
    return found


def save_checkpoint(outdir, model, opt, meta):
    _round_live_state(model, opt)
    step = meta["step"]
    names = {id(p): n for n, p in model.named_parameters()}
    tensors = {}
    for n, p in model.named_parameters():
        tensors["w." + n] = p.detach().cpu().half() if p.dim() >= 2 else p.detach().cpu().clone()
    for p, st in opt.state.items():
        n = names[id(p)]
        for k, short in (("exp_avg", "m."), ("exp_avg_sq", "v.")):
            if k in st:
                tensors[short + n] = st[k].detach().cpu().bfloat16()
    # greedy packing into shards of at most SHARD_BYTES (shard 0 also holds the metadata)
    shards, sizes = [{}], [0]
    for k, t in tensors.items():
        nb = t.numel() * t.element_size() + 1024
        if sizes[-1] + nb > SHARD_BYTES - (256 * 1024 if len(shards) == 1 else 0) and shards[-1]:
            shards.append({})
            sizes.append(0)
        shards[-1][k] = t
        sizes[-1] += nb
    rng = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and meta.get("device", "cpu").startswith("cuda"):
        rng["torch_cuda"] = torch.cuda.get_rng_state()
    meta = dict(meta, shards=len(shards))
    os.makedirs(outdir, exist_ok=True)
    order = list(range(1, len(shards))) + [0]
    for k in order:
        obj = {"tensors": shards[k], "step": step}
        if k == 0:
            obj.update({"meta": json.dumps(meta), "rng": rng})
        path = os.path.join(outdir, f"ckpt-{step:07d}-{k}.pt")
        with open(path + ".tmp", "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(path + ".tmp", path)
    for s, files in _ckpt_files(outdir).items():
        if s != step:
            for p in files.values():
                os.remove(p)
    return [os.path.join(outdir, f"ckpt-{step:07d}-{k}.pt") for k in range(len(shards))]


def _load(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:                                   # torch without weights_only
        return torch.load(path, map_location="cpu")


def _ckpt_step(path0):
    return int(re.fullmatch(r"ckpt-(\d+)-0\.pt", os.path.basename(path0)).group(1))


def find_checkpoint(outdir):
    """Shard-0 path of the newest complete checkpoint in outdir, or None."""
    for step, files in sorted(_ckpt_files(outdir).items(), reverse=True):
        if 0 not in files:
            continue
        head = _load(files[0])
        n = json.loads(head["meta"])["shards"]
        if all(k in files for k in range(n)):
            return files[0]
    return None


def load_checkpoint(path0):
    """-> (meta dict, tensors dict, rng dict) from a checkpoint's shard 0 path."""
    head = _load(path0)
    meta = json.loads(head["meta"])
    tensors = dict(head["tensors"])
    base = path0[:-len("-0.pt")]
    for k in range(1, meta["shards"]):
        part = _load(f"{base}-{k}.pt")
        if part["step"] != head["step"]:
            raise ValueError(f"{base}-{k}.pt belongs to step {part['step']}")
        tensors.update(part["tensors"])
    return meta, tensors, head["rng"]


def _tuplify(v):
    return tuple(_tuplify(x) for x in v) if isinstance(v, list) else v


def config_to_json(cfg):
    d = dataclasses.asdict(cfg)
    return d


def config_from_json(d):
    d = dict(d)
    h = d.pop("hsa")
    hsa = HSAConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in h.items()})
    return ModelConfig(hsa=hsa, **d)


def model_from_checkpoint(path0):
    """-> (DrDiff with float32 weights, meta) for convert/evaluate."""
    meta, tensors, _ = load_checkpoint(path0)
    cfg = config_from_json(meta["model_config"])
    model = DrDiff(cfg)
    model.load_state_dict({k[2:]: v.float() for k, v in tensors.items() if k.startswith("w.")})
    return model, meta


# ------------------------------------------------------------------ training

def lr_at(step, total, tc):
    if step < tc.warmup_steps:
        return tc.lr * (step + 1) / tc.warmup_steps
    if total is None:
        return tc.lr
    prog = min(1.0, (step - tc.warmup_steps) / max(1, total - tc.warmup_steps))
    return tc.lr * (tc.min_lr_frac + (1 - tc.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * prog)))


def make_optimizer(model, tc):
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (decay if p.dim() >= 2 and n != "token_embd.weight" else no_decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=tc.lr, betas=tuple(tc.betas), eps=1e-8)


def restore_optimizer(opt, model, tensors, adam_step):
    sd = opt.state_dict()
    ids = {}
    i = 0
    for group in opt.param_groups:
        for p in group["params"]:
            ids[id(p)] = i
            i += 1
    state = {}
    for n, p in model.named_parameters():
        if "m." + n in tensors:
            state[ids[id(p)]] = {"step": torch.tensor(float(adam_step)),
                                 "exp_avg": tensors["m." + n].float().to(p.device),
                                 "exp_avg_sq": tensors["v." + n].float().to(p.device)}
    sd["state"] = state
    opt.load_state_dict(sd)


def pick_device(name):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class JsonlLog:
    def __init__(self, path, resume_step):
        self.path = path
        if os.path.exists(path):          # drop lines a crashed run wrote after the checkpoint
            with open(path) as f:
                keep = [l for l in f if l.strip() and json.loads(l).get("step", 0) <= resume_step]
            with open(path, "w") as f:
                f.writelines(keep)
        self.f = open(path, "a")

    def write(self, obj):
        self.f.write(json.dumps(obj) + "\n")
        self.f.flush()


def _fmt(rec):
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()
                    if "@" not in k)


def train(a):
    t_start = time.time()
    device = pick_device(a.device)
    if device.type == "cpu":
        torch.set_num_threads(a.threads)
    tok = load_tokenizer(os.path.join(a.data, "tokenizer.json"))
    train_data = TokenData(np.load(os.path.join(a.data, "train.npy")), tok)
    val_data = TokenData(np.load(os.path.join(a.data, "validation.npy")), tok)
    with open(os.path.join(a.data, "tokenizer.json")) as f:
        tok_json = json.load(f)

    os.makedirs(a.out, exist_ok=True)
    ckpt = find_checkpoint(a.out) if a.resume else None
    if ckpt is None and a.resume and a.resume_from:
        ckpt = find_checkpoint(a.resume_from)
    if ckpt:
        meta, tensors, rng = load_checkpoint(ckpt)
        cfg = config_from_json(meta["model_config"])
        tc = configs.TrainConfig(**{k: _tuplify(v) for k, v in meta["train_config"].items()})
        if tok_json["tokens"] != meta["tokenizer"]["tokens"]:
            raise SystemExit("the checkpoint was trained with another tokenizer")
    else:
        meta = None
        cfg = dataclasses.replace(configs.MODELS[a.config], V=tok.vocab_size)
        tc = configs.TRAINING[a.config]
        for kv in a.set or []:
            k, v = kv.split("=", 1)
            cur = getattr(tc, k)
            v = _tuplify(json.loads(v))
            tc = dataclasses.replace(tc, **{k: v if isinstance(cur, tuple) else type(cur)(v)})
    cfg.validate()

    model = DrDiff(cfg)
    init_weights(model, a.seed)
    model.to(device)
    opt = make_optimizer(model, tc)
    state = {"step": 0, "total_steps": a.total_steps, "train_seconds": 0.0,
             "tokens": 0, "data_rng": None}
    if ckpt:
        model.load_state_dict({k[2:]: v.float() for k, v in tensors.items() if k.startswith("w.")})
        restore_optimizer(opt, model, tensors, meta.get("adam_step", meta["step"]))
        for k in ("step", "total_steps", "train_seconds", "tokens"):
            state[k] = meta[k]
        if a.total_steps:
            state["total_steps"] = a.total_steps
        torch.set_rng_state(rng["torch_cpu"])
        if "torch_cuda" in rng and device.type == "cuda":
            torch.cuda.set_rng_state(rng["torch_cuda"])
        data_rng = np.random.default_rng()
        data_rng.bit_generator.state = meta["data_rng"]
        print(f"resumed from {ckpt} at step {state['step']}", flush=True)
    else:
        torch.manual_seed(a.seed)
        data_rng = np.random.default_rng(a.seed)

    total, active = configs.param_counts(cfg)
    print(f"model: {configs.describe(cfg)}", flush=True)
    print(f"device {device}, torch {torch.__version__}, tokens: train {len(train_data)} "
          f"val {len(val_data)}", flush=True)

    sched = Schedule(cfg.schedule)
    den = Denoiser(model)
    use_amp = device.type == "cuda" and not a.fp32

    def autocast():
        if use_amp:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return torch.autocast(device_type="cpu", enabled=False)

    validator = Validator(val_data, tc, cfg.de, device)
    train_ids = torch.from_numpy(train_data.ids).to(device)
    lengths = np.array([n for n, _ in tc.lengths])
    lweights = np.array([w for _, w in tc.lengths], dtype=np.float64)
    lweights /= lweights.sum()
    log = JsonlLog(os.path.join(a.out, "losses.jsonl"), state["step"])
    total_planned = (a.total_minutes if a.total_minutes else a.minutes) * 60.0

    def checkpoint():
        m = {"step": state["step"], "total_steps": state["total_steps"],
             "train_seconds": state["train_seconds"], "tokens": state["tokens"],
             "adam_step": next((int(st["step"]) for st in opt.state.values() if "step" in st), 0),
             "data_rng": data_rng.bit_generator.state, "device": str(device),
             "model_config": config_to_json(cfg), "train_config": dataclasses.asdict(tc),
             "tokenizer": tok_json, "torch": torch.__version__}
        files = save_checkpoint(a.out, model, opt, m)
        print(f"checkpoint step {state['step']}: " + ", ".join(
            f"{os.path.basename(p)} {os.path.getsize(p) / 2**20:.1f} MiB" for p in files),
            flush=True)

    run_start = time.time()
    last_ckpt = run_start
    budget = a.minutes * 60.0
    calib = None
    step_times = []
    acc_parts, acc_n = {}, 0
    last_log = (run_start, state["tokens"])
    model.train()
    while True:
        step = state["step"]
        if state["total_steps"] is not None and step >= state["total_steps"]:
            print(f"reached the planned {state['total_steps']} steps", flush=True)
            break
        if time.time() - run_start >= budget or (a.max_steps and step >= a.max_steps):
            break
        t0 = time.time()
        N = int(data_rng.choice(lengths, p=lweights))
        N = min(N, len(train_data) - 1)
        B = max(1, tc.tokens_per_batch // N)
        starts = train_data.starts(data_rng, B, N, tc.line_start_frac)
        idx = to_device(starts, device)[:, None] + torch.arange(N, device=device)[None]
        ids = train_ids[idx]
        P = np.where(data_rng.random(B) < tc.prompt_zero_frac, 0,
                     data_rng.integers(1, max(2, int(tc.prompt_max_frac * N) + 1), size=B))
        u = sample_u(data_rng, B, tc.u_high_frac)
        eps = torch.randn((B, N, cfg.de), device=device)
        lr = lr_at(step, state["total_steps"], tc)
        for g in opt.param_groups:
            g["lr"] = lr
        with autocast():
            loss, parts = diffusion_loss(den, model, ids, P, u, eps, tc, sched)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        opt.step()
        for k, v in parts.items():
            acc_parts[k] = acc_parts.get(k, 0.0) + v.detach()
        acc_parts["loss"] = acc_parts.get("loss", 0.0) + loss.detach()
        acc_parts["gnorm"] = acc_parts.get("gnorm", 0.0) + gnorm.detach()
        acc_n += 1
        state["step"] = step = step + 1
        state["tokens"] += B * N
        if device.type == "cuda" and (step % tc.log_every == 0 or calib is None):
            torch.cuda.synchronize()
        dt = time.time() - t0
        state["train_seconds"] += dt
        # fix the schedule's length from the measured speed of steps 10..60 of a fresh run
        if state["total_steps"] is None:
            if step > 10:
                step_times.append(dt)
            if len(step_times) >= 50:
                spent = state["train_seconds"]
                per = float(np.mean(step_times))
                state["total_steps"] = int(step + max(0.0, total_planned - spent - 30.0) / per)
                print(f"{per * 1000:.1f} ms/step: the schedule runs to step "
                      f"{state['total_steps']} ({total_planned / 60:.1f} min planned)", flush=True)
        if step % tc.log_every == 0 and acc_n:
            rec = {"step": step, "lr": lr, "time": round(state["train_seconds"], 1),
                   "tokens": state["tokens"]}
            rec.update({k: float(v) / acc_n for k, v in acc_parts.items()})
            now = time.time()
            rec["tok_per_s"] = round((state["tokens"] - last_log[1]) / max(1e-9, now - last_log[0]))
            last_log = (now, state["tokens"])
            acc_parts, acc_n = {}, 0
            log.write(rec)
            print(_fmt(rec), flush=True)
            if not (math.isfinite(rec["loss"]) and math.isfinite(rec["gnorm"])):
                raise SystemExit(f"non-finite loss or gradient by step {step}: rerun from "
                                 "the last checkpoint (perhaps with a lower lr)")
        if step % tc.val_every == 0:
            model.eval()
            rec = {"step": step, **validator(den, model, tc, sched, autocast)}
            model.train()
            log.write(rec)
            print("val " + _fmt(rec), flush=True)
        if a.ckpt_every_steps and step % a.ckpt_every_steps == 0:
            checkpoint()
            last_ckpt = time.time()
        elif not a.ckpt_every_steps and time.time() - last_ckpt > tc.ckpt_minutes * 60:
            checkpoint()
            last_ckpt = time.time()
    model.eval()
    rec = {"step": state["step"], "final": True, **validator(den, model, tc, sched, autocast)}
    log.write(rec)
    print("val " + _fmt(rec), flush=True)
    if not find_checkpoint(a.out) or _ckpt_step(find_checkpoint(a.out)) != state["step"]:
        checkpoint()
    print(f"done: step {state['step']}, {state['tokens'] / 1e6:.1f} M tokens, "
          f"{state['train_seconds'] / 60:.1f} min of training in all, this run "
          f"{(time.time() - t_start) / 60:.1f} min", flush=True)
    return state


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="python3 -m drdiff.train",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--config", choices=sorted(configs.MODELS), default="small")
    ap.add_argument("--data", required=True, help="folder written by drdiff.data")
    ap.add_argument("--out", required=True, help="folder for checkpoints and losses.jsonl")
    ap.add_argument("--minutes", type=float, default=10.0, help="wall clock of this run")
    ap.add_argument("--total-minutes", type=float, help="planned training time of all runs")
    ap.add_argument("--total-steps", type=int, help="length of the LR schedule in steps")
    ap.add_argument("--resume", action="store_true", help="continue from OUT's checkpoint")
    ap.add_argument("--resume-from", help="folder to resume from when OUT has no checkpoint")
    ap.add_argument("--max-steps", type=int, help="stop this run at this step (the LR "
                    "schedule still runs to the total)")
    ap.add_argument("--ckpt-every-steps", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fp32", action="store_true", help="no bf16 autocast on CUDA")
    ap.add_argument("--set", action="append", metavar="KEY=JSON",
                    help="override a TrainConfig field of a fresh run")
    return ap.parse_args(argv)


def main(argv=None):
    train(parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
