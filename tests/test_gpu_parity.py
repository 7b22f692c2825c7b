"""End to end on fresh random `tiny` models: the Vulkan engine against the C reference
engine (CPU). f32 weights (and, on a third of the cases each, mixed-type files, and q8_0 and
bf16 files where the device has no cooperative matrices, all of which the engine widens to f32):
identical tokens at N in every HSA regime (<= 32, 33-64, 65-128, > 128), orders 1-3, both
grids, SAS on and off, prompts empty and not, but for at most 1 % of the tokens that are
rounding near-ties at the end or where a top-p expert choice (theirs or another row's, which the
attention carries to every row) came within 1e-5 of flipping at some
step of the CPU engine's trajectory (DRDIFF_DUMP_STEPS). f16 weights (and q8_0 and bf16 ones
where the device has cooperative matrices: the f16 engine, their weights widened to f16): x0_hat
within 1e-2 relative (except rows reached from a top-p routing near-tie, see
parity_util.explain_forward_error) and at least 99% equal tokens. The validation layer is on
(DRDIFF_VALIDATE=1) and any message fails the run."""
import os
import random
import subprocess
import sys
import tempfile

import numpy as np

from engine_cmd import engine_cmd
from parity_util import explain_forward_error, explain_token_differences

BIN = os.environ["DRDIFF_BIN"]
TOOLS = os.environ["DRDIFF_TOOLS"]
failures = []


def device_present():
    r = subprocess.run(engine_cmd(BIN, "info"), capture_output=True)
    return r.returncode == 0


def f16_engine_for_packed():
    """Whether q8_0 and bf16 files run the f16 engine here: where the chosen device's GEMMs
    have cooperative-matrix kernels (runtime/engine_weights.c, f16_products)"""
    import json
    r = subprocess.run(engine_cmd(BIN, "info", "--json"), capture_output=True, text=True, check=True)
    info = json.loads(r.stdout)
    return bool(info["devices"][info["chosen"]].get("coopmat_kernels"))


def generate(model, backend, args, state=None, steps_dir=None):
    extra = ["--dump-state", state] if state else []
    env = dict(os.environ, DRDIFF_VALIDATE="1")
    if steps_dir:
        env["DRDIFF_DUMP_STEPS"] = steps_dir  # the CPU engine's trajectory (host/cpu_engine.c)
    r = subprocess.run(engine_cmd(BIN, "generate", "-m", model, "--backend", backend, "--json", "--no-progress",
                                  *extra, *args),
                       capture_output=True, encoding="utf-8", errors="replace", timeout=900, env=env)
    if r.returncode != 0:
        failures.append(f"{backend} {' '.join(args)}: rc={r.returncode}: {r.stderr.strip()[-400:]}")
        return None
    if "validation" in r.stderr:
        failures.append(f"{backend} {' '.join(args)}: validation messages: {r.stderr.strip()[-400:]}")
    import json
    return json.loads(r.stdout)["tokens"]


def forward(tool, model, x, n, u, tmp):
    inp, out = os.path.join(tmp, "x.f32"), os.path.join(tmp, f"y-{tool}.f32")
    x.astype("<f4").tofile(inp)
    r = subprocess.run(engine_cmd(os.path.join(TOOLS, tool), model, inp, n, repr(u), out), capture_output=True,
                       text=True, timeout=600)
    if r.returncode != 0:
        failures.append(f"{tool} N={n} u={u}: rc={r.returncode}: {r.stderr.strip()[-400:]}")
        return None
    return np.fromfile(out, dtype="<f4")


def f32_tokens(model, label, cases, tmp):
    """The f32 engine's token identity with the CPU engine, but for explained near-ties."""
    state, steps_dir = os.path.join(tmp, "cpu-state.f32"), os.path.join(tmp, f"cpu-steps-{label}")
    os.makedirs(steps_dir)
    for args in cases:
        a, b = generate(model, "cpu", args, state, steps_dir), generate(model, "vulkan", args)
        if a is not None and b is not None and a != b:
            prompt_len = len(args[args.index("--prompt-ids") + 1].split(",")) if "--prompt-ids" in args else 0
            ok, why = explain_token_differences(model, state, steps_dir, prompt_len, a, b)
            print(f"{label} {' '.join(args)}: {why}")
            if not ok:
                failures.append(f"{label} {' '.join(args)}: {why}")


def main():
    try:
        import torch  # noqa: F401  (random_model needs it)
    except ImportError as e:
        print(f"SKIP: {e}")
        return 77
    if not device_present():
        required = os.environ.get("DRDIFF_REQUIRE_DEVICE", "0") not in ("", "0")
        print(("FAIL" if required else "SKIP") + ": no Vulkan device")
        return 1 if required else 77
    seed = int(os.environ.get("DRDIFF_TEST_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"seed {seed}")
    tmp = tempfile.mkdtemp(prefix="drdiff-gpu-parity-")
    models = {}
    for dtype in ("f32", "f16", "q8_0", "bf16", "mixed"):
        path = os.path.join(tmp, f"tiny-{dtype}.gguf")
        subprocess.run([sys.executable, "-m", "drdiff.random_model", "--config", "tiny", "--seed",
                        str(rng.randrange(1 << 30)), "--dtype", dtype, "-o", path], check=True)
        models[dtype] = path

    # f32: token identity over the regimes and solver options
    cases = []
    for n_total in (20, 50, 100, 200):
        for order in (1, 2, 3):
            prompt = rng.choice([[], [rng.randrange(259) for _ in range(rng.randrange(1, 6))]])
            g = n_total - len(prompt)
            args = ["-n", str(g), "--order", str(order), "--seed", str(rng.randrange(1 << 40)),
                    "--grid", rng.choice(["time_uniform", "logsnr_uniform"])]
            if rng.random() < 0.5:
                args += ["--sas-gamma", "0"]
            if prompt:
                args += ["--prompt-ids", ",".join(map(str, prompt))]
            cases.append(args)
    packed_f16 = f16_engine_for_packed()
    print("q8_0 and bf16 files run the " + ("f16" if packed_f16 else "f32") + " engine here")
    f32_models = ("f32", "mixed") if packed_f16 else ("f32", "q8_0", "bf16", "mixed")
    for dtype in f32_models:
        # mixed files (and q8_0 and bf16 ones without cooperative matrices) run on the f32
        # engine too (their weights widened exactly, runtime/engine_weights.c): a third of the
        # cases each
        f32_tokens(models[dtype], dtype, cases if dtype == "f32" else cases[::3], tmp)

    # f16: forward accuracy and token agreement; 2048 rows and up take the subgroup norms, and
    # on cooperative matrices the router's logits from the FFN's norm (drd_op_rmsnorm_router)
    de = 16
    f16_models = ("f16", "q8_0", "bf16") if packed_f16 else ("f16",)
    for n in (20, 100, 200, 2048):
        x = np.random.default_rng(rng.randrange(1 << 30)).standard_normal(n * de).astype(np.float32)
        for u in (0.9, 0.3):
            # q8_0 and bf16 (their weights rounded to f16 besides): two of the eight
            for dtype in f16_models if (n, u) in ((100, 0.3), (2048, 0.9)) else ("f16",):
                ref = forward("tool_forward", models[dtype], x, n, u, tmp)
                got = forward("tool_forward_vk", models[dtype], x, n, u, tmp)
                if ref is not None and got is not None:
                    err = float(np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-30))
                    print(f"{dtype} forward N={n} u={u}: relative error {err:.2e}")
                    if not err <= 1e-2:
                        ok, why = explain_forward_error(models[dtype], x, u, ref, got, 1e-2)
                        print(f"{dtype} forward N={n} u={u}: {why}")
                        if not ok:
                            failures.append(f"{dtype} forward N={n} u={u}: relative error {err:.2e} > 1e-2: {why}")
    # every case: f16 rounding flips a top-p routing choice now and then, and one flip moves a
    # handful of neighbouring tokens at once (CI seed 156259547: 4 of one case's 99, all in
    # rows whose final state differs by 5e-2 .. 5e-1); over a third of the cases that alone
    # came near 1 %, over all of them such a cluster is one of ~1100 tokens
    for dtype in f16_models:
        same = total = 0
        for args in cases:
            a, b = generate(models[dtype], "cpu", args), generate(models[dtype], "vulkan", args)
            if a is not None and b is not None:
                same += sum(x == y for x, y in zip(a, b))
                total += len(a)
        if total:
            print(f"{dtype} tokens equal: {same}/{total}")
            if same < 0.99 * total:
                failures.append(f"{dtype}: only {same}/{total} tokens equal (< 99%)")

    for f in failures:
        print("FAIL:", f)
    print(f"{len(cases)} f32 cases; {'FAILED' if failures else 'ok'} (seed {seed})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
