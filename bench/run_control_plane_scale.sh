#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds sockmesh-control-plane-scale and runs it (defaults unless arguments are given, which are
# passed on), writing what it prints to bench/results/control_plane_scale.txt. Needs no root: it
# only uses loopback with kernel-chosen ports. BUILD_DIR (default build-bench) and JOBS (default 2)
# pick the build; OUT replaces the results file.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
jobs=${JOBS:-2}
results=$root/bench/results
out=${OUT:-$results/control_plane_scale.txt}

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target sockmesh-control-plane-scale -j"$jobs"

mkdir -p "$(dirname "$out")"
# Written beside the result and renamed only on success, so an interrupted run never replaces a
# good result (*.tmp is git-ignored).
tmp=$out.tmp
{
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ)  commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo '+dirty')"
  echo "# $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo) RAM, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# \$ sockmesh-control-plane-scale $*"
} >"$tmp"
status=0
"$build/bench/sockmesh-control-plane-scale" "$@" 2>&1 | tee -a "$tmp" || status=$?
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$tmp"
if [[ $status -ne 0 ]]; then
  echo "run_control_plane_scale: benchmark exited with $status; partial output in $tmp" >&2
  exit "$status"
fi
mv "$tmp" "$out"
echo "run_control_plane_scale: wrote $out"
