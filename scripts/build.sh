#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Configures and builds sockmesh into build/ (or $SOCKMESH_BUILD_DIR). Extra arguments are passed to
# `cmake --build` (e.g. `--target sockmesh-agent`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SOCKMESH_BUILD_DIR:-$root/build}
echo "build: configuring $build"
mkdir -p "$build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$build/configure.log" 2>&1 ||
  { cat "$build/configure.log"; exit 1; }
echo "build: compiling with $(nproc) jobs"
cmake --build "$build" -j "$(nproc)" "$@"
