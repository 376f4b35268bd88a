#!/usr/bin/env bash
# test-aarch64.sh: cross-compiles the native tests for aarch64 and runs them under qemu as a Raspberry Pi 4 (Cortex-A72).
# Exit 77 when the cross tools are missing; extra arguments go to the test binary (a name filter).
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in aarch64-linux-gnu-g++ qemu-aarch64; do
  if ! command -v "$tool" >/dev/null; then
    echo "test-aarch64: $tool not found; install the Debian packages g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user" >&2
    exit 77
  fi
done

cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
  -DLOWBIT_NATIVE_TESTS=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-aarch64 --target lowbit_native_tests -j "$(nproc)"
qemu-aarch64 -cpu cortex-a72 -L /usr/aarch64-linux-gnu build-aarch64/lowbit_native_tests "$@"
