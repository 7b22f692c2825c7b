"""torch.matmul fp16 TFLOP/s for GEMM shapes, the yardstick of issue 5's "GEMM shapes of the
model reach at least 60 % of torch.matmul" (compare with tests/tool_bench_gemm on the same GPU).

    python3 -m drdiff.bench_matmul 16384x1024x1024 32768x2304x1024 ...   (M x N x K)

Each shape: C[M, N] = A[M, K] @ W[N, K]^T with random fp16 operands (never zeros), fp32
accumulation as cuBLAS does by default for fp16, 10 warm-up products, then the median of 50
CUDA-event timings; one JSON line per shape.
"""
import json
import sys

import torch


def bench(M, N, K, reps=50):
    a = torch.randn(M, K, device="cuda", dtype=torch.float16)
    w = torch.randn(N, K, device="cuda", dtype=torch.float16)
    for _ in range(10):
        c = a @ w.t()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        c = a @ w.t()
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e))
    del c
    ms = sorted(times)[len(times) // 2]
    return {"M": M, "N": N, "K": K, "ms": round(ms, 4), "tflops": round(2.0 * M * N * K / ms / 1e9, 1),
            "device": torch.cuda.get_device_name(), "torch": torch.__version__}


def main(argv):
    if not argv or not torch.cuda.is_available():
        print(__doc__ if not argv else "bench_matmul: no CUDA device", file=sys.stderr)
        return 2
    for spec in argv:
        M, N, K = (int(x) for x in spec.lower().split("x"))
        print(json.dumps(bench(M, N, K)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
