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
# shellcheck source=bench/bench_session.sh
source "$root/bench/bench_session.sh"
results=$root/bench/results
out=$results/$name.txt

if [[ $(id -u) -ne 0 ]]; then
  echo "run_bench: $target needs root (it attaches BPF programs to a throwaway cgroup)" >&2
  exit 1
fi

bench_build "$target"

mkdir -p "$results"
# Written beside the result and renamed only on success, so an interrupted run never replaces a
# good result (*.tmp is git-ignored).
tmp=$out.tmp
bench_header "$target" "$@" >"$tmp"
status=0
bench_run_in_session "$tmp" "$build/bench/$target" "$@" || status=$?
if [[ $status -ne 0 ]]; then
  echo "run_bench: $target exited with $status; partial output in $tmp" >&2
  exit "$status"
fi
mv "$tmp" "$out"
echo "run_bench: wrote $out"
