"""Reads `drdiff generate --json` output on stdin and prints one summary line (for
scripts/gpu-machine.sh)."""
import json
import sys

d = json.loads(sys.stdin.read().strip().splitlines()[-1])
print(f"setup {d['seconds_setup']:.2f} s, {d['seconds_per_step'] * 1e3:.1f} ms/step, "
      f"total {d['seconds']:.2f} s, device {d['device_bytes'] / 2**20:.0f} MiB")
