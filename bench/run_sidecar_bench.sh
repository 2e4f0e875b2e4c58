#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# sockmesh against the sidecar model: builds what it needs, then runs bench/sidecar/sidecar_bench.sh
# (arguments are passed on) in a session of its own: about 35 minutes on a 2-CPU VM, about one with
# --quick. Writes bench/results/REPORT.md, the PNG charts, the raw results and sidecar_bench.txt
# (its output).
#   OUT_DIR  where the report goes (default bench/results)
# See bench/run_bench.sh for BUILD_DIR, JOBS and NOTE. Needs root, haproxy, nginx, gnuplot and
# python3 (scripts/install-deps.sh); binds fixed ports on 127.90.0.0/16 and 127.10.90.1.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/bench_session.sh
source "$root/bench/bench_session.sh"
out=${OUT_DIR:-$root/bench/results}

if [[ $(id -u) -ne 0 ]]; then
  echo "run_sidecar_bench: needs root (it attaches BPF programs to a throwaway cgroup)" >&2
  exit 1
fi
bench_build sockmesh-agent sockmeshctl sockmesh-loadgen sockmesh-echo sockmesh-product

mkdir -p "$out"
log=$out/sidecar_bench.txt.tmp
bench_header run_sidecar_bench.sh "$@" >"$log"
status=0
bench_run_in_session "$log" bash "$root/bench/sidecar/sidecar_bench.sh" --bin "$build" \
  --out "$out" "$@" || status=$?
if [[ $status -ne 0 ]]; then
  echo "run_sidecar_bench: exited with $status; partial output in $log" >&2
  exit "$status"
fi
mv "$log" "$out/sidecar_bench.txt"
echo "run_sidecar_bench: wrote $out/REPORT.md and the charts"
