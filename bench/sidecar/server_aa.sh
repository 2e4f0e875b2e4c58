#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A/A check behind sidecar_bench.sh's new servers every round: two identical plain sockmesh-echo
# servers (no BPF, no cgroup), the same open-loop loads on each in alternating order, round after
# round; then both are restarted and it runs again. Prints, per server incarnation, the median of
# server B's p50 / p99 minus server A's (µs) and how many rounds B's p99 was above. Identical
# servers should differ by noise only; a median that holds one sign for a whole incarnation is
# what the benchmark's restarts turn into noise. Loopback only (127.91.0.1 and 127.91.0.3:8080).
set -euo pipefail

usage() {
  cat <<USAGE
Usage: server_aa.sh --bin BUILD_DIR [--rounds R] [--incarnations K]
  --rounds R         rounds per incarnation, each one HTTP 1 KB @2000/s and one 64 KB @1000/s
                     load (2.5 s) on each server (default 12)
  --incarnations K   how many times both servers are started afresh (default 3)
About R x K x 12 s: 7 minutes by default.
USAGE
}
bin="" rounds=12 incarnations=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --incarnations) incarnations=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "server_aa: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
[[ -n $bin ]] || { usage >&2; exit 2; }
for n in "$rounds" "$incarnations"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "server_aa: counts must be positive integers, got '$n'" >&2; exit 2; }
done
loadgen=$bin/services/sockmesh-loadgen echo_server=$bin/services/echo/sockmesh-echo
for tool in "$loadgen" "$echo_server"; do
  [[ -x $tool ]] || { echo "server_aa: $tool is not built" >&2; exit 1; }
done

pids=()
out=$(mktemp /tmp/sockmesh-server-aa.XXXXXX)
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -f "$out"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

run() {  # run ADDR SIZE RATE: "p50 p99" in ms
  "$loadgen" -q -o json --protocol http --addr "$1" --path "/bytes/$2" --rate "$3" -c 32 \
    --duration 2.5 | python3 -c 'import json, sys; l = json.load(sys.stdin)["latency_ms"]; print(l["p50"], l["p99"])'
}
a=127.91.0.1:8080 b=127.91.0.3:8080
for inc in $(seq 1 "$incarnations"); do
  pids=()
  "$echo_server" --name a --listen "$a" >/dev/null 2>&1 &
  pids+=($!)
  "$echo_server" --name b --listen "$b" >/dev/null 2>&1 &
  pids+=($!)
  for addr in "$a" "$b"; do
    for _ in $(seq 1 50); do curl -sf --max-time 1 -o /dev/null "http://$addr/health" && break; sleep 0.1; done
    run "$addr" 1024 500 >/dev/null  # warm-up
  done
  for r in $(seq 1 "$rounds"); do
    for load in 1024:2000 65536:1000; do
      size=${load%:*} rate=${load#*:}
      if (((r + size) % 2)); then x=$(run "$a" "$size" "$rate"); y=$(run "$b" "$size" "$rate")
      else y=$(run "$b" "$size" "$rate"); x=$(run "$a" "$size" "$rate"); fi
      echo "$inc $x $y" >>"$out"
    done
    echo "[server-aa] incarnation $inc of $incarnations: round $r of $rounds"
  done
  for pid in "${pids[@]}"; do kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; done
  pids=()
done
python3 - "$out" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    inc, a50, a99, b50, b99 = line.split()
    runs.setdefault(inc, []).append(((float(b50) - float(a50)) * 1000,
                                     (float(b99) - float(a99)) * 1000))
for inc, d in runs.items():
    p99 = [x for _, x in d]
    print(f"incarnation {inc}: B - A p50 median {statistics.median(x for x, _ in d):+.1f} µs, "
          f"p99 median {statistics.median(p99):+.1f} µs, B's p99 above in "
          f"{sum(x > 0 for x in p99)} of {len(p99)} runs")
PY
