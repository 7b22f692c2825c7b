#!/usr/bin/env bash
# Builds build-gpu/ here for scripts/gpu-machine.sh on the lent GPU machine (which has no
# glslc and no network): a Release build with the cooperative-matrix shaders, Debian 13's
# validation layer (gzipped) and Vulkan loader in build-gpu/vklayer/, object files and
# archives removed and binaries stripped so that the carried tree stays under the device
# tool's 64 MiB. Needs scripts/fetch-debian13-tools.sh's .deps/debian13 (install-deps.sh).
# PREV=<git revision> also builds that revision's drdiff (a temporary worktree) into
# build-gpu/drdiff-prev, for gpu-machine.sh's `ab` section: before and after in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
D=.deps/debian13/root
B=build-gpu
cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build $B -j"$(nproc)" >/dev/null
mkdir -p $B/vklayer
cp -L $D/usr/lib/x86_64-linux-gnu/libvulkan.so.1 $B/vklayer/
gzip -9c $D/usr/lib/x86_64-linux-gnu/libVkLayer_khronos_validation.so > $B/vklayer/libVkLayer_khronos_validation.so.gz
sed 's#"library_path": "[^"]*"#"library_path": "./libVkLayer_khronos_validation.so"#' \
  $D/usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json > $B/vklayer/VkLayer_khronos_validation.json
# zstd for scripts/nv_sass.py (gpu-machine.sh's isa section): the lent machines have none
cp /usr/bin/zstd $B/zstd 2>/dev/null || true
find $B -name '*.o' -delete
find $B -name '*.a' -delete
if [ -n "${PREV:-}" ]; then
  wt=$(mktemp -d /tmp/drdiff-prev.XXXXXX)
  git worktree add -q --detach "$wt" "$PREV"
  ln -s "$PWD/.deps" "$wt/.deps"
  cmake -S "$wt" -B "$wt/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$wt/build" -j"$(nproc)" --target drdiff >/dev/null
  cp "$wt/build/drdiff" $B/drdiff-prev
  git rev-parse --short "$PREV" > $B/drdiff-prev.rev
  git worktree remove --force "$wt"
fi
strip $B/drdiff $B/drdiff-prev $B/tests/test_* $B/tests/tool_* 2>/dev/null || true
du -sh $B
