#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# sockmesh standalone on this machine: installs what is missing, builds, starts three echo backends
# and the agent with the manifests in deploy/examples/standalone, then sends requests to the
# service VIPs from inside the mesh cgroup and shows which backend answered. Everything it starts
# runs in a throwaway child cgroup and is stopped and cleaned up on exit (Ctrl-C or --duration).
set -euo pipefail

usage() {
  cat <<USAGE
Usage: scripts/demo.sh [--duration SECONDS] [--requests N] [--no-install]
  --duration SECONDS  keep sending one request per second this long after the first round
                      (default: until Ctrl-C on a terminal, 15 s otherwise; 0 = stop at once)
  --requests N        requests in the first round to each VIP (default 30)
  --no-install        skip scripts/install-deps.sh
USAGE
}

root=$(cd "$(dirname "$0")/.." && pwd)
duration=""
requests=30
install=1
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --no-install) install=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
if [ -z "$duration" ]; then
  if [ -t 0 ]; then duration=-1; else duration=15; fi
fi
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (it loads BPF programs)" >&2; exit 1; }

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

[ "$install" -eq 1 ] && bash "$root/scripts/install-deps.sh"
say "Building"
bash "$root/scripts/build.sh" --target sockmesh-agent sockmeshctl sockmesh-echo
bin=${SOCKMESH_BUILD_DIR:-$root/build}
agent=$bin/userspace/agent/sockmesh-agent
ctl=$bin/userspace/ctl/sockmeshctl
echo_bin=$bin/services/echo/sockmesh-echo

cg_mount=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[ -n "$cg_mount" ] || { echo "demo: no cgroup v2 mount in /proc/mounts" >&2; exit 1; }
cgroup=$cg_mount/sockmesh-demo
instance=demo
manifests=$root/deploy/examples/standalone
work=$(mktemp -d /tmp/sockmesh-demo.XXXXXX)
pids=()

cleanup() {
  trap - EXIT INT TERM
  say "Stopping and cleaning up"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  "$agent" --cleanup --instance "$instance" || true
  rmdir "$cgroup" 2>/dev/null || true
  echo "logs kept in $work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A previous run that was killed hard may have left its pins behind: they belong to this demo.
"$agent" --cleanup --instance "$instance" > /dev/null 2>&1 || true

say "Starting backends (outside the mesh: servers need no hook)"
for i in 11 12 13; do
  "$echo_bin" --name "echo-$i" --listen "127.0.0.$i:8080" --udp "127.0.0.$i:9000" \
    > "$work/echo-$i.log" 2>&1 &
  pids+=($!)
  echo "echo-$i on 127.0.0.$i:8080/TCP and 127.0.0.$i:9000/UDP (pid $!)"
done

say "Starting sockmesh-agent (standalone, manifests: deploy/examples/standalone)"
"$agent" --standalone --manifests "$manifests" --cgroup "$cgroup" --instance "$instance" \
  --metrics-addr 127.0.0.1:9464 > "$work/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  grep -q "sync:" "$work/agent.log" && break
  kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/agent.log"; exit 1; }
  sleep 0.1
done
cat "$work/agent.log"

say "Services as the kernel maps hold them (sockmeshctl services)"
"$ctl" services --instance "$instance"

in_mesh() { "$ctl" exec --cgroup "$cgroup" -- "$@"; }

round() {
  local vip=$1 n=$2
  say "$n HTTP requests to http://$vip/ from inside the mesh cgroup"
  in_mesh bash -c "for i in \$(seq 1 $n); do curl -s --max-time 2 http://$vip/; echo; done" |
    grep -o '"backend":"[^"]*"' | sort | uniq -c | sed 's/"backend":/  answered by /'
}
round 127.10.0.10 "$requests"
round 127.10.0.11 "$requests"
echo "(127.10.0.11 uses Maglev with ClientIP affinity: one client, one backend)"

say "UDP datagram to 127.10.0.10:9000 from inside the mesh cgroup"
# dd reads the datagram in one read(); bash's `read` would take one byte and lose the rest.
in_mesh bash -c 'exec 3<>/dev/udp/127.10.0.10/9000; echo hello >&3
  echo "  reply: $(timeout 2 dd bs=2048 count=1 status=none <&3)"'

say "What the application sees: curl connects to the VIP, not the backend"
in_mesh curl -sv --max-time 2 http://127.10.0.10/health 2>&1 | grep -E "Connected to|^\{" | sed 's/^/  /'

say "Outside the mesh cgroup the VIP is not balanced"
curl -s --max-time 2 http://127.10.0.10/ > /dev/null && echo "  unexpected answer" ||
  echo "  curl http://127.10.0.10/ -> refused (no hook outside the mesh cgroup)"

say "Kernel counters (sockmeshctl counters) and metrics"
"$ctl" counters --instance "$instance"
echo "Prometheus metrics: curl http://127.0.0.1:9464/metrics"
curl -s http://127.0.0.1:9464/metrics | grep -E '^sockmesh_(agent_services|agent_programs|datapath_events_total\{event="connect)' | sed 's/^/  /'

if [ "$duration" != 0 ]; then
  if [ "$duration" -lt 0 ]; then
    say "Sending one request per second; Ctrl-C stops and cleans up"
  else
    say "Sending one request per second for $duration s (try editing $manifests/echo.yaml)"
  fi
  start=$SECONDS
  while [ "$duration" -lt 0 ] || [ $((SECONDS - start)) -lt "$duration" ]; do
    reply=$(in_mesh curl -s --max-time 2 http://127.10.0.10/ || echo "request failed")
    echo "  $(date +%T) http://127.10.0.10/ -> $reply"
    sleep 1
  done
fi
