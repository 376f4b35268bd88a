#!/usr/bin/env bash
# test-armv7.sh: cross-compiles the native tests for 32-bit Arm (armv7-a hard float, Raspberry Pi OS
# 32-bit) and runs them under qemu-arm as a Cortex-A7 (Pi 2). This target builds the scalar kernels
# only (the NEON files use AArch64 intrinsics), so the run checks that the scalar kernels, the
# operators and the model engine give the reference's results with a 32-bit size_t.
# Exit 77 when the cross tools are missing; extra arguments go to the test binary (a name filter).
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in arm-linux-gnueabihf-g++ qemu-arm; do
  if ! command -v "$tool" >/dev/null; then
    echo "test-armv7: $tool not found; install the Debian packages g++-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user" >&2
    exit 77
  fi
done

cmake -S . -B build-armv7 -DCMAKE_TOOLCHAIN_FILE=cmake/arm-linux-gnueabihf.cmake \
  -DLOWBIT_NATIVE_TESTS=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-armv7 --target lowbit_native_tests -j "$(nproc)"

echo "test-armv7: qemu-arm -cpu cortex-a7 (scalar kernels)"
exec qemu-arm -cpu cortex-a7 -L /usr/arm-linux-gnueabihf build-armv7/lowbit_native_tests "$@"
