#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The platform on sockmesh, in one command: installs what is missing, builds, starts throwaway
# PostgreSQL and Redis, the agent with the manifests in deploy/examples/platform, two replicas of
# each of the five services (each in its own workload cgroup, finding the others only through the
# service VIPs), then drives orders with sockmesh-loadgen and prints what sockmesh itself measured
# per service. Everything it starts is stopped and cleaned up on exit (Ctrl-C or --duration).
set -euo pipefail

usage() {
  cat <<USAGE
Usage: scripts/platform_demo.sh [--duration SECONDS] [--rate N] [--store postgres|memory]
                                [--no-install] [--keep-logs]
  --duration SECONDS  seconds of load (default 20; 0 = one short burst of 2 s)
  --rate N            orders per second the load generator places (default 200)
  --store KIND        postgres (default: PostgreSQL for users and orders, Redis for stock, both
                      throwaway instances reached through their VIPs) or memory (no databases)
  --no-install        skip scripts/install-deps.sh
  --keep-logs         keep the logs (services, agent, databases) in /tmp/sockmesh-platform-demo.*
                      instead of removing them with the rest on exit
USAGE
}

root=$(cd "$(dirname "$0")/.." && pwd)
duration=20
rate=200
store=postgres
install=1
keep_logs=0
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --store) store=$2; shift 2 ;;
    --store=*) store=${1#--store=}; shift ;;
    --no-install) install=0; shift ;;
    --keep-logs) keep_logs=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "platform_demo: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
case "$store" in
  postgres|memory) ;;
  *) echo "platform_demo: --store must be postgres or memory, not '$store'" >&2; exit 2 ;;
esac
[[ "$duration" =~ ^[0-9]+$ ]] || { echo "platform_demo: --duration must be whole seconds" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "platform_demo: run as root (it loads BPF programs)" >&2; exit 1; }

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

[ "$install" -eq 1 ] && bash "$root/scripts/install-deps.sh"
say "Building"
bash "$root/scripts/build.sh" --target sockmesh-agent sockmeshctl sockmesh-user sockmesh-product \
  sockmesh-inventory sockmesh-payment sockmesh-order sockmesh-loadgen
bin=${SOCKMESH_BUILD_DIR:-$root/build}
agent=$bin/userspace/agent/sockmesh-agent
ctl=$bin/userspace/ctl/sockmeshctl
loadgen=$bin/services/sockmesh-loadgen

cg_mount=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[ -n "$cg_mount" ] || { echo "platform_demo: no cgroup v2 mount in /proc/mounts" >&2; exit 1; }
cgroup=$cg_mount/sockmesh-platform-demo
instance=platform-demo
metrics=127.0.0.1:9465
manifests=$root/deploy/examples/platform
# Service i has VIP 127.10.20.<i> (gRPC :80, /health :8080) and replicas 127.0.20.<i>1 and
# 127.0.20.<i>2 (gRPC :700<i>, /health :800<i>), as deploy/examples/platform/*.yaml list them.
services=(user product inventory payment order)
postgres_addr=127.0.20.100
redis_addr=127.0.20.110
work=$(mktemp -d /tmp/sockmesh-platform-demo.XXXXXX)
pids=()
db_pids=()

# Workload cgroups (<mesh>/<namespace>/<name>) first: a cgroup with children cannot be removed.
remove_cgroups() {
  local dir
  for dir in "$cgroup"/*/*/ "$cgroup"/*/; do
    if [ -d "$dir" ]; then rmdir "$dir" 2>/dev/null || true; fi
  done
  rmdir "$cgroup" 2>/dev/null || true
}

stop_pids() {
  local signal=$1 pid
  shift
  for pid in "$@"; do kill "-$signal" "$pid" 2>/dev/null || true; done
  for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}

cleanup() {
  trap - EXIT INT TERM
  say "Stopping and cleaning up"
  stop_pids TERM "${pids[@]}"
  # SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for clients); Redis exits on both.
  stop_pids INT "${db_pids[@]}"
  "$agent" --cleanup --instance "$instance" || true
  remove_cgroups
  [ -d "$cgroup" ] && echo "platform_demo: could not remove $cgroup (processes left in it?)" >&2
  if [ "$keep_logs" -eq 1 ]; then
    rm -rf "$work/pg"
    echo "logs kept in $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A previous run that was killed hard may have left pins and empty cgroups: they belong to this demo.
"$agent" --cleanup --instance "$instance" > /dev/null 2>&1 || true
remove_cgroups

wait_for() {  # wait_for WHAT PID COMMAND...: until COMMAND succeeds, for at most 20 s
  local what=$1 pid=$2
  shift 2
  for _ in $(seq 1 200); do
    "$@" > /dev/null 2>&1 && return 0
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "platform_demo: $what exited" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "platform_demo: $what did not come up in 20 s" >&2
  return 1
}

start_databases() {
  say "Starting throwaway PostgreSQL ($postgres_addr:5432) and Redis ($redis_addr:6379)"
  local pg_bin
  pg_bin=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)
  [ -x "$pg_bin/initdb" ] || { echo "platform_demo: no PostgreSQL server (install postgresql)" >&2; exit 1; }
  command -v redis-server > /dev/null ||
    { echo "platform_demo: no redis-server (install redis-server)" >&2; exit 1; }
  # PostgreSQL refuses to run as root: the `postgres` account owns its directory.
  chmod 0711 "$work"  # postgres may pass through, not list
  mkdir -m 0700 "$work/pg"
  chown postgres:postgres "$work/pg"
  as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
  as_postgres "$pg_bin/initdb" -D "$work/pg/data" -U postgres -A trust -E UTF8 --no-sync \
    --no-locale > "$work/initdb.log" 2>&1 || { cat "$work/initdb.log"; exit 1; }
  # The services' connections leave from whichever 127.x the kernel picks: trust all of loopback.
  echo "host all all 127.0.0.0/8 trust" >> "$work/pg/data/pg_hba.conf"
  # The socket goes to the private directory, not /var/run/postgresql (a system cluster's).
  # setpriv itself, not the function: $! must be PostgreSQL's pid, not a subshell's.
  setpriv --reuid=postgres --regid=postgres --init-groups -- "$pg_bin/postgres" -D "$work/pg/data" -h "$postgres_addr" -p 5432 -k "$work/pg" \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off > "$work/postgres.log" 2>&1 &
  db_pids+=($!)
  wait_for PostgreSQL "${db_pids[-1]}" "$pg_bin/pg_isready" -q -h "$postgres_addr" -p 5432 ||
    { tail "$work/postgres.log"; exit 1; }
  echo "PostgreSQL $(basename "$(dirname "$pg_bin")") on $postgres_addr:5432 (pid ${db_pids[-1]})"
  redis-server --bind "$redis_addr" --port 6379 --save '' --appendonly no --dir "$work" \
    --daemonize no > "$work/redis.log" 2>&1 &
  db_pids+=($!)
  wait_for Redis "${db_pids[-1]}" bash -c "exec 3<>/dev/tcp/$redis_addr/6379" ||
    { tail "$work/redis.log"; exit 1; }
  echo "Redis on $redis_addr:6379 (pid ${db_pids[-1]})"
}

[ "$store" = postgres ] && start_databases

say "Starting sockmesh-agent (standalone, manifests: deploy/examples/platform)"
"$agent" --standalone --manifests "$manifests" --cgroup "$cgroup" --instance "$instance" \
  --metrics-addr "$metrics" > "$work/agent.log" 2>&1 &
pids+=($!)
wait_for sockmesh-agent "${pids[-1]}" grep -q "sync:" "$work/agent.log" ||
  { cat "$work/agent.log"; exit 1; }
cat "$work/agent.log"

# Every service finds the others (and the databases) only by VIP, as Kubernetes would tell it.
mesh_env=()
for i in 1 2 3 4 5; do
  name=${services[i - 1]^^}
  mesh_env+=("${name}_SERVICE_HOST=127.10.20.$i" "${name}_SERVICE_PORT=80")
done
mesh_env+=(POSTGRES_SERVICE_HOST=127.10.20.10 POSTGRES_SERVICE_PORT=5432)
mesh_env+=(REDIS_SERVICE_HOST=127.10.20.11 REDIS_SERVICE_PORT=6379)

store_flag() {
  case "$store:$1" in
    postgres:user|postgres:order) echo "--store=postgres" ;;
    postgres:inventory) echo "--store=redis" ;;
    *:user|*:order|*:inventory) echo "--store=memory" ;;
  esac
}

start_replica() {  # start_replica SERVICE_INDEX REPLICA
  local i=$1 r=$2 name=${services[$1 - 1]}
  local addr=127.0.20.$i$r
  # shellcheck disable=SC2046  # store_flag prints one word or nothing
  env "${mesh_env[@]}" "$ctl" exec --cgroup "$cgroup" --workload "shop/$name" -- \
    "$bin/services/sockmesh-$name" --listen "$addr:700$i" --health-listen "$addr:800$i" \
    $(store_flag "$name") > "$work/$name-$r.log" 2>&1 &
  pids+=($!)
  wait_for "$name-$r" "$!" curl -sf --max-time 1 "http://$addr:800$i/health" ||
    { cat "$work/$name-$r.log"; exit 1; }
  printf '  %-9s replica %s on %s:700%s (health :800%s), workload shop/%s, pid %s\n' \
    "$name" "$r" "$addr" "$i" "$i" "$name" "$!"
}

say "Starting two replicas of each service, each in workload cgroup shop/<service>"
# Replica 1 of all five first: it creates the database schema, which replica 2 then finds.
for r in 1 2; do
  for i in 1 2 3 4 5; do start_replica "$i" "$r"; done
done

in_mesh() { "$ctl" exec --cgroup "$cgroup" --workload shop/health-probe -- "$@"; }

say "Health through every VIP (from inside the mesh cgroup)"
for i in 1 2 3 4 5; do
  vip=127.10.20.$i:8080
  wait_for "http://$vip/health" "" in_mesh curl -sf --max-time 1 "http://$vip/health"
  printf '  %-9s http://%s/health -> %s\n' "${services[i - 1]}" "$vip" \
    "$(in_mesh curl -s --max-time 1 "http://$vip/health")"
done

load_seconds=$duration
[ "$duration" -eq 0 ] && load_seconds=2
say "Placing orders: sockmesh-loadgen --rate $rate --duration $load_seconds (workload shop/loadgen)"
# sockmeshctl top measures the same window from the kernel's per-service totals.
"$ctl" top --once --instance "$instance" --interval "$load_seconds" > "$work/top.txt" 2>&1 &
top_pid=$!
load_start=$SECONDS
pids+=("$top_pid")
env "${mesh_env[@]}" "$ctl" exec --cgroup "$cgroup" --workload shop/loadgen -- \
  "$loadgen" --call place-order --rate "$rate" --duration "$load_seconds" 2>&1 |
  (trap '' INT; exec tee "$work/loadgen.txt") || true  # on Ctrl-C, still shows the summary
# Ctrl-C stops the load generator, which prints its summary and exits normally, so bash does not
# act on the signal itself; the run ending early is the sign.
if [ $((SECONDS - load_start)) -lt "$load_seconds" ]; then
  echo "platform_demo: interrupted" >&2
  exit 130
fi
wait "$top_pid" 2>/dev/null || true

say "What sockmesh measured per destination service (sockmeshctl top, same $load_seconds s window)"
# The FRONTEND column says VIP:port; the name in front says which service that is.
awk 'BEGIN { split("user product inventory payment order", name, " ")
             name[10] = "postgres"; name[11] = "redis" }
     /^127\.10\.20\./ { split($1, a, "[.:]"); printf "%-10s %s\n", name[a[4]], $0; next }
     /^FRONTEND/ { printf "%-10s %s\n", "SERVICE", $0; next }
     { print }' "$work/top.txt"

say "Requests per source workload -> destination service (agent /metrics, totals)"
curl -s "http://$metrics/metrics" |
  awk -F'[{}]' '/^sockmesh_requests_total\{/ {
      src = ""; dst = ""
      n = split($2, labels, ",")
      for (k = 1; k <= n; k++) {
        split(labels[k], kv, "=")
        gsub(/"/, "", kv[2])
        if (kv[1] == "source_workload") src = kv[2]
        if (kv[1] == "destination_service") dst = kv[2]
      }
      total[src " -> " dst] += $3
    }
    END { for (k in total) printf "  %-32s %d\n", k, total[k] }' | sort
echo
echo "Scrape it yourself: curl http://$metrics/metrics  (sockmesh_requests_total,"
echo "sockmesh_request_duration_seconds, sockmesh_tcp_connections_failed_total by"
echo "destination_service and source_workload)"
echo "The load generator's own view, for comparison: its summary above"
