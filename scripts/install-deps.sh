#!/usr/bin/env bash
# Installs the Debian 12 packages drdiff needs to build, run and test, and nothing else, then
# fetches the Debian 13 tools for the cooperative-matrix shaders into .deps/debian13
# (scripts/fetch-debian13-tools.sh; nothing of it is installed into the system).
# Idempotent: packages already present are skipped, so a second run asks apt nothing, and a
# complete .deps/debian13 is not fetched again. Uses sudo when not run as root.
set -euo pipefail

PACKAGES=(
  # build
  cmake make gcc pkg-config
  # Vulkan: headers, volk (the library loads Vulkan at run time), shader compiler + validator
  libvulkan-dev libvulkan-volk-dev glslc spirv-tools
  # run time: the loader, Mesa's CPU driver (lavapipe), validation layers for tests, vulkaninfo
  libvulkan1 mesa-vulkan-drivers vulkan-validationlayers vulkan-tools
  # the PyTorch reference and the parity tests
  python3 python3-numpy python3-torch
  # fuzzing and sanitizers (clang's libFuzzer and ASan/UBSan runtimes)
  clang libclang-rt-14-dev
  # the CPU tests built for ARM (aarch64) and run under emulation
  gcc-aarch64-linux-gnu qemu-user
  # fetch-debian13-tools.sh: signature check (apt accepts gpgv1 instead, so gpgv is not certain;
  # debian-archive-keyring is, as apt depends on it; Packages.xz is read by python3's lzma)
  gpgv
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present" >&2
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "install-deps: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

bash "$(dirname "$0")/fetch-debian13-tools.sh"
