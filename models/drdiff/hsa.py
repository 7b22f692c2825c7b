"""Hierarchical Sparse Attention visibility (SPEC section 5), straight from the definition.

The reference builds the full boolean mask; the engines plan block lists instead, and
the tests compare those plans with this mask.
"""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HSAConfig:
    block_size: int          # B
    dense_max: int           # N1
    mode_max: tuple          # (N2, N3)
    window: tuple            # w_m for modes 1..3
    dilation: tuple          # δ_m
    dilated_hops: tuple      # n_m
    global_blocks: tuple     # g_m


def mode_for(n, cfg):
    """0 for dense attention, else the sparse mode 1, 2 or 3."""
    if n <= cfg.dense_max:
        return 0
    if n <= cfg.mode_max[0]:
        return 1
    if n <= cfg.mode_max[1]:
        return 2
    return 3


def global_block_set(nb, g):
    return sorted({i * nb // g for i in range(g)})


def block_visibility(n, cfg):
    """[nb, nb] bool: entry [a, b] says whether query block a sees key block b."""
    nb = -(-n // cfg.block_size)
    mode = mode_for(n, cfg)
    if mode == 0:
        return np.ones((nb, nb), dtype=bool)
    w, delta, hops, g = (p[mode - 1] for p in
                         (cfg.window, cfg.dilation, cfg.dilated_hops, cfg.global_blocks))
    a = np.arange(nb)[:, None]
    b = np.arange(nb)[None, :]
    dist = np.abs(a - b)
    local = dist <= w
    dilated = (dist <= delta * hops) & (dist % delta == 0)
    is_global = np.zeros(nb, dtype=bool)
    is_global[global_block_set(nb, g)] = True
    return local | dilated | is_global[None, :] | is_global[:, None]


def hsa_mask(n, cfg):
    """[n, n] bool: entry [i, j] says whether query i attends key j."""
    block = np.arange(n) // cfg.block_size
    return block_visibility(n, cfg)[block[:, None], block[None, :]]
