"""Philox4x32-10 counter-based generator and the Gaussian noise of SPEC section 9.

Vectorised over counters with numpy: 32x32->64-bit products are done in uint64, so the
result is bit-exact with Random123 on every platform.
"""
import numpy as np

M0, M1 = 0xD2511F53, 0xCD9E8D57
W0, W1 = 0x9E3779B9, 0xBB67AE85
ROUNDS = 10
_MASK32 = np.uint64(0xFFFFFFFF)


def philox4x32_10(counter, key):
    """counter: four uint32 arrays (or scalars) c0..c3; key: (k0, k1).
    Returns four uint32 arrays, the output words r0..r3."""
    c = [np.asarray(w, dtype=np.uint64) for w in counter]
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    for r in range(ROUNDS):
        if r:
            k0 = (k0 + np.uint64(W0)) & _MASK32
            k1 = (k1 + np.uint64(W1)) & _MASK32
        p0 = np.uint64(M0) * c[0]
        p1 = np.uint64(M1) * c[2]
        hi0, lo0 = p0 >> np.uint64(32), p0 & _MASK32
        hi1, lo1 = p1 >> np.uint64(32), p1 & _MASK32
        c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0]
    return [w.astype(np.uint32) for w in c]


def gaussian_noise(seed, count):
    """`count` standard normal float32 values for flat indices 0..count-1.

    Box-Muller is evaluated in float64 and rounded once to float32 (the rounding of
    ln/sqrt/cos in float32 differs between libms; float64 then one rounding does not
    in practice), so every implementation can match to the last bit.
    """
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    n_pairs = (count + 1) // 2
    if n_pairs > 1 << 32:
        raise ValueError("noise longer than 2^33 values does not fit the counter word")
    j = np.arange(n_pairs, dtype=np.uint64)
    zero = np.zeros_like(j)
    r0, r1, _, _ = philox4x32_10((j, zero, zero, zero), (seed & 0xFFFFFFFF, seed >> 32))
    u1 = ((r0 >> 8).astype(np.float64) + 1.0) * 2.0 ** -24
    u2 = (r1 >> 8).astype(np.float64) * 2.0 ** -24
    radius = np.sqrt(-2.0 * np.log(u1))
    angle = 2.0 * np.pi * u2
    out = np.empty(2 * n_pairs, dtype=np.float64)
    out[0::2] = radius * np.cos(angle)
    out[1::2] = radius * np.sin(angle)
    return out[:count].astype(np.float32)
