#!/bin/sh
# DRDIFF_TEST_RUNNER for the aarch64 build (cmake/toolchain-aarch64-linux-gnu.cmake): runs an
# ARM program under qemu-user with Debian's ARM C library.
exec qemu-aarch64 -L /usr/aarch64-linux-gnu "$@"
