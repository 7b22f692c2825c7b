"""The CLI refuses impossible requests and broken inputs with a message and a non-zero exit
status, never a crash; and accepts the edge cases that are legal."""
import json
import os
import subprocess
import sys
import tempfile

BIN = os.environ["DRDIFF_BIN"]
failures = []


def run(args, env=None):
    return subprocess.run([BIN] + args, capture_output=True, encoding="utf-8", errors="replace", timeout=300,
                          env=dict(os.environ, **(env or {})))


def expect_refused(args, why, env=None, says=""):
    r = run(args, env)
    # a crash shows as a negative return code (signal); refusals are 1 or 2 with a message
    if r.returncode not in (1, 2) or not r.stderr.strip() or says not in r.stderr:
        failures.append(f"{why}: rc={r.returncode} stderr={r.stderr.strip()[:200]!r}")


def expect_ok(args, why):
    r = run(args)
    if r.returncode != 0:
        failures.append(f"{why}: rc={r.returncode} stderr={r.stderr.strip()[:300]!r}")
    return r


def main():
    try:
        from drdiff import random_model  # noqa: F401  (needs torch + numpy)
    except ImportError as e:
        print(f"SKIP: {e}")
        return 77
    tmp = tempfile.mkdtemp(prefix="drdiff-cli-")
    model = os.path.join(tmp, "tiny.gguf")
    subprocess.run([sys.executable, "-m", "drdiff.random_model", "--config", "tiny", "--seed", "5",
                    "--dtype", "f32", "-o", model], check=True)
    base = ["generate", "-m", model, "--backend", "cpu", "--no-progress"]

    expect_refused(base + ["-n", "0"], "zero new tokens")
    expect_refused(base + ["--steps", "0"], "zero steps")
    expect_refused(base + ["--order", "4"], "order 4")
    expect_refused(base + ["--sas-gamma", "1.5"], "gamma above 1")
    expect_refused(base + ["--sas-gamma", "-0.1"], "gamma below 0")
    expect_refused(base + ["--sas-temperature", "0"], "temperature 0")
    expect_refused(base + ["-n", "99999999999"], "more tokens than the engine addresses")
    expect_refused(base + ["-n", "16777216", "--prompt-ids", "1"], "N above the engine's limit")
    expect_refused(base + ["--prompt-ids", "1,2,x"], "malformed prompt ids")
    expect_refused(base + ["--prompt-ids", "100000"], "prompt id outside the vocabulary")
    expect_refused(base + ["--grid", "cubic"], "unknown grid")
    expect_refused(base + ["--backend", "tpu"], "unknown backend")
    expect_refused(base + ["--bogus"], "unknown option")
    # numeric switches that are not numbers are refused, not ignored (runtime/env.c)
    for var, value in (("DRDIFF_THREADS", "lots"), ("DRDIFF_TIMEOUT_MS", "5s"), ("DRDIFF_MAX_DEVICE_MEMORY", "1MiB")):
        expect_refused(base + ["-n", "4"], f"{var}={value}", env={var: value}, says=f"{var}='{value}'")
    expect_refused(["generate", "-m", os.path.join(tmp, "missing.gguf"), "--backend", "cpu"], "missing file")
    junk = os.path.join(tmp, "junk.gguf")
    with open(junk, "wb") as f:
        f.write(b"GGUF" + bytes(100))
    expect_refused(["generate", "-m", junk, "--backend", "cpu"], "malformed file")
    with open(model, "rb") as f:
        head = f.read(5000)
    cut = os.path.join(tmp, "cut.gguf")
    with open(cut, "wb") as f:
        f.write(head)
    expect_refused(["generate", "-m", cut, "--backend", "cpu"], "truncated file")
    expect_refused(["frobnicate"], "unknown command")
    # --dump-state: a path that cannot be written is refused with its own message, before the
    # generation; a failed generation leaves no new file behind and an existing one as it was
    r = run(base + ["-n", "4", "--dump-state", os.path.join(tmp, "no-dir", "x.bin")])
    said = [line for line in r.stderr.splitlines() if line.strip()]
    if r.returncode != 1 or len(said) != 1 or "cannot write" not in said[0] or "no-dir" not in said[0]:
        failures.append(f"unwritable --dump-state: rc={r.returncode}, want one line saying so: {said!r}")
    lost = os.path.join(tmp, "lost.bin")
    expect_refused(base + ["--prompt-ids", "100000", "--dump-state", lost], "--dump-state of a refused run")
    if os.path.exists(lost):
        failures.append("a refused run left its --dump-state file behind")
    kept = os.path.join(tmp, "kept.bin")
    with open(kept, "wb") as f:
        f.write(b"an earlier state")
    expect_refused(base + ["--prompt-ids", "100000", "--dump-state", kept], "--dump-state over a file, refused run")
    with open(kept, "rb") as f:
        if f.read() != b"an earlier state":
            failures.append("a refused run changed the file already at its --dump-state path")
    expect_refused(["info", "-m", junk], "info of a malformed file")

    # no Vulkan driver to be found: the default backend falls back to the CPU engine with a note
    # (the same text as --backend cpu); an explicit Vulkan backend or device is refused
    nodrv = {"VK_DRIVER_FILES": os.path.join(tmp, "no-such-icd.json"),
             "VK_ICD_FILENAMES": os.path.join(tmp, "no-such-icd.json")}
    plain = ["generate", "-m", model, "-n", "6", "--seed", "4", "--no-progress"]
    cpu = run(plain + ["--backend", "cpu"])
    fb = run(plain, env=nodrv)
    if fb.returncode != 0 or "generating on the CPU instead" not in fb.stderr or "found no driver" not in fb.stderr \
            or fb.stdout != cpu.stdout or cpu.returncode != 0:
        failures.append(f"no driver, default backend: rc={fb.returncode} out={fb.stdout!r} (cpu {cpu.stdout!r}) "
                        f"stderr={fb.stderr.strip()[:300]!r}")
    expect_refused(plain + ["--backend", "vulkan"], "no driver, --backend vulkan", env=nodrv, says="found no driver")
    expect_refused(plain + ["--device", "0"], "no driver, --device 0", env=nodrv)
    expect_refused(plain, "no driver, DRDIFF_DEVICE=0", env=dict(nodrv, DRDIFF_DEVICE="0"))

    # info -m: the model's numbers (tiny: SPEC section 10) beside the devices; the exit status
    # still says whether a device is usable
    r = run(["info", "-m", model, "--json"])
    try:
        m = json.loads(r.stdout)["model"] if r.returncode in (0, 1) else None
    except (ValueError, KeyError):
        m = None
    want = {"vocab_size": 300, "embed_dim": 16, "model_dim": 64, "layers": 2, "heads": 4, "experts": 4,
            "experts_max": 2, "context_length": 512, "default_steps": 8,
            "parameters": 194256}  # V de + (d de + d) + (d dt + d) + (d d + d) + L (2 d + 4 d d + E d + 3 E dff d) + d + de d + de
    if not m or any(m.get(k) != v for k, v in want.items()):
        failures.append(f"info -m --json: rc={r.returncode} model={m!r} stderr={r.stderr.strip()[:200]!r}")

    # legal edge cases
    expect_ok(base + ["-n", "1"], "one token")
    expect_ok(base + ["-n", "3", "--steps", "1", "--order", "3"], "one step at order 3")
    state = os.path.join(tmp, "state.bin")
    expect_ok(base + ["-n", "3", "--prompt-ids", "1,2", "--dump-state", state], "--dump-state")
    if not os.path.exists(state) or os.path.getsize(state) != (2 + 3) * 16 * 4:  # (P + N) x de f32
        failures.append(f"--dump-state wrote {os.path.getsize(state) if os.path.exists(state) else 'no'} bytes, "
                        f"want {(2 + 3) * 16 * 4}")
    r = expect_ok(base + ["-n", "5", "-p", "hello world", "--json"], "text prompt")
    if r.returncode == 0 and '"tokens": [' not in r.stdout:
        failures.append(f"--json output lacks tokens: {r.stdout[:200]!r}")

    for f in failures:
        print("FAIL:", f)
    print(f"{'FAILED' if failures else 'ok'}: {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
