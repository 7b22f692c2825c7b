"""`drdiff bench` on a random tiny model (made by the CLI itself, no Python model code): the
JSON report has every field, with sane values (positive times, FLOPs growing with N, one
step time per timed step, op shares summing to 1), the temporary model file is removed, and
bad requests are refused with a message and a non-zero exit status, never a crash."""
import glob
import json
import os
import subprocess
import sys
import tempfile

from engine_cmd import engine_cmd

BIN = os.environ["DRDIFF_BIN"]
failures = []


def run(args, env=None):
    return subprocess.run(engine_cmd(BIN, "bench", *args), capture_output=True, encoding="utf-8", errors="replace",
                          timeout=600, env=env)


def device_present():
    return subprocess.run(engine_cmd(BIN, "info"), capture_output=True).returncode == 0


def expect_refused(args, why, env=None):
    r = run(args, env)
    # a crash shows as a negative return code (signal); refusals are 1 or 2 with a message
    if r.returncode not in (1, 2) or not r.stderr.strip():
        failures.append(f"{why}: rc={r.returncode} stderr={r.stderr.strip()[:200]!r}")


def check_report(rep, ns, steps):
    for key in ("device", "driver", "model", "steps", "runs", "params"):
        if key not in rep:
            failures.append(f"report lacks {key}")
    if rep.get("steps") != steps or [r.get("N") for r in rep.get("runs", [])] != ns:
        failures.append(f"steps {rep.get('steps')} / N {[r.get('N') for r in rep.get('runs', [])]}: want {steps} / {ns}")
        return
    positive = ("setup_s", "step_ms_median", "gen_s", "gen_s_20", "tokens_per_s", "flops_per_step", "tflops",
                "device_bytes", "host_cpu_ms_per_step")
    for run_ in rep["runs"]:
        n = run_["N"]
        for key in positive:
            if not isinstance(run_.get(key), (int, float)) or not run_[key] > 0:
                failures.append(f"N={n}: {key} = {run_.get(key)!r}, want > 0")
        if not isinstance(run_.get("host_cpu_ms_once"), (int, float)):
            failures.append(f"N={n}: host_cpu_ms_once = {run_.get('host_cpu_ms_once')!r}, want a number")
        # the generating thread's share: part of the process's, or -1 where unknown (Linux knows)
        th = run_.get("host_thread_cpu_ms_per_step")
        if not isinstance(th, (int, float)) or not (th == -1 or 0 <= th <= run_.get("host_cpu_ms_per_step", 0) + 1e-3):
            failures.append(f"N={n}: host_thread_cpu_ms_per_step = {th!r}, want -1 or 0 .. host_cpu_ms_per_step")
        steps_ms = run_.get("step_ms_all", [])
        if len(steps_ms) != steps or not all(t > 0 for t in steps_ms):
            failures.append(f"N={n}: step_ms_all = {steps_ms}, want {steps} positive times")
        elif not min(steps_ms) <= run_["step_ms_median"] <= max(steps_ms):
            failures.append(f"N={n}: median {run_['step_ms_median']} outside {steps_ms}")
        else:
            # steps without and with SAS apart, and the 20-step estimate made of them
            plain, sas_ms, n20 = run_.get("step_ms_plain"), run_.get("step_ms_sas"), run_.get("sas_steps_20")
            lo, hi = min(steps_ms), max(steps_ms)
            if not isinstance(n20, int) or not 0 <= n20 <= 20:
                failures.append(f"N={n}: sas_steps_20 = {n20!r}, want 0..20")
            elif not (isinstance(plain, (int, float)) and lo <= plain <= hi) or \
                    not (isinstance(sas_ms, (int, float)) and (sas_ms == 0 or lo <= sas_ms <= hi)):
                failures.append(f"N={n}: step_ms_plain {plain!r} / step_ms_sas {sas_ms!r} not among {steps_ms}")
            elif run_["gen_s_20"] < 1e-3 * ((20 - n20) * plain + n20 * (sas_ms or plain)) * (1 - 1e-9):
                failures.append(f"N={n}: gen_s_20 {run_['gen_s_20']} below its steps' sum")
        ops = run_.get("ops", [])
        if rep.get("profiled"):
            share = sum(o["share"] for o in ops)
            if not ops or abs(share - 1) > 1e-3:
                failures.append(f"N={n}: op shares sum to {share} over {len(ops)} ops")
            names = {o["name"] for o in ops}
            if not {"gemm", "attention"} <= names:
                failures.append(f"N={n}: ops {sorted(names)} lack gemm or attention")
            if any(not o["ms_per_step"] > 0 for o in ops):
                failures.append(f"N={n}: an op with no time: {ops}")
    flops = [r["flops_per_step"] for r in rep["runs"]]
    if flops != sorted(flops) or len(set(flops)) != len(flops):
        failures.append(f"flops_per_step must grow with N: {flops}")
    if not rep["runs"][0].get("setup_includes_weights"):
        failures.append("the first N's set-up must be marked as including the weights")


def main():
    if not device_present():
        required = os.environ.get("DRDIFF_REQUIRE_DEVICE", "0") not in ("", "0")
        print(("FAIL" if required else "SKIP") + ": no Vulkan device")
        return 1 if required else 77
    with tempfile.TemporaryDirectory(prefix="drdiff-bench-test-") as tmp:
        run_all(tmp)
    for f in failures:
        print("FAIL:", f)
    print(f"{'FAILED' if failures else 'ok'}: {len(failures)} failures")
    return 1 if failures else 0


def run_all(tmp):
    env = dict(os.environ, TMPDIR=tmp)

    r = run(["--config", "tiny", "-n", "40,150", "--steps", "3", "--json"], env)
    if r.returncode != 0:
        failures.append(f"bench --json: rc={r.returncode}: {r.stderr.strip()[-400:]}")
    else:
        try:
            check_report(json.loads(r.stdout), [40, 150], 3)
        except (ValueError, KeyError, TypeError) as e:
            failures.append(f"bench --json output: {e}: {r.stdout[:300]!r}")
    if "validation" in r.stderr.lower():
        failures.append(f"validation messages: {r.stderr.strip()[-400:]}")
    left = glob.glob(os.path.join(tmp, "drdiff-bench-*"))
    if left:
        failures.append(f"temporary model files left behind: {left}")

    # the table, f32 weights, no profile, one step
    r = run(["--config", "tiny", "--dtype", "f32", "-n", "20", "--steps", "1", "--no-profile", "--seed", "3"], env)
    if r.returncode != 0 or "step ms" not in r.stdout or "no per-op breakdown" not in r.stdout:
        failures.append(f"table: rc={r.returncode}: {r.stdout[-300:]!r} {r.stderr.strip()[-300:]!r}")

    expect_refused(["--config", "huge", "-n", "40"], "unknown config", env)
    expect_refused(["--config", "tiny", "-n", "0"], "N = 0", env)
    expect_refused(["--config", "tiny", "-n", "40,abc"], "N not a number", env)
    expect_refused(["--config", "tiny", "-n", "16777217"], "N above the engine's limit", env)
    expect_refused(["--config", "tiny", "--steps", "0"], "zero steps", env)
    expect_refused(["--config", "tiny", "--dtype", "f64"], "unknown dtype", env)
    expect_refused(["-m", os.path.join(tmp, "missing.gguf"), "-n", "8"], "missing file", env)
    expect_refused(["-n", "8"], "no model and no config", env)
    expect_refused(["--config", "tiny", "--bogus"], "unknown option", env)


if __name__ == "__main__":
    sys.exit(main())
