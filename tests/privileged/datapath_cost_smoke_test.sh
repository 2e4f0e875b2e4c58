#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Keeps sockmesh-datapath-cost (bench/run_datapath_cost.sh) from rotting: a tiny run must print a
# cost row for each cgroup_skb program (one per direction, with runs on every load), the connect
# hook on the connection-per-request load, and a RESULT line per load, with no load errors; and it
# must leave the system's BPF statistics switch as it found it. Needs root and the built binary.
set -euo pipefail
build=${SOCKMESH_BUILD_DIR:?SOCKMESH_BUILD_DIR is the build directory}
fail() { echo "datapath_cost_smoke: FAIL: $*" >&2; exit 1; }

stats_before=$(cat /proc/sys/kernel/bpf_stats_enabled)
out=$(timeout 60 "$build/bench/sockmesh-datapath-cost" --rounds 1 --seconds 0.3 \
  --stats-seconds 0.3) || fail "exited with $?: $out"
echo "$out"
[[ $(cat /proc/sys/kernel/bpf_stats_enabled) == "$stats_before" ]] ||
  fail "kernel.bpf_stats_enabled changed"
for prog in sm_skb_egress sm_skb_ingress; do
  n=$(grep -cE "^  $prog +[1-9][0-9]* " <<<"$out" || true)
  [[ $n == 3 ]] || fail "$prog has a cost row with runs on $n of 3 loads"
done
grep -qE "^  sm_connect4 +[1-9]" <<<"$out" || fail "no cost row for sm_connect4"
for load in keepalive_rr conn_per_req bulk; do
  grep -qE "^RESULT $load ratio_mesh_to_no_hook=[0-9.]+ bpf_ns_per_[a-zA-Z]+=[0-9.]+$" <<<"$out" ||
    fail "no RESULT line for $load"
done
echo "datapath_cost_smoke: ok"
