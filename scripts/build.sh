#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Configures and builds sockmesh into build/ (or $SOCKMESH_BUILD_DIR). Extra arguments are passed to
# `cmake --build` (e.g. `--target sockmesh-agent`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SOCKMESH_BUILD_DIR:-$root/build}
echo "build: configuring $build"
mkdir -p "$build"
launcher=()
# ccache, when present, lets several checkouts share object files (paths made relative to /work-like
# parents through CCACHE_BASEDIR so two worktrees hit the same cache entries).
if command -v ccache > /dev/null; then
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(dirname "$root")}
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" > "$build/configure.log" 2>&1 ||
  { cat "$build/configure.log"; exit 1; }
echo "build: compiling with $(nproc) jobs"
cmake --build "$build" -j "$(nproc)" "$@"
