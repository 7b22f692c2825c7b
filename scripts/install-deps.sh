#!/usr/bin/env bash
# Installs the Debian 12 packages drdiff needs to build, run and test, and nothing else.
# Idempotent: packages already present are skipped, so a second run asks apt nothing.
# Uses sudo when not run as root.
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
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present" >&2
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
