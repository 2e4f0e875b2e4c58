#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Keeps bench/run_sidecar_bench.sh from rotting: runs its --quick mode with a tiny budget and
# checks that REPORT.md and the charts are written with every data plane in them (envoy only when
# it is on PATH, else the report says it was skipped), that no load had errors, and that nothing
# is left behind (cgroup, pins, processes on the benchmark's addresses).
# Needs root, the built binaries (SOCKMESH_BUILD_DIR) and haproxy, nginx, gnuplot, python3.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${SOCKMESH_BUILD_DIR:?SOCKMESH_BUILD_DIR is the build directory}
out=$(mktemp -d /tmp/sockmesh-sidecar-smoke.XXXXXX)
trap 'rm -rf "$out"' EXIT
fail() { echo "sidecar_bench_smoke: FAIL: $*" >&2; exit 1; }

planes=(no_mesh sockmesh haproxy nginx)
command -v envoy >/dev/null && planes+=(envoy)
run_bench() {
  rm -rf "${out:?}"/*
  timeout --signal=INT --kill-after=10 150 bash "$root/bench/sidecar/sidecar_bench.sh" \
    --bin "$build" --out "$out" --quick --seconds 0.5 --rates 200 --hold-max 300 --hold-seconds 3 \
    --rounds 2 --paired-rounds 1 ||
    fail "sidecar_bench.sh exited with $?"
}
check_results() {
  # Every load on every plane ran without errors, and every plane held idle connections.
  python3 - "$out/sidecar_results.jsonl" "${planes[@]}" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
planes = set(sys.argv[2:])
bad = [f"{r['plane']} {r['label']}: {r['errors']} errors {r['errors_by_kind']}"
       for r in rows if "errors" in r and (r["errors"] or r["ok"] == 0)]
seen = {r["plane"] for r in rows if "latency_ms" in r}
held = {r["plane"]: r["result"]["held"] for r in rows if r["kind"] == "hold"}
if seen != planes: bad.append(f"planes with loads {sorted(seen)}, expected {sorted(planes)}")
rounds = {}
for r in rows:
    if r.get("kind") in ("http_open", "grpc_open"):
        rounds.setdefault((r["plane"], r["label"]), []).append(r["round"])
# Two rounds of every plane, then a paired round of no_mesh and sockmesh only.
expected = lambda p: [1, 2, 3] if p in ("no_mesh", "sockmesh") else [1, 2]
bad += [f"{p} {l}: rounds {sorted(n)}, expected {expected(p)}" for (p, l), n in rounds.items()
        if sorted(n) != expected(p)]
# The report merges the rounds' histograms: each must count every request of its run.
bad += [f"{r['plane']} {r['label']} round {r['round']}: histogram counts "
        f"{sum(c for _, c in r.get('latency_histogram_ns', []))} of {r['requests']} requests"
        for r in rows if r.get("kind") in ("http_open", "grpc_open")
        and sum(c for _, c in r.get("latency_histogram_ns", [])) != r["requests"]]
bad += [f"{p} held {held.get(p, 0)} idle connections" for p in planes if held.get(p, 0) < 300]
print("\n".join(bad)); sys.exit(1 if bad else 0)
PY
}
run_bench
if ! check_results; then
  # Seen once in ~6 runs, only inside the full suite: every gRPC call of the no-mesh plane's
  # closed-loop load failed UNAVAILABLE (direct client -> server, no sockmesh involved). One more
  # run tells that flake from a script that rotted; a second failure fails the test.
  echo "sidecar_bench_smoke: a load failed (above); running the benchmark once more" >&2
  run_bench
  check_results || fail "results (see above), in two runs"
fi

report=$out/REPORT.md
[[ -s $report ]] || fail "no REPORT.md"
for plane in "${planes[@]}"; do
  grep -q "^| \`$plane\`" "$report" || fail "REPORT.md has no rows for $plane"
  grep -q "\`$plane\` p50 / p90 / p99" "$report" || fail "the latency table has no column for $plane"
done
grep -qF "p99 of each round" "$report" || fail "REPORT.md has no per-round p99 table"
grep -qF "latency histograms merged" "$report" ||
  fail "REPORT.md's latency figures are not taken over all the rounds' requests"
for section in "## Targets" "## Latency" "## Added latency, round by round" \
               "## Maximum throughput" "## CPU per 1,000" "## Memory" \
               "## Concurrent idle connections"; do
  grep -qF "$section" "$report" || fail "REPORT.md has no section '$section'"
done
for chart in latency_1kb latency_64kb latency_grpc cpu throughput memory; do
  [[ $(head -c 4 "$out/$chart.png" 2>/dev/null | od -An -tx1 | tr -d ' ') == 89504e47 ]] ||
    fail "$chart.png is missing or not a PNG"
done
cg_mount=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
compgen -G "$cg_mount/sockmesh-sidecar-bench-*" >/dev/null && fail "a benchmark cgroup is left"
compgen -G "/sys/fs/bpf/sockmesh/sidecar-bench-*" >/dev/null && fail "benchmark pins are left"
if ss -Htln | grep -qE '127\.90\.|127\.10\.90\.1:'; then fail "listeners left on 127.90.0.0/16"; fi
echo "sidecar_bench_smoke: ok ($(grep -c '^| ' "$report") table rows)"
