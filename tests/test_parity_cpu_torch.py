"""C reference engine vs PyTorch reference on fresh random `tiny` models.

(a) one denoiser evaluation at N = 20, 50, 100, 200 (dense, HSA modes 1, 2, 3) and a few
    u: `$DRDIFF_TOOLS/tool_forward MODEL IN.f32 N U OUT.f32` against drdiff.model, max abs
    diff / max abs ref < 1e-5;
(b) whole generations, token for token: `$DRDIFF_BIN generate --backend cpu --json
    --no-progress` against drdiff.generate with the same flags, for orders 1-3, both grids,
    SAS on and off, with and without a prompt, plus one long run on the file defaults; a
    differing token passes only as a rounding near-tie (parity_util.explain_token_differences:
    at the end, or a top-p expert choice within 1e-5 of flipping on the way, <= 1 % of them);
(c) (a) and (b) again with f16, q8_0 and bf16 weights.
Each weight type gets its own noise schedule, so all three schedules are covered.

The Python side runs drdiff.generate's command-line code in-process (same argv) to save
interpreter start-ups. Seeds are random and printed; DRDIFF_TEST_SEED=S repeats a run.
Exit 0 pass, 1 fail (or a C piece missing), 77 when torch is not importable.
"""
import json

from parity_util import explain_token_differences
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError as e:
    print(f"skip: {e}")
    sys.exit(77)

from drdiff import generate
from drdiff.model import load_model
from drdiff.random_model import write_random_model

FORWARD_CASES = [(20, "1.0"), (20, "0.0625"), (50, "0.5"), (50, "0.8125"),
                 (100, "0.25"), (100, "1.0"), (200, "0.5"), (200, "0.0625")]
REL_TOL = 1e-5
MODELS = (("f32", "sqrt"), ("f16", "cosine"), ("q8_0", "linear_logsnr"), ("bf16", "sqrt"))


class Report:
    def __init__(self):
        self.failures, self.missing, self.passed = [], [], 0

    def ok(self):
        self.passed += 1

    def fail(self, msg):
        self.failures.append(msg)
        print("FAIL " + msg)

    def need(self, path, what):
        """True when an executable exists; otherwise records it as missing once."""
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return True
        msg = f"{what} not found at {path!r}"
        if msg not in self.missing:
            self.missing.append(msg)
            print("MISSING " + msg)
        return False


def run_c(cmd, report, what, env=None):
    # the generated text may hold bytes that are not UTF-8; only the tokens are compared
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=300, env=env)
    except subprocess.TimeoutExpired:
        report.fail(f"{what}: timed out: {' '.join(cmd)}")
        return None
    if p.returncode != 0:
        report.fail(f"{what}: exit {p.returncode}: {' '.join(cmd)}\n  stderr: "
                    + p.stderr.strip()[-2000:])
        return None
    return p


def forward_parity(model_path, dtype, rng, tool, report, tmp):
    model, cfg, _ = load_model(model_path)
    for n, u in FORWARD_CASES:
        x = rng.standard_normal((n, cfg.de)).astype(np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(x), float(u)).numpy()
        if not report.need(tool, "C forward tool (tests/tool_forward.c)"):
            continue
        xin, xout = os.path.join(tmp, "in.f32"), os.path.join(tmp, "out.f32")
        x.astype("<f4").tofile(xin)
        if os.path.exists(xout):
            os.remove(xout)
        what = f"forward {dtype} N={n} u={u}"
        if run_c([tool, model_path, xin, str(n), u, xout], report, what) is None:
            continue
        got = np.fromfile(xout, dtype="<f4")
        if got.size != ref.size:
            report.fail(f"{what}: C wrote {got.size} floats, want {ref.size}")
            continue
        rel = float(np.abs(got.reshape(ref.shape) - ref).max() / np.abs(ref).max())
        if rel < REL_TOL:
            report.ok()
        else:
            report.fail(f"{what}: relative error {rel:.3g} >= {REL_TOL}")
        print(f"  forward {dtype:5s} N={n:3d} u={u:7s} rel err {rel:.2e}")


def generation_cases(rng, vocab):
    """(flags) lists; every combination of order, grid, SAS, prompt, then a long run."""
    cases = []
    for order in (1, 2, 3):
        for grid in ("time_uniform", "logsnr_uniform"):
            for sas in (True, False):
                for with_prompt in (False, True):
                    n_new = 60 if (order + with_prompt) % 2 else 24   # dense and HSA N
                    flags = ["-n", str(n_new), "--order", str(order), "--grid", grid,
                             "--seed", str(int(rng.integers(0, 2 ** 63)) * 2 + 1)]
                    if with_prompt:
                        ids = rng.integers(0, vocab - 3, size=5)
                        flags += ["--prompt-ids", ",".join(str(int(i)) for i in ids)]
                    flags += (["--sas-gamma", "0.5", "--sas-start", "0.5",
                               "--sas-temperature", "0.25"] if sas else ["--sas-gamma", "0"])
                    cases.append(flags)
    cases.append(["-n", "150", "--steps", "12", "--order", "3", "--prompt-ids", "10,20",
                  "--seed", str(int(rng.integers(0, 2 ** 32)))])   # file defaults, mode 3
    return cases


def generation_parity(model_path, dtype, rng, cli, report):
    _, cfg, _ = load_model(model_path)
    for flags in generation_cases(rng, cfg.V):
        ref, _ = generate.run(["-m", model_path, "--json"] + flags)
        if not report.need(cli, "drdiff CLI ($DRDIFF_BIN)"):
            continue
        what = f"generate {dtype} {' '.join(flags)}"
        state, steps_dir = model_path + ".state.f32", model_path + ".steps"
        shutil.rmtree(steps_dir, ignore_errors=True)
        os.makedirs(steps_dir)
        p = run_c([cli, "generate", "-m", model_path, "--backend", "cpu", "--json",
                   "--no-progress", "--dump-state", state] + flags, report, what,
                  env=dict(os.environ, DRDIFF_DUMP_STEPS=steps_dir))  # the trajectory, for routing near-ties
        if p is None:
            continue
        try:
            got = json.loads(p.stdout.strip().splitlines()[-1], strict=False)["tokens"]
        except (ValueError, KeyError, IndexError):
            report.fail(f"{what}: no JSON with 'tokens' in stdout: {p.stdout[-500:]!r}")
            continue
        prompt_len = len(flags[flags.index("--prompt-ids") + 1].split(",")) if "--prompt-ids" in flags else 0
        near_tie, why = (False, "")
        if got != ref["tokens"]:
            near_tie, why = explain_token_differences(model_path, state, steps_dir, prompt_len, got, ref["tokens"])
            print(f"  {what}: {why}")
        if got == ref["tokens"] or near_tie:
            report.ok()
        else:
            first = next((i for i, (a, b) in enumerate(zip(got, ref["tokens"])) if a != b),
                         min(len(got), len(ref["tokens"])))
            report.fail(f"{what}: tokens differ from index {first}\n  C:      {got}\n"
                        f"  Python: {ref['tokens']}")


def main():
    torch.set_num_threads(1)
    seed = int(os.environ.get("DRDIFF_TEST_SEED") or np.random.SeedSequence().entropy % 2 ** 32)
    print(f"seed {seed} (DRDIFF_TEST_SEED={seed} repeats this run)")
    tools = os.environ.get("DRDIFF_TOOLS", "")
    tool = os.path.join(tools, "tool_forward") if tools else ""
    cli = os.environ.get("DRDIFF_BIN", "")
    report = Report()
    tmp = tempfile.mkdtemp(prefix="drdiff_parity_")
    rng = np.random.default_rng(seed)
    for dtype, schedule in MODELS:
        model_seed = int(rng.integers(0, 2 ** 31))
        path = os.path.join(tmp, f"tiny_{dtype}.gguf")
        write_random_model(path, "tiny", seed=model_seed, dtype=dtype, schedule=schedule)
        print(f"model tiny {dtype} {schedule}: random_model seed {model_seed}")
        forward_parity(path, dtype, rng, tool, report, tmp)
        generation_parity(path, dtype, rng, cli, report)
    print(f"{report.passed} comparisons passed, {len(report.failures)} failed")
    for m in report.missing:
        print(f"MISSING {m}: its comparisons did not run (the Python side did)")
    if report.failures or report.missing:
        print(f"models kept in {tmp}")
        return 1
    shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
