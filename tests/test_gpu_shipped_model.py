"""The shipped model (models/*.gguf, found by `drdiff generate` without -m) end to end with
fixed seeds: the Vulkan backend against the C reference engine on the CPU. The shipped
weights are f16, so the GPU path's f16 arithmetic may flip a rare near-tie: at least 99% of
the tokens must be equal over all runs. Validation is on; any message fails. Last, the CLI
under DRDIFF_MAX_DEVICE_MEMORY: a limit below the weights, and one that is not a size, end
with exit status 1 and a message saying why."""
import glob
import json
import os
import subprocess
import sys

from engine_cmd import engine_cmd

BIN = os.environ["DRDIFF_BIN"]
RUNS = [("The", 0), ("Once upon a time", 1), ("The president said that", 2), ("", 3)]
NEW = 64


def model_arg():
    """Nothing: the CLI finds the shipped model beside its binary, which this test checks. Under
    a runner (Debian 13's ld.so) the binary cannot see its own path, so the model is named."""
    if not os.environ.get("DRDIFF_TEST_RUNNER"):
        return []
    models = sorted(glob.glob(os.path.join(os.environ["DRDIFF_SOURCE"], "models", "*.gguf")))
    return ["-m", models[0]] if models else []


def generate(backend, prompt, seed):
    args = engine_cmd(BIN, "generate", "--backend", backend, "-n", NEW, "--seed", seed, "--json", "--no-progress",
                      *(["-p", prompt] if prompt else []), *model_arg())
    r = subprocess.run(args, capture_output=True, encoding="utf-8", errors="replace", timeout=900,
                       env=dict(os.environ, DRDIFF_VALIDATE="1"))
    if r.returncode != 0:
        raise SystemExit(f"FAIL {backend} {prompt!r} seed {seed}: rc={r.returncode}: {r.stderr[-400:]}")
    if "validation" in r.stderr.lower():
        raise SystemExit(f"FAIL {backend}: validation messages: {r.stderr[-400:]}")
    return json.loads(r.stdout)


def limit_refusals():
    """The failures, or [] when both limits are refused as they should be."""
    failures = []
    for limit, why in (("1M", "the model needs"), ("lots", "DRDIFF_MAX_DEVICE_MEMORY='lots'")):
        args = engine_cmd(BIN, "generate", "--backend", "vulkan", "-n", NEW, "--no-progress", *model_arg())
        r = subprocess.run(args, capture_output=True, encoding="utf-8", errors="replace", timeout=900,
                           env=dict(os.environ, DRDIFF_MAX_DEVICE_MEMORY=limit))
        if r.returncode != 1 or why not in r.stderr:
            failures.append(f"DRDIFF_MAX_DEVICE_MEMORY={limit}: rc={r.returncode}: {r.stderr[-300:]!r}")
    return failures


def main():
    if subprocess.run(engine_cmd(BIN, "info"), capture_output=True).returncode != 0:
        required = os.environ.get("DRDIFF_REQUIRE_DEVICE", "0") not in ("", "0")
        print(("FAIL" if required else "SKIP") + ": no Vulkan device")
        return 1 if required else 77
    same = total = 0
    for prompt, seed in RUNS:
        c = generate("cpu", prompt, seed)
        v = generate("vulkan", prompt, seed)
        if len(c["tokens"]) != NEW or len(v["tokens"]) != NEW:
            print(f"FAIL: expected {NEW} tokens, got {len(c['tokens'])} / {len(v['tokens'])}")
            return 1
        # a trained model does not repeat one token: guards against a silently broken load
        if len(set(c["tokens"])) < NEW // 4:
            print(f"FAIL: degenerate output for {prompt!r}: {c['text']!r}")
            return 1
        eq = sum(a == b for a, b in zip(c["tokens"], v["tokens"]))
        same += eq
        total += NEW
        print(f"{prompt!r} seed {seed}: {eq}/{NEW} equal; cpu: {c['text'][:80]!r}")
    share = same / total
    print(f"{'ok' if share >= 0.99 else 'FAIL'}: {same}/{total} tokens equal ({share:.4f}, need >= 0.99)")
    failures = limit_refusals()
    for f in failures:
        print(f"FAIL: {f}")
    return 0 if share >= 0.99 and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
