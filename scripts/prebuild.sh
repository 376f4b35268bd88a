#!/usr/bin/env bash
# prebuild.sh (`npm run prebuild`, run by `npm pack` / `npm publish` through prepack): builds the
# prebuilt addons shipped in the tarball, prebuilds/linux-x64/lowbit.node (natively),
# prebuilds/linux-arm64/lowbit.node and prebuilds/linux-arm/lowbit.node (armv7l, scalar kernels) with
# Debian's cross compilers, N-API 8 so one binary serves every Node >= 20. What each needs of glibc and libstdc++ is printed from its versioned symbols
# (objdump -T). Linking libstdc++ statically was tried and raised glibc from 2.32 to 2.36 (Debian
# 12's libstdc++.a calls arc4random, _dl_find_object), so it stays dynamic: GLIBCXX_3.4.30, GCC 12's.
# Needs a linux-x64 host with cmake, g++, g++-aarch64-linux-gnu, libc6-dev-arm64-cross,
# g++-arm-linux-gnueabihf and libc6-dev-armhf-cross.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]]; then
  echo "prebuild: builds on linux-x64 hosts only (this is $(uname -s)-$(uname -m))" >&2
  exit 1
fi
for triple in aarch64-linux-gnu:arm64 arm-linux-gnueabihf:armhf; do
  if ! command -v "${triple%:*}-g++" >/dev/null; then
    echo "prebuild: ${triple%:*}-g++ not found; apt-get install g++-${triple%:*} libc6-dev-${triple#*:}-cross" >&2
    exit 1
  fi
done

rm -rf prebuilds
# build <platform-arch> <build folder> <strip> [cmake-js options]. The x64 one is the repository's own
# build/ (the same Release build `npm install` made, so packing after it compiles nothing new).
build() {
  npx cmake-js compile --parallel 2 --out "$2" "${@:4}"
  mkdir -p "prebuilds/$1"
  "$3" --strip-unneeded -o "prebuilds/$1/lowbit.node" "$2/Release/lowbit.node"
  local symbols
  symbols=$(objdump -T "prebuilds/$1/lowbit.node")
  echo "prebuild: prebuilds/$1/lowbit.node, $(stat -c %s "prebuilds/$1/lowbit.node") bytes, needs" \
    "$(grep -o 'GLIBC_[0-9.]*' <<<"$symbols" | sort -Vu | tail -1)" \
    "$(grep -o 'GLIBCXX_[0-9.]*' <<<"$symbols" | sort -Vu | tail -1)"
}
build linux-x64 build strip
build linux-arm64 build-prebuild-arm64 aarch64-linux-gnu-strip \
  --arch arm64 --CDCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
build linux-arm build-prebuild-arm arm-linux-gnueabihf-strip \
  --arch arm --CDCMAKE_TOOLCHAIN_FILE=cmake/arm-linux-gnueabihf.cmake
