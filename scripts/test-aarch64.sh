#!/usr/bin/env bash
# test-aarch64.sh: cross-compiles the native tests for aarch64 and runs them under qemu twice:
#   1. -cpu cortex-a72 (Raspberry Pi 4): no dot product, so the plain NEON integer kernels;
#   2. a CPU with the ARMv8.2 dot product (cortex-a76, the Pi 5; else neoverse-n1 or max), so
#      HWCAP_ASIMDDP is set and the sdot kernels (neon_dot) are tested and selected too.
# Fails when either run fails; both runs print their "N passed, M failed" line, the last run's last.
# Exit 77 when the cross tools are missing; extra arguments go to the test binary (a name filter).
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in aarch64-linux-gnu-g++ qemu-aarch64; do
  if ! command -v "$tool" >/dev/null; then
    echo "test-aarch64: $tool not found; install the Debian packages g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user" >&2
    exit 77
  fi
done

# The CPU models this qemu offers, one name a line ("  cortex-a72" under "Available CPUs:").
# qemu-aarch64 7.2 exits 1 after printing the list, hence the || true.
qemu_cpus=$({ qemu-aarch64 -cpu help || true; } | awk 'NR > 1 && NF { print $1 }')
has_cpu() { grep -qx -- "$1" <<<"$qemu_cpus"; }

base_cpu=cortex-a72
if ! has_cpu "$base_cpu"; then
  echo "test-aarch64: qemu-aarch64 has no -cpu $base_cpu" >&2
  exit 77
fi
dot_cpu=
for cpu in cortex-a76 neoverse-n1 max; do
  if has_cpu "$cpu"; then
    dot_cpu=$cpu
    break
  fi
done
if [[ -z "$dot_cpu" ]]; then
  echo "test-aarch64: qemu-aarch64 has no CPU model with the dot product (cortex-a76, neoverse-n1, max)" >&2
  exit 77
fi

cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
  -DLOWBIT_NATIVE_TESTS=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-aarch64 --target lowbit_native_tests -j "$(nproc)"

# Runs the tests on one CPU model; nothing is printed after the binary's summary line.
run_on() {
  echo "test-aarch64: qemu-aarch64 -cpu $1 ($2)"
  qemu-aarch64 -cpu "$1" -L /usr/aarch64-linux-gnu build-aarch64/lowbit_native_tests "${@:3}"
}

status=0
run_on "$base_cpu" "no dot product: plain NEON kernels" "$@" || status=$?
if [[ $status -ne 0 ]]; then
  echo "test-aarch64: the -cpu $base_cpu run failed (exit $status); running -cpu $dot_cpu as well" >&2
fi
dot_status=0
run_on "$dot_cpu" "dot product: sdot kernels" "$@" || dot_status=$?
if [[ $status -eq 0 ]]; then status=$dot_status; fi
exit "$status"
