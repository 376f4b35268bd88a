#!/usr/bin/env bash
# The formatters: Prettier for the TypeScript and scripts, Debian's clang-format (14, bookworm) for
# the C++. `scripts/format.sh` rewrites the files; `scripts/format.sh --check` (npm run lint, the
# first step of npm test) only reports the files that differ, and fails.
set -euo pipefail
cd "$(dirname "$0")/.."

TS=('lib/**/*.ts' 'bench/**/*.ts' 'demo/**/*.ts' 'test/**/*.ts' 'test/**/*.mjs' 'tools/**/*.mjs' 'vitest.config.ts')
mapfile -t CPP < <(find native bindings \( -name '*.cc' -o -name '*.h' \) | sort)

if [[ "${1:-}" == --check ]]; then
  npx prettier --check --log-level warn "${TS[@]}"
  if command -v clang-format > /dev/null; then
    clang-format --dry-run --Werror "${CPP[@]}"
  elif [[ -n "${CI:-}" ]]; then
    echo "lint: clang-format not found (Debian: apt-get install clang-format)" >&2
    exit 1
  else
    echo "lint: clang-format not found, the C++ is not checked (Debian: apt-get install clang-format)" >&2
  fi
  echo "lint: every file is formatted"
else
  command -v clang-format > /dev/null || { echo "format: clang-format not found (Debian: apt-get install clang-format)" >&2; exit 1; }
  npx prettier --write --log-level warn "${TS[@]}"
  clang-format -i "${CPP[@]}"
fi
