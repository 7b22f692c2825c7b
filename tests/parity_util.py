"""Shared by the parity tests: telling a rounding near-tie from a real difference.

Two engines that accumulate in different precisions (f64 in the C reference, f32 in PyTorch
and on the GPU) round the final state to the same tokens except where two vocabulary entries
score almost the same. A differing token is accepted only where, in the reference engine's
final state x (dumped with `drdiff generate --dump-state`), the two candidates' logits
x_n . E_v are within `rel` of the row's largest logit magnitude, and only for at most
`max_share` of the tokens: a real bug moves many tokens by large margins."""
import numpy as np

from drdiff.gguf import read_gguf


def embeddings(model_path):
    return np.asarray(read_gguf(model_path).tensors["token_embd.weight"], dtype=np.float64)


def explain_differences(state_path, E, prompt_len, ref, got, rel=1e-4, max_share=0.01):
    """Returns (ok, message). ref: the tokens of the engine whose state was dumped."""
    diff = [i for i, (a, b) in enumerate(zip(ref, got)) if a != b]
    if len(ref) != len(got):
        return False, f"lengths differ: {len(ref)} vs {len(got)}"
    if not diff:
        return True, ""
    x = np.fromfile(state_path, dtype="<f4").astype(np.float64).reshape(-1, E.shape[1])
    worst = 0.0
    for i in diff:
        logits = x[prompt_len + i] @ E.T
        gap = abs(logits[ref[i]] - logits[got[i]]) / max(np.max(np.abs(logits)), 1e-30)
        worst = max(worst, gap)
    ok = worst <= rel and len(diff) <= max(1, int(max_share * len(ref)))
    return ok, (f"{len(diff)}/{len(ref)} tokens differ; largest logit gap {worst:.2e} relative "
                f"({'near-ties, accepted' if ok else 'NOT near-ties'})")
