#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds sockmesh-connect-bench and runs it (defaults unless arguments are given, which are passed
# on), writing what it prints to bench/results/connect_bench.txt. Needs root and the packages from
# scripts/install-deps.sh. BUILD_DIR (default build-bench) and JOBS (default 2) pick the build.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
jobs=${JOBS:-2}
results=$root/bench/results
out=$results/connect_bench.txt

if [[ $(id -u) -ne 0 ]]; then
  echo "run_connect_bench: needs root (it attaches BPF programs to a throwaway cgroup)" >&2
  exit 1
fi

cmake -S "$root" -B "$build" -G Ninja >/dev/null
cmake --build "$build" --target sockmesh-connect-bench -j"$jobs"

mkdir -p "$results"
# Written beside the result and renamed only on success, so an interrupted run never replaces a
# good result (*.tmp is git-ignored).
tmp=$out.tmp
{
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ)  commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo '+dirty')"
  echo "# \$ sockmesh-connect-bench $*"
} >"$tmp"
status=0
"$build/bench/sockmesh-connect-bench" "$@" 2>&1 | tee -a "$tmp" || status=$?
if [[ $status -ne 0 ]]; then
  echo "run_connect_bench: benchmark exited with $status; partial output in $tmp" >&2
  exit "$status"
fi
mv "$tmp" "$out"
echo "run_connect_bench: wrote $out"
