#!/usr/bin/env bash
# The README's main command: installs what is missing, builds, and runs the main job on the
# best Vulkan device present (lavapipe when there is no GPU): `drdiff info`, then a
# generation with the model shipped in models/ when there is one.
# Usage: scripts/main.sh [extra drdiff generate options]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
# without a usable device (a machine whose Vulkan driver is broken) info says so and generate
# falls back to the CPU engine
./build/drdiff info || echo "main: no usable Vulkan device; generating on the CPU" >&2
model=$(ls models/*.gguf 2>/dev/null | head -n 1 || true)
if [ -n "$model" ]; then
  # no options: a built-in prompt, so that the main command shows the model writing
  if [ $# -eq 0 ]; then set -- -p "The history of the city"; fi
  ./build/drdiff generate -m "$model" "$@"
else
  echo "main: no trained model in models/ yet; the training pipeline is in models/ (see models/README.md)" >&2
fi
