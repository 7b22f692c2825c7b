#!/usr/bin/env bash
# Makes .gl/ ready to carry to the lent NVIDIA machine for scripts/gpu-machine.sh: fetches it with
# ../shared/device/fetch-vulkan-loaders.sh where it is missing, adds glvnd's libraries (the NVIDIA
# ICD, libGLX_nvidia, needs them; without them vkCreateInstance fails with
# VK_ERROR_INCOMPATIBLE_DRIVER there, and that script does not fetch them), and drops lavapipe's
# Mesa, LLVM and Z3 packages, which the NVIDIA runs do not use and which would push .gl/ and
# build-gpu/ together past the device tool's 64 MiB. Needs the network (Debian's archive).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d .gl ] || bash ../shared/device/fetch-vulkan-loaders.sh > /dev/null
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
mkdir -p /tmp/amd64/partial
apt-get $o update > /dev/null
(cd .gl && apt-get $o download libglvnd0 libglx0 libgl1 libegl1 libopengl0 libgles2 libx11-6 libxcb1 libxau6 \
  libxdmcp6 libxext6 libbsd0 libmd0 > /dev/null 2>&1)
rm -f .gl/libllvm15_* .gl/libz3-4_* .gl/mesa-vulkan-drivers_*
du -sh .gl
