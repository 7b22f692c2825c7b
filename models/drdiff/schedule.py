"""Noise schedules (SPEC section 7) and the sampling time grids (section 8).

All of it is scalar work done once per step, so it runs in float64: the solver
coefficients then carry no schedule rounding error into the float32 state.
"""
import math

SCHEDULES = ("sqrt", "cosine", "linear_logsnr")
GRIDS = ("time_uniform", "logsnr_uniform")
U_MAX, U_MIN = 1.0, 1e-3

_CLAMP_LO, _CLAMP_HI = 1e-6, 1.0 - 1e-6
_COS_S = 0.008


def _cos_c(u):
    return math.cos(math.pi / 2 * (u + _COS_S) / (1 + _COS_S)) ** 2


class Schedule:
    def __init__(self, name):
        if name not in SCHEDULES:
            raise ValueError(f"unknown schedule {name!r} (want one of {SCHEDULES})")
        self.name = name

    def alpha_bar(self, u):
        if self.name == "sqrt":
            return min(max(1.0 - math.sqrt(u + 1e-4), _CLAMP_LO), _CLAMP_HI)
        if self.name == "cosine":
            return min(max(_cos_c(u) / _cos_c(0.0), _CLAMP_LO), _CLAMP_HI)
        return 1.0 / (1.0 + math.exp(-(10.0 - 20.0 * u)))

    def alpha(self, u):
        return math.sqrt(self.alpha_bar(u))

    def sigma(self, u):
        return math.sqrt(1.0 - self.alpha_bar(u))

    def lam(self, u):
        """λ = ln α − ln σ, i.e. half the log-SNR."""
        ab = self.alpha_bar(u)
        return 0.5 * (math.log(ab) - math.log1p(-ab))

    def u_of_lambda(self, lam):
        """Closed-form inverse of lam() on the unclamped part of the schedule."""
        sigma2 = 1.0 / (1.0 + math.exp(2.0 * lam))   # 1 − ᾱ, without cancellation
        if self.name == "sqrt":
            return sigma2 * sigma2 - 1e-4
        if self.name == "cosine":
            c = math.sqrt((1.0 - sigma2) * _cos_c(0.0))
            return math.acos(c) * 2 / math.pi * (1 + _COS_S) - _COS_S
        return (10.0 - 2.0 * lam) / 20.0


def time_grid(schedule, steps, grid="time_uniform", u_max=U_MAX, u_min=U_MIN):
    """u_0 = u_max > u_1 > ... > u_S = u_min. Both grids pin the end points exactly (for
    logsnr_uniform the clamped schedules are flat there, so inverting λ would not return
    them); interior points follow the formula, or the closed-form inverse of λ."""
    if steps < 1:
        raise ValueError("steps must be >= 1")
    if grid == "time_uniform":
        inner = [u_max + (u_min - u_max) * i / steps for i in range(1, steps)]
    elif grid == "logsnr_uniform":
        l0, l1 = schedule.lam(u_max), schedule.lam(u_min)
        inner = [schedule.u_of_lambda(l0 + (l1 - l0) * i / steps) for i in range(1, steps)]
    else:
        raise ValueError(f"unknown grid {grid!r} (want one of {GRIDS})")
    return [u_max] + inner + [u_min]
