"""The PyTorch benchmark (models/drdiff/bench_torch.py) computes the engine's function, and
scripts/bench_table.py prints what the JSON files hold. CPU only, a few seconds.

Checks:
* bench_torch's forward (fused QKV, expert-sorted DES, attention over the flex tiles and
  mask_mod built from the HSA block table), fp32, equals drdiff.model's forward within 1e-4
  relative, for N in every HSA regime of `tiny` (dense and modes 1-3) and for flex tiles of
  128 (the GPU default), 8 (= the HSA block) and 16 tokens; the tiles + mask_mod give
  exactly drdiff.hsa's token mask (so the BlockMask given to flex on the GPU attends
  exactly the pairs SPEC section 5 allows);
* whole generations (DPM-Solver++(2M) + SAS, no prompt) equal drdiff.sampler.solve;
* the bf16 path agrees with the reference to bf16 precision (dtype plumbing; the CUDA run
  uses fp16/bf16);
* flops_per_step: the formula on a hand-counted case, attention pairs = the mask's count,
  linear growth in the sparse modes, quadratic when dense;
* `python3 -m drdiff.bench_torch --device cpu` runs (random config and GGUF model) and
  writes every JSON field; --time-limit records skipped runs; a failing mode is recorded;
* bench_table on fake JSON files: ratios, "-" for missing entries, reasons listed.

Run: PYTHONPATH=models /usr/bin/python3 tests/test_bench_torch.py
Exit 0 pass, 1 fail, 77 when torch is not importable.
"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError as e:
    print(f"skip: {e}")
    sys.exit(77)

from drdiff import bench_torch as bt
from drdiff.hsa import hsa_mask, mode_for
from drdiff.model import load_model, timestep_features
from drdiff.random_model import CONFIGS, write_random_model
from drdiff.sampler import SamplerParams, initial_noise, solve

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import bench_table  # noqa: E402
from check_runner import run_checks

CHECKS = []
TMP = tempfile.mkdtemp(prefix="drdiff_bench_torch_")
CPU = torch.device("cpu")
TINY = CONFIGS["tiny"]
# tiny: B = 8, dense up to 32, mode 1 up to 64, mode 2 up to 128, then mode 3
FORWARD_N = (20, 32, 50, 64, 100, 129, 200)
_model = {}


def check(fn):
    CHECKS.append(fn)
    return fn


def tiny_model():
    """(reference DrDiff, cfg, GGUF path, its tensors) of one random tiny f32 model."""
    if not _model:
        path = os.path.join(TMP, "tiny.gguf")
        write_random_model(path, "tiny", seed=11)
        ref, cfg, _ = load_model(path)
        _model.update(ref=ref, cfg=cfg, path=path,
                      tensors={k: v.detach() for k, v in ref.state_dict().items()})
    return _model["ref"], _model["cfg"], _model["path"], _model["tensors"]


def rel(got, want):
    return float((got - want).abs().max() / want.abs().max())


def env():
    e = dict(os.environ)
    e["PYTHONPATH"] = os.path.join(ROOT, "models") + os.pathsep + e.get("PYTHONPATH", "")
    return e


# ------------------------------------------------------------------ same function

@check
def regimes_covered():
    assert {mode_for(n, TINY.hsa) for n in FORWARD_N} == {0, 1, 2, 3}


@check
def plan_is_the_hsa_mask():
    """Full tiles unmasked + partial tiles through mask_mod = hsa_mask, for N that are and
    are not multiples of the tile; full tiles really are fully visible."""
    for n in FORWARD_N + (1, 7, 257, 300):
        want = hsa_mask(n, TINY.hsa)
        for fb in (128, 8, 16, 32):
            plan = bt.AttentionPlan(TINY, n, fb, CPU)
            got = np.zeros((n, n), dtype=bool)
            for a in range(plan.ntile):
                keys, allowed = plan.tile_keys(a)
                got[a * fb:min((a + 1) * fb, n)][:, keys.numpy()] = allowed.numpy()
            assert np.array_equal(got, want), (n, fb)
            assert not (plan.full_tiles & plan.partial_tiles).any()
            assert plan.kv_idx.dtype == np.int32 and plan.kv_idx.shape == (plan.ntile,) * 2
            for a in range(plan.ntile):      # listed tiles first, as BlockMask expects
                assert set(plan.full_idx[a, :plan.full_num[a]]) == set(
                    np.nonzero(plan.full_tiles[a])[0]), (n, fb, a)
                assert set(plan.kv_idx[a, :plan.kv_num[a]]) == set(
                    np.nonzero(plan.partial_tiles[a])[0]), (n, fb, a)
            assert plan.tile_pairs >= plan.hsa_pairs == int(want.sum())
        # a tile of one HSA block is visible whole or not at all: nothing is partial
        assert not bt.AttentionPlan(TINY, n, 8, CPU).partial_tiles.any()


@check
def forward_equals_reference():
    ref, cfg, _, tensors = tiny_model()
    model = bt.BenchModel(cfg, tensors, CPU, torch.float32)
    g = torch.Generator().manual_seed(5)
    for n in FORWARD_N:
        for u in (1.0, 0.3):
            x = torch.randn(n, cfg.de, generator=g)
            tfeat = timestep_features(np.asarray(u), cfg.dt, cfg.time_scale).float()
            with torch.no_grad():
                want = ref(x, u)
                for fb in (128, 8, 16):
                    attn = bt.Attention(cfg, n, CPU, torch.float32, fb, compiled_flex=False)
                    assert attn.kind == "table"
                    err = rel(model.forward(x, tfeat, attn), want)
                    assert err < 1e-4, f"N={n} u={u} tile {fb}: relative error {err:.2e}"


@check
def generation_equals_sampler():
    ref, cfg, _, tensors = tiny_model()
    model = bt.BenchModel(cfg, tensors, CPU, torch.float32)
    E = ref.token_embd.weight.detach()
    plan = bt.SolverPlan(cfg, cfg.steps, CPU)
    assert 0 < plan.sas_share < 1           # both kinds of step are exercised
    for n, seed in ((24, 3), (100, 4), (200, 5)):
        params = SamplerParams(steps=cfg.steps, order=2, seed=seed, sas_gamma=cfg.sas_gamma,
                               sas_temperature=cfg.sas_temperature, sas_start=cfg.sas_start)
        want = solve(ref, cfg.schedule, E, [], n, params)
        attn = bt.Attention(cfg, n, CPU, torch.float32, 128, compiled_flex=False)
        got = bt.sample(model, plan, initial_noise(seed, n, cfg.de), attn)
        err = rel(got, want)
        assert err < 1e-4, f"N={n}: final state relative error {err:.2e}"


@check
def bf16_close_to_reference():
    """Per-row error at bf16 level; a few rows may differ more where bf16 rounding flips
    a near-tied expert choice (the same happens between any two precisions)."""
    ref, cfg, _, tensors = tiny_model()
    model = bt.BenchModel(cfg, tensors, CPU, torch.bfloat16)
    x = torch.randn(100, cfg.de, generator=torch.Generator().manual_seed(2))
    tfeat = timestep_features(np.asarray(0.5), cfg.dt, cfg.time_scale).float()
    with torch.no_grad():
        want = ref(x, 0.5)
        got = model.forward(x, tfeat, bt.Attention(cfg, 100, CPU, torch.bfloat16, 128, False))
    assert got.dtype == torch.float32 and got.shape == want.shape
    row = (got - want).norm(dim=1) / want.norm(dim=1)
    assert float(row.median()) < 3e-2, float(row.median())
    assert int((row > 0.1).sum()) <= 10, row


# ------------------------------------------------------------------ FLOPs

@check
def flops_formula():
    # tiny, N = 20 (dense), counted by hand: time MLP 2·(32·64 + 64²); in/out projections
    # 2·20·(16·64 + 64·16); per layer 2·20·(4·64² + 64·4 + 2·3·64·96) + 4·64·20²; two
    # layers; SAS 4·20·300·16
    assert bt.flops_per_step(TINY, 20, False) == 12288 + 81920 + 2 * (2140160 + 102400)
    assert bt.flops_per_step(TINY, 20, True) - bt.flops_per_step(TINY, 20, False) == 384000
    for n in (20, 50, 100, 200, 333):
        assert bt.hsa_pairs(TINY, n) == int(hsa_mask(n, TINY.hsa).sum()), n


@check
def flops_linear_when_sparse():
    base = CONFIGS["base-220m"]
    for cfg, ns in ((TINY, (1024, 2048, 4096, 8192)), (base, (16384, 32768, 65536))):
        for a, b in zip(ns, ns[1:]):
            assert mode_for(a, cfg.hsa) == mode_for(b, cfg.hsa) != 0
            for f in (lambda n: bt.hsa_pairs(cfg, n),
                      lambda n: bt.flops_per_step(cfg, n, False),
                      lambda n: bt.flops_per_step(cfg, n, True)):
                r = f(b) / f(a) * a / b
                assert 0.97 < r < 1.03, (cfg.d, a, b, r)
    # dense: attention grows as N²
    assert bt.hsa_pairs(TINY, 32) == 4 * bt.hsa_pairs(TINY, 16)
    assert bt.hsa_pairs(base, 1024) == 1024 ** 2


# ------------------------------------------------------------------ the command line

def run_bench(args, name):
    out = os.path.join(TMP, name)
    p = subprocess.run([sys.executable, "-m", "drdiff.bench_torch", "--device", "cpu",
                        "--json", out] + args, capture_output=True, text=True, env=env(),
                       timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    with open(out) as f:
        return json.load(f)


@check
def bench_cli_writes_json():
    doc = run_bench(["--config", "tiny", "-n", "32,100,200", "--steps", "8",
                     "--timed-steps", "2", "--modes", "eager,compile"], "cfg.json")
    for k in ("device", "torch", "dtype", "config", "runs", "steps", "model"):
        assert k in doc, k
    assert doc["device"] == "cpu" and doc["dtype"] == "fp32" and doc["config"]["d"] == 64
    eager = [r for r in doc["runs"] if r["mode"] == "eager"]
    assert [r["N"] for r in eager] == [32, 100, 200]
    for r in eager:
        assert "error" not in r, r
        for k in ("step_ms_median", "step_ms_all", "compile_s", "peak_mem_bytes",
                  "flops_per_step", "tflops", "attention"):
            assert k in r, k
        assert len(r["step_ms_all"]) == 2 and r["step_ms_median"] > 0 and r["tflops"] > 0
        assert r["flops_per_step"] >= bt.flops_per_step(TINY, r["N"], False)
        assert r["attention"]["hsa_pairs"] == bt.hsa_pairs(TINY, r["N"])
    # "compile" either ran or, on a torch without torch.compile, is recorded as an error
    comp = [r for r in doc["runs"] if r["mode"] == "compile"]
    assert len(comp) == 3 and all("step_ms_median" in r or r.get("error") for r in comp)


@check
def bench_cli_model_and_time_limit():
    _, _, path, _ = tiny_model()
    doc = run_bench(["-m", path, "-n", "64", "--timed-steps", "1", "--modes", "eager"],
                    "model.json")
    (r,) = doc["runs"]
    assert r["N"] == 64 and len(r["step_ms_all"]) == 1 and doc["steps"] == TINY.steps
    doc = run_bench(["--config", "tiny", "-n", "32,64", "--time-limit", "0"], "skip.json")
    assert [(r["N"], r.get("skipped")) for r in doc["runs"]] == [(32, True), (64, True)]
    assert all("time-limit" in r["error"] for r in doc["runs"])
    # fp16 matmuls do not exist on this CPU torch: the failure is recorded, the run goes on
    if not _cpu_has_fp16_matmul():
        doc = run_bench(["--config", "tiny", "-n", "32", "--dtype", "fp16"], "fp16.json")
        (r,) = doc["runs"]
        assert r["error"] and "step_ms_median" not in r


def _cpu_has_fp16_matmul():
    try:
        torch.ones(2, 2, dtype=torch.float16) @ torch.ones(2, 2, dtype=torch.float16)
        return True
    except RuntimeError:
        return False


# ------------------------------------------------------------------ the table

def write(path, obj_or_text):
    with open(path, "w") as f:
        f.write(obj_or_text if isinstance(obj_or_text, str) else json.dumps(obj_or_text))


@check
def table_from_fake_files():
    d = os.path.join(TMP, "table")
    os.makedirs(d)
    write(os.path.join(d, "drdiff.json"), {
        "device": "GPU X", "driver": "1.2", "runs": [
            {"N": 1024, "step_ms_median": 10.0, "flops_per_step": 5e11, "tflops": 50.0,
             "device_bytes": 2 * 2**30, "step_ms_sas": 12.0},
            {"N": 4096, "step_ms_median": 30.0, "flops_per_step": 2e12},
            {"N": 65536, "error": "out of device memory"}]})
    # torch.json cut off by a kill, after a log line: only complete objects count
    torch_doc = {"device": "GPU X", "torch": "2.11", "dtype": "fp16", "runs": [
        {"N": 1024, "mode": "eager", "step_ms_median": 20.0, "flops_per_step": 5e11,
         "tflops": 25.0, "peak_mem_bytes": 3 * 2**30, "step_ms_all": [19.0, 20.0, 30.0, 21.0, 26.0],
         "step_sas": [False, False, True, False, True]},
        {"N": 1024, "mode": "compile", "step_ms_median": 8.0, "flops_per_step": 5e11,
         "tflops": 62.5, "peak_mem_bytes": 2**30},
        {"N": 4096, "mode": "eager", "step_ms_median": 90.0, "flops_per_step": 2e12},
        {"N": 4096, "mode": "compile", "error": "BackendCompilerFailed: boom\nmore"},
        {"N": 16384, "mode": "eager", "skipped": True, "error": "skipped: --time-limit"}]}
    write(os.path.join(d, "torch.json"), "warming up\n" + json.dumps(torch_doc) + "\n{\"runs\": [")
    # no drdiff-scalar.json at all
    text = bench_table.table(bench_table.load(os.path.join(d, "drdiff.json")),
                             bench_table.load(os.path.join(d, "drdiff-scalar.json")),
                             bench_table.load(os.path.join(d, "torch.json")))
    main_text, _, sas_text = text.partition("Steps with SAS absorption")

    def parse(t):
        return {int(l.split("|")[1]): [c.strip() for c in l.split("|")[2:-1]]
                for l in t.splitlines() if l.startswith("| ") and l.split("|")[1].strip().isdigit()}
    rows, sas_rows = parse(main_text), parse(sas_text)
    # SAS steps: ours 12, no scalar, eager the median of 30 and 26, no compiled SAS data
    assert sas_rows == {1024: ["12.00", "-", "28.00", "-", "0.43", "-"]}, sas_text
    assert sorted(rows) == [1024, 4096, 16384, 65536], text
    # ours, scalar, eager, compiled ms; ours/eager, ours/compiled; TFLOP/s x4; MiB x3
    assert rows[1024] == ["10.00", "-", "20.00", "8.00", "0.50", "1.25", "50.0", "-", "25.0",
                          "62.5", "2048", "3072", "1024"], rows[1024]
    assert rows[4096][:7] == ["30.00", "-", "90.00", "-", "0.33", "-", "66.7"], rows[4096]
    assert set(rows[16384]) == {"-"} and set(rows[65536]) == {"-"}
    assert "ours scalar: no results" in text
    assert "N=4096 compiled: BackendCompilerFailed: boom" in text
    assert "N=65536 ours: out of device memory" in text
    # the command line, on the same folder and on an empty one
    for folder in (d, os.path.join(TMP, "empty")):
        p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "bench_table.py"),
                            folder], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert "| N |" in p.stdout


def main():
    return run_checks(CHECKS, TMP)


if __name__ == "__main__":
    sys.exit(main())
