"""Generation (SPEC section 8): Philox noise, prompt clamp, DPM-Solver++ multistep in
data prediction with lower-order final steps, soft absorption (SAS), rounding.

The state and every model output are float32; the per-step scalars (α, σ, λ, h, φ) are
float64 and enter the float32 update as float32 coefficients.
"""
import math
from dataclasses import dataclass

import torch

from .philox import gaussian_noise
from .schedule import Schedule, time_grid


@dataclass
class SamplerParams:
    steps: int
    order: int = 2
    grid: str = "time_uniform"
    seed: int = 0
    sas_gamma: float = 0.0
    sas_temperature: float = 1.0
    sas_start: float = 0.0


def initial_noise(seed, n, de):
    return torch.from_numpy(gaussian_noise(seed, n * de).reshape(n, de))


def soft_absorb(D, E, gamma, tau):
    """(1 − γ)·D + γ·softmax(D·Eᵀ/τ)·E, rows of D [M, de] against embeddings E [V, de]."""
    weights = torch.softmax((D @ E.T) / tau, dim=-1)
    return (1.0 - gamma) * D + gamma * (weights @ E)


def round_to_tokens(x, E):
    """argmax_v x_n·E_v per row, ties to the lowest id (torch.argmax returns the first)."""
    return torch.argmax(x @ E.T, dim=-1)


def step_order(i, order, steps):
    o = min(order, i)
    return min(o, steps - i + 1) if steps < 10 else o


def sample(denoise, schedule_name, E, prompt, n_new, params):
    """Runs S = params.steps model evaluations and returns the n_new generated ids.

    denoise(x [N, de] f32, u float) -> x̂0 [N, de]; E: token embeddings [V, de] f32;
    prompt: list of ids kept clean (rows 0..P-1).
    """
    x = solve(denoise, schedule_name, E, prompt, n_new, params)
    return round_to_tokens(x[len(prompt):], E).tolist()


def solve(denoise, schedule_name, E, prompt, n_new, params):
    """The sampler's final state x [N, de] before rounding."""
    if params.order not in (1, 2, 3):
        raise ValueError("order must be 1, 2 or 3")
    sched = Schedule(schedule_name)
    P = len(prompt)
    N = P + n_new
    S = params.steps
    us = time_grid(sched, S, params.grid)
    lam = [sched.lam(u) for u in us]
    prompt_rows = E[torch.tensor(prompt, dtype=torch.long)] if P else None

    x = initial_noise(params.seed, N, E.shape[1])
    history, hs = [], []                      # D_0.., h_1..
    for i in range(1, S + 1):
        u_prev, u_cur = us[i - 1], us[i]
        if P:
            x[:P] = prompt_rows
        with torch.no_grad():
            D = denoise(x, u_prev).clone()
        if P:
            D[:P] = prompt_rows
        if params.sas_gamma > 0 and u_prev <= params.sas_start:
            D[P:] = soft_absorb(D[P:], E, params.sas_gamma, params.sas_temperature)
        history.append(D)
        h = lam[i] - lam[i - 1]
        hs.append(h)
        phi1 = math.expm1(-h)
        alpha_i = sched.alpha(u_cur)
        rho = sched.sigma(u_cur) / sched.sigma(u_prev)
        x = _f32(rho) * x - _f32(alpha_i * phi1) * D
        o = step_order(i, params.order, S)
        if o == 2:
            r0 = hs[-2] / h
            D1 = (D - history[-2]) / _f32(r0)
            x = x - _f32(0.5 * alpha_i * phi1) * D1
        elif o == 3:
            r0, r1 = hs[-2] / h, hs[-3] / h
            D1_0 = (D - history[-2]) / _f32(r0)
            D1_1 = (history[-2] - history[-3]) / _f32(r1)
            D1 = D1_0 + _f32(r0 / (r0 + r1)) * (D1_0 - D1_1)
            D2 = (D1_0 - D1_1) / _f32(r0 + r1)
            phi2 = phi1 / h + 1.0
            phi3 = phi2 / h - 0.5
            x = x + _f32(alpha_i * phi2) * D1 - _f32(alpha_i * phi3) * D2
        history = history[-3:]
        hs = hs[-3:]
    return x


def _f32(v):
    """A float64 scalar as a float32 tensor scalar, so the update stays in float32."""
    return torch.tensor(v, dtype=torch.float32)


def visible_tokens(ids, eos_id, pad_id):
    """The ids that make up the text: up to the first EOS, padding dropped."""
    out = []
    for t in ids:
        if t == eos_id:
            break
        if t != pad_id:
            out.append(t)
    return out
