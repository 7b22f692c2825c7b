# Cross-build for 64-bit ARM Linux (the CPU of Android phones and ARM servers) with Debian's
# gcc-aarch64-linux-gnu; scripts/test.sh builds the CPU tests so and runs them under qemu-user
# (scripts/run-aarch64.sh), the only ARM machine CI has:
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
# BOTH: the Vulkan and volk headers are the build machine's (they do not depend on the CPU)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
# spv2c, a build-time tool, is built for ARM too: CMake starts it through this
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;/usr/aarch64-linux-gnu)
