"""One denoiser evaluation x̂0 = f(x, u) with the PyTorch reference.

    python3 -m drdiff.forward -m FILE --input X.f32 --n N --u U --output OUT.f32

Input and output are raw little-endian float32 [N, de].
"""
import argparse

import numpy as np
import torch

from .model import load_model


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m drdiff.forward",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--u", type=float, required=True)
    ap.add_argument("--output", required=True)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    model, cfg, _ = load_model(a.model)
    x = np.fromfile(a.input, dtype="<f4")
    if x.size != a.n * cfg.de:
        raise SystemExit(f"{a.input} holds {x.size} floats, want N*de = {a.n * cfg.de}")
    with torch.no_grad():
        y = model(torch.from_numpy(x.reshape(a.n, cfg.de)), a.u)
    y.numpy().astype("<f4").tofile(a.output)


if __name__ == "__main__":
    main()
