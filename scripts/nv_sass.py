#!/usr/bin/env python3
"""Disassembles the NVIDIA machine code in one of drdiff's pipeline-cache files (a diagnostic).

usage: nv_sass.py CACHE_FILE ZSTD NVDISASM OUT_DIR

drdiff writes the driver's pipeline cache to $DRDIFF_CACHE_DIR/pipelines-<vendor>-<device>.bin
(runtime/vk_pipeline_cache.c). With NVIDIA's driver 580 that cache holds one zstd frame per
pipeline; each frame unpacks to a blob that starts with "NVDANVVMNVuc". What follows was
worked out from the blobs themselves (it is not documented anywhere): the u32 at 0x30 is the
offset T of a small table, the u32 at T - 0x10 the machine code's size, the u32 at T + 8 the
registers per invocation, and the code starts at T + 0x18. Anything past the last
instruction that nvdisasm rejects is cut off. For every pipeline this writes OUT_DIR/kNN-rREGS.sass
and prints the counts of the instructions that matter for the kernels' inner loops.
ZSTD is a zstd binary (gpu-build.sh carries Debian's), NVDISASM the CUDA toolkit's (the lent
machines have one under /usr/local/cuda*/bin). scripts/gpu-machine.sh's `isa` section runs it.
"""
import collections
import os
import re
import struct
import subprocess
import sys

MAGIC = re.escape(b"\x28\xb5\x2f\xfd")  # a zstd frame
WATCH = ("HMMA", "LDSM", "LDS", "STS", "LDG", "STG", "BAR", "ISETP", "IMAD", "SHFL", "MUFU")


def disassemble(nvdisasm, code, scratch):
    """nvdisasm's listing of code, cut before the first address it cannot decode."""
    for _ in range(8):
        with open(scratch, "wb") as f:
            f.write(code)
        r = subprocess.run([nvdisasm, "-b", "SM90", scratch], capture_output=True, text=True)
        bad = re.search(r"at address 0x([0-9a-fA-F]+)", r.stderr)
        if r.returncode == 0 or not bad or int(bad.group(1), 16) == 0:
            return r.stdout + r.stderr
        code = code[: int(bad.group(1), 16) // 16 * 16]
    return r.stdout + r.stderr


def opcodes(listing):
    ops = collections.Counter()
    for line in listing.splitlines():
        parts = line.split("*/")
        if len(parts) < 2 or not parts[1].strip():
            continue
        words = parts[1].split()
        op = words[1] if words[0].startswith("@") and len(words) > 1 else words[0]
        ops[op.split(".")[0].rstrip(";")] += 1
    return ops


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    cache, zstd, nvdisasm, out = sys.argv[1:]
    os.makedirs(out, exist_ok=True)
    data = open(cache, "rb").read()
    for k, m in enumerate(re.finditer(MAGIC, data)):
        # zstd stops at the end of the frame (its complaint about what follows is ignored)
        raw = subprocess.run([zstd, "-d", "-c"], input=data[m.start():], capture_output=True).stdout
        if not raw.startswith(b"NVDANVVMNVuc") or len(raw) < 0x40:
            print(f"pipeline {k}: not a blob this script knows")
            continue
        t = struct.unpack_from("<I", raw, 0x30)[0]
        size = struct.unpack_from("<I", raw, t - 0x10)[0]
        regs = struct.unpack_from("<I", raw, t + 8)[0]
        listing = disassemble(nvdisasm, raw[t + 0x18 : t + 0x18 + size], os.path.join(out, "code.bin"))
        with open(os.path.join(out, f"k{k:02d}-r{regs}.sass"), "w") as f:
            f.write(listing)
        ops = opcodes(listing)
        counts = " ".join(f"{op} {ops[op]}" for op in WATCH if ops[op])
        print(f"pipeline {k}: {regs} registers, {sum(ops.values())} instructions: {counts}")
    if os.path.exists(os.path.join(out, "code.bin")):
        os.remove(os.path.join(out, "code.bin"))


if __name__ == "__main__":
    main()
