#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds one benchmark and runs it, writing what it prints to bench/results/<name>.txt:
#   bench/run_bench.sh TARGET NAME [benchmark arguments...]
# The run_*_bench.sh scripts call it. Needs root and the packages from scripts/install-deps.sh.
# BUILD_DIR (default build-bench) and JOBS (default 2) pick the build; NOTE adds a "# note:" line
# to the result (say what else was running on the machine).
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: run_bench.sh TARGET NAME [arguments...]" >&2
  exit 2
fi
target=$1
name=$2
shift 2
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
jobs=${JOBS:-2}
results=$root/bench/results
out=$results/$name.txt

if [[ $(id -u) -ne 0 ]]; then
  echo "run_bench: $target needs root (it attaches BPF programs to a throwaway cgroup)" >&2
  exit 1
fi

cmake -S "$root" -B "$build" -G Ninja >/dev/null
cmake --build "$build" --target "$target" -j"$jobs"

mkdir -p "$results"
# Written beside the result and renamed only on success, so an interrupted run never replaces a
# good result (*.tmp is git-ignored).
tmp=$out.tmp
{
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ)  commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo '+dirty')"
  echo "# \$ $target $*"
  if [[ -n ${NOTE:-} ]]; then echo "# note: $NOTE"; fi
} >"$tmp"
# setsid: its own session, so that a benchmark that raises its priority can do so for its own
# autogroup (sched_autogroup_enabled) without touching the caller's. A new session does not get
# the terminal's Ctrl-C, so the trap passes SIGINT/SIGTERM on; the benchmark then stops and cleans
# up. tee ignores SIGINT so that it keeps recording the benchmark's last lines.
setsid "$build/bench/$target" "$@" > >(trap '' INT; exec tee -a "$tmp") 2>&1 &
pid=$!
trap 'kill -INT "$pid" 2>/dev/null || true' INT TERM
status=0
while true; do
  wait "$pid" && status=0 || status=$?
  # A trapped signal interrupts wait while the benchmark is still cleaning up: wait again.
  kill -0 "$pid" 2>/dev/null || break
done
trap - INT TERM
wait  # for tee
if [[ $status -ne 0 ]]; then
  echo "run_bench: $target exited with $status; partial output in $tmp" >&2
  exit "$status"
fi
mv "$tmp" "$out"
echo "run_bench: wrote $out"
