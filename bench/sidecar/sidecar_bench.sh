#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The sidecar comparison itself; bench/run_sidecar_bench.sh builds the binaries and runs this in a
# session of its own. Same workload, same machine, same run, one data plane after the other per
# load (so drift spreads over all of them):
#   no_mesh   client -> server
#   sockmesh  client -> VIP (connect hook) -> server; client and server in mesh workload cgroups
#   haproxy   client -> client-side haproxy -> server-side haproxy -> server (Istio topology)
#   nginx     the same with nginx
#   envoy     the same with envoy, only when `envoy` is on PATH
# Each plane has its own server processes (sockmesh-echo for HTTP, /bytes/N picks the response
# size; sockmesh-product for gRPC) on its own 127.90.0.<i>, so no plane's sockets run another's
# programs; no_mesh and sockmesh get new ones every round (restart_servers). Every load is
# sockmesh-loadgen; results go as JSON lines to $work/results.jsonl and report.py turns them into
# REPORT.md and the charts.
set -euo pipefail

usage() {
  cat <<USAGE
Usage: sidecar_bench.sh --bin BUILD_DIR --out DIR [options]
  --quick             about a minute: one rate, 1 s loads, at most 5,000 held connections
  --seconds S         seconds per fixed-rate load (default 2.5; --quick 1); closed-loop loads
                      run twice as long, at most 6 s
  --rounds R          fixed-rate rounds: every plane runs every fixed-rate load R times,
                      interleaved, and the report takes percentiles over all the rounds'
                      requests (default 8; --quick 2)
  --paired-rounds P   after those, P rounds of every fixed-rate load on no_mesh and sockmesh
                      only (default 24; --quick 1): sockmesh's difference from no mesh is a
                      few microseconds, which takes more rounds to resolve than a sidecar
                      pair's hundreds; the report's latency targets use every round's
                      sockmesh - no_mesh difference
  --rates R1,R2,...   HTTP fixed rates in requests/s (default 500,1000,2000; --quick 300)
  --hold-max N        idle connections to open at most, per plane (default 100000; --quick 5000)
  --hold-seconds S    time limit for opening them, per plane (default 60; --quick 5)
  --nice N            nice value of everything the benchmark starts (default -20)
  --keep-work         keep the work directory (configs, logs, raw results)
USAGE
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=""
out=""
quick=0
seconds=""
rounds=""
paired_rounds=""
rates=""
hold_max=""
hold_seconds=""
nice_value=-20
keep_work=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --seconds) seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --paired-rounds) paired_rounds=$2; shift 2 ;;
    --rates) rates=$2; shift 2 ;;
    --hold-max) hold_max=$2; shift 2 ;;
    --hold-seconds) hold_seconds=$2; shift 2 ;;
    --nice) nice_value=$2; shift 2 ;;
    --keep-work) keep_work=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "sidecar_bench: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
[[ -n $bin && -n $out ]] || { usage >&2; exit 2; }
if [[ $quick -eq 1 ]]; then
  seconds=${seconds:-1} rounds=${rounds:-2} paired_rounds=${paired_rounds:-1} rates=${rates:-300}
  hold_max=${hold_max:-5000}
  hold_seconds=${hold_seconds:-5}
  closed_seconds=$seconds
else
  seconds=${seconds:-2.5} rounds=${rounds:-8} paired_rounds=${paired_rounds:-24}
  rates=${rates:-500,1000,2000}
  hold_max=${hold_max:-100000} hold_seconds=${hold_seconds:-60}
  closed_seconds=$(awk -v s="$seconds" 'BEGIN { print (2 * s > 6 ? 6 : 2 * s) }')
fi
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "sidecar_bench: --rounds must be a positive integer, got '$rounds'" >&2; exit 2; }
[[ $paired_rounds =~ ^[0-9]+$ ]] || { echo "sidecar_bench: --paired-rounds must be a non-negative integer, got '$paired_rounds'" >&2; exit 2; }
IFS=, read -r -a rate_list <<<"$rates"
[[ $(id -u) -eq 0 ]] || { echo "sidecar_bench: run as root (it loads BPF programs)" >&2; exit 1; }

agent=$bin/userspace/agent/sockmesh-agent
ctl=$bin/userspace/ctl/sockmeshctl
loadgen=$bin/services/sockmesh-loadgen
echo_server=$bin/services/echo/sockmesh-echo
product=$bin/services/sockmesh-product
for tool in "$agent" "$ctl" "$loadgen" "$echo_server" "$product"; do
  [[ -x $tool ]] || { echo "sidecar_bench: $tool is not built" >&2; exit 1; }
done
for tool in haproxy:haproxy nginx:nginx python3:python3 gnuplot:gnuplot-nox; do
  command -v "${tool%%:*}" >/dev/null ||
    { echo "sidecar_bench: ${tool%%:*} not found (Debian package ${tool#*:}; scripts/install-deps.sh installs it)" >&2; exit 1; }
done

# Priority: the benchmark competes with whatever else runs on the machine. Our own autogroup
# (run_sidecar_bench.sh started us with setsid) and this shell, which everything inherits.
# The autogroup only when we lead our own session: otherwise it is the caller's.
renice -n "$nice_value" -p $$ >/dev/null
if [[ $(ps -o sid= -p $$ | tr -d ' ') == "$$" && -w /proc/self/autogroup ]]; then
  echo "$nice_value" >/proc/self/autogroup 2>/dev/null || true
fi

# --- Addresses: 127.90.0.0/16 and the VIP 127.10.90.1 are used by nothing else in the repo. ---
planes=(no_mesh sockmesh haproxy nginx)
have_envoy=0
if command -v envoy >/dev/null; then
  planes+=(envoy)
  have_envoy=1
else
  echo "sidecar_bench: envoy is not on PATH: the envoy plane is skipped (no Debian package)"
fi
declare -A server_addr=([no_mesh]=127.90.0.1 [sockmesh]=127.90.0.2 [haproxy]=127.90.0.3
                        [nginx]=127.90.0.4 [envoy]=127.90.0.5)
# Sidecar planes: the client-side proxy at 127.90.<2k-1>.1, the server-side one at 127.90.<2k>.1.
declare -A client_proxy=([haproxy]=127.90.1.1 [nginx]=127.90.3.1 [envoy]=127.90.5.1)
declare -A server_proxy=([haproxy]=127.90.2.1 [nginx]=127.90.4.1 [envoy]=127.90.6.1)
vip=127.10.90.1
metrics_addr=127.90.0.100:9466
# Idle-connection clients leave from these, 28k ephemeral ports each.
hold_sources=127.90.10.1,127.90.10.2,127.90.10.3,127.90.10.4,127.90.10.5
declare -A http_target=([no_mesh]=${server_addr[no_mesh]}:8080 [sockmesh]=$vip:80
                        [haproxy]=${client_proxy[haproxy]}:8080 [nginx]=${client_proxy[nginx]}:8080
                        [envoy]=${client_proxy[envoy]}:8080)
declare -A grpc_target=([no_mesh]=${server_addr[no_mesh]}:7002 [sockmesh]=$vip:81
                        [haproxy]=${client_proxy[haproxy]}:7002 [nginx]=${client_proxy[nginx]}:7002
                        [envoy]=${client_proxy[envoy]}:7002)

cg_mount=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[[ -n $cg_mount ]] || { echo "sidecar_bench: no cgroup v2 mount in /proc/mounts" >&2; exit 1; }
cgroup=$cg_mount/sockmesh-sidecar-bench-$$
instance=sidecar-bench-$$
work=$(mktemp -d /tmp/sockmesh-sidecar-bench.XXXXXX)
results=$work/results.jsonl
: >"$results"
pids=()
declare -A plane_pids=()  # plane role -> pids, for RSS

remove_cgroups() {
  local dir
  for dir in "$cgroup"/*/*/ "$cgroup"/*/; do
    if [[ -d $dir ]]; then rmdir "$dir" 2>/dev/null || true; fi
  done
  if [[ -d $cgroup ]]; then rmdir "$cgroup" 2>/dev/null || true; fi
}

cleanup() {
  local status=$? pid
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  "$agent" --cleanup --instance "$instance" >/dev/null 2>&1 || true
  remove_cgroups
  if [[ -d $cgroup ]]; then echo "sidecar_bench: could not remove $cgroup" >&2; fi
  # A failure keeps the logs to look at; Ctrl-C (130) and success leave nothing.
  if [[ $keep_work -eq 1 || ($status -ne 0 && $status -ne 130) ]]; then
    echo "sidecar_bench: work directory kept: $work"
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[sidecar-bench] $*"; }

wait_for() {  # wait_for WHAT PID COMMAND...: until COMMAND succeeds, for at most 10 s
  local what=$1 pid=$2
  shift 2
  for _ in $(seq 1 100); do
    "$@" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || { echo "sidecar_bench: $what exited" >&2; return 1; }
    sleep 0.1
  done
  echo "sidecar_bench: $what did not come up in 10 s" >&2
  return 1
}

# Descriptors: servers and proxies hold one per idle connection. Raise the hard limit if we may
# (CAP_SYS_RESOURCE), then the soft one to it; for this shell and what it starts only. A process
# can then hold at most that many connections: when that is under --hold-max, the idle-connection
# test spreads them over several client processes (hold_connections.py) and several server
# processes sharing the server's address (SO_REUSEPORT), and the report says so; a proxy is one
# process (nginx: one per worker), as a sidecar is.
ulimit -Hn 1048576 2>/dev/null || true
ulimit -Sn "$(ulimit -Hn)"
fd_limit=$(ulimit -Hn)
hold_servers=$(((hold_max + fd_limit - 501) / (fd_limit - 500) + 1))
if ((hold_servers > 2)); then
  echo "sidecar_bench: RLIMIT_NOFILE is $fd_limit (raising it needs CAP_SYS_RESOURCE): the $hold_max idle connections are held by several processes on each side ($hold_servers servers per plane)"
fi
# A proxy holds one descriptor per idle client connection (upstream connections are pooled).
proxy_maxconn=$((fd_limit - 200))
# HAProxy reserves two descriptors per connection of its maxconn, and refuses to start otherwise.
haproxy_maxconn=$(((fd_limit - 300) / 2))

# Command prefixes that run a command in the mesh workload cgroups bench/server and bench/client.
# Arrays, not a function: a backgrounded function is a subshell, and $! would name it, not the
# command.
in_mesh_server=("$ctl" exec --cgroup "$cgroup" --workload bench/server --)
in_mesh_client=("$ctl" exec --cgroup "$cgroup" --workload bench/client --)

# start_echo PLANE NAME: one more sockmesh-echo on the plane's :8080 (SO_REUSEPORT, so that the
# idle-connection test can add more), in the mesh workload cgroup for sockmesh; logs to
# $work/echo-NAME.log. A function, not a subshell: $! names the server afterwards.
start_echo() {
  local runner=()
  if [[ $1 == sockmesh ]]; then runner=("${in_mesh_server[@]}"); fi
  "${runner[@]}" "$echo_server" --name "$2" --listen "${server_addr[$1]}:8080" --reuse-port \
    >"$work/echo-$2.log" 2>&1 &
  pids+=($!)
}

start_servers() {  # start_servers PLANE: its sockmesh-echo (:8080) and sockmesh-product (:7002)
  local plane=$1 addr=${server_addr[$1]} runner=()
  if [[ $plane == sockmesh ]]; then runner=("${in_mesh_server[@]}"); fi
  start_echo "$plane" "$plane"
  plane_pids[server-$plane]="$! "
  wait_for "sockmesh-echo ($plane)" "$!" curl -sf --max-time 1 "http://$addr:8080/health"
  "${runner[@]}" "$product" --listen "$addr:7002" --health-listen "$addr:8002" \
    --log-level warning >"$work/product-$plane.log" 2>&1 &
  pids+=($!)
  plane_pids[server-$plane]+="$! "
  wait_for "sockmesh-product ($plane)" "$!" curl -sf --max-time 1 "http://$addr:8002/health"
}

render() {  # render TEMPLATE NAME LISTEN UPSTREAM > config
  sed -e "s|@WORK@|$work|g" -e "s|@NAME@|$2|g" -e "s|@LISTEN@|$3|g" -e "s|@UPSTREAM@|$4|g" \
    -e "s|@MAXCONN@|$proxy_maxconn|g" -e "s|@HAPROXY_MAXCONN@|$haproxy_maxconn|g" -e "s|@FD_LIMIT@|$fd_limit|g" "$1"
}

start_proxy() {  # start_proxy PLANE ROLE LISTEN UPSTREAM
  local plane=$1 role=$2 name=$1-$2 config
  case "$plane" in
    haproxy)
      config=$work/$name.cfg
      render "$here/haproxy.cfg.in" "$name" "$3" "$4" >"$config"
      haproxy -db -f "$config" >"$work/$name.log" 2>&1 &
      ;;
    nginx)
      config=$work/$name.conf
      mkdir -p "$work/$name.tmp"
      render "$here/nginx.conf.in" "$name" "$3" "$4" >"$config"
      nginx -p "$work" -e "$work/$name.error.log" -c "$config" >"$work/$name.log" 2>&1 &
      ;;
    envoy)
      config=$work/$name.yaml
      render "$here/envoy.yaml.in" "$name" "$3" "$4" >"$config"
      envoy -c "$config" --concurrency 2 --base-id "$((RANDOM % 1000 + 1000))" \
        >"$work/$name.log" 2>&1 &
      ;;
  esac
  pids+=($!)
  plane_pids[$name]=$!
  wait_for "$plane ($role)" "$!" bash -c "exec 3<>/dev/tcp/$3/8080" ||
    { cat "$work/$name.log" >&2; return 1; }
}

start_sidecars() {  # start_sidecars PLANE
  local plane=$1
  start_proxy "$plane" server "${server_proxy[$plane]}" "${server_addr[$plane]}"
  start_proxy "$plane" client "${client_proxy[$plane]}" "${server_proxy[$plane]}"
}

write_manifests() {
  mkdir -p "$work/manifests"
  cat >"$work/manifests/bench.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: bench-server, namespace: bench}
spec:
  clusterIP: $vip
  ports:
    - {name: http, port: 80, targetPort: http, protocol: TCP}
    - {name: grpc, port: 81, targetPort: grpc, protocol: TCP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: bench-server-1
  namespace: bench
  labels: {kubernetes.io/service-name: bench-server}
addressType: IPv4
endpoints:
  - addresses: ["${server_addr[sockmesh]}"]
ports:
  - {name: http, port: 8080, protocol: TCP}
  - {name: grpc, port: 7002, protocol: TCP}
YAML
}

start_agent() {
  write_manifests
  "$agent" --cleanup --instance "$instance" >/dev/null 2>&1 || true
  "$agent" --standalone --manifests "$work/manifests" --cgroup "$cgroup" --instance "$instance" \
    --metrics-addr "$metrics_addr" >"$work/agent.log" 2>&1 &
  pids+=($!)
  plane_pids[agent]=$!
  wait_for sockmesh-agent "$!" grep -q "sync:" "$work/agent.log" || { cat "$work/agent.log" >&2; return 1; }
}

# --- Measuring ---

cpu_busy_idle() {  # prints "busy total" jiffies of the whole machine (all CPUs, kernel included)
  awk '$1 == "cpu" { idle = $5 + $6; total = 0; for (i = 2; i <= 9; i++) total += $i
                     print total - idle, total; exit }' /proc/stat
}

own_cpu_ticks() {  # CPU ticks (user + system) of every process the benchmark started, the
  # children of those (nginx workers), and the ones already reaped (each sockmesh-loadgen run)
  local pid kid total
  total=$(awk '{ print $16 + $17 }' /proc/$$/stat)
  for pid in "${pids[@]}"; do
    for kid in "$pid" $(cat "/proc/$pid/task/"*/children 2>/dev/null); do
      total=$((total + $(awk '{ print $14 + $15 }' "/proc/$kid/stat" 2>/dev/null || echo 0)))
    done
  done
  echo "$total"
}

rss_kb() {  # rss_kb PID...: VmRSS summed over the PIDs and their children
  local pid all=() total=0 kb
  for pid in "$@"; do
    all+=("$pid")
    for kid in $(cat "/proc/$pid/task/"*/children 2>/dev/null); do all+=("$kid"); done
  done
  for pid in "${all[@]}"; do
    kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
    total=$((total + ${kb:-0}))
  done
  echo "$total"
}

client() {  # client PLANE COMMAND...: runs COMMAND as the plane's client (not backgrounded)
  local plane=$1 runner=()
  shift
  if [[ $plane == sockmesh ]]; then runner=("${in_mesh_client[@]}"); fi
  "${runner[@]}" "$@"
}

# run_load PLANE KIND LABEL LOADGEN-ARGS...: one sockmesh-loadgen run, a JSON line in results.
run_load() {
  local plane=$1 kind=$2 label=$3 before after json
  shift 3
  own_before=$(own_cpu_ticks)
  before=$(cpu_busy_idle)
  json=$(client "$plane" "$loadgen" -q -o json "$@" 2>>"$work/loadgen.log") ||
    { echo "sidecar_bench: sockmesh-loadgen failed on $plane ($label)" >&2; return 1; }
  after=$(cpu_busy_idle)
  own_after=$(own_cpu_ticks)
  python3 - "$plane" "$kind" "$label" "$before" "$after" "$(getconf CLK_TCK)" "$json" \
    "$own_before" "$own_after" "$round" >>"$results" <<'PY'
import json, sys
plane, kind, label, before, after, hz, raw, own0, own1, rnd = sys.argv[1:]
(b0, t0), (b1, t1) = (map(int, x.split()) for x in (before, after))
r = json.loads(raw)
seconds = r["elapsed_s"]
r.update(plane=plane, kind=kind, label=label, round=int(rnd),
         cpu_cores=(b1 - b0) / int(hz) / seconds if seconds else 0,
         own_cpu_cores=(int(own1) - int(own0)) / int(hz) / seconds if seconds else 0,
         cpu_busy_fraction=(b1 - b0) / (t1 - t0) if t1 > t0 else 0)
print(json.dumps(r))
PY
  tail -1 "$results" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
l = r["latency_ms"]
print("[sidecar-bench] r%d %-9s %-28s %8.0f req/s  p50 %.3f  p90 %.3f  p99 %.3f ms  errors %d  "
      "cpu %.2f cores (own %.2f)" % (r["round"], r["plane"], r["label"], r["achieved_rps"], l["p50"],
                                     l["p90"], l["p99"], r["errors"], r["cpu_cores"],
                                     r["own_cpu_cores"]))'
}

# start_hold_servers PLANE: the plane's extra sockmesh-echo processes on the same address (the
# first one's SO_REUSEPORT), so that the servers can hold --hold-max connections between them;
# their PIDs go into hold_server_pids.
hold_server_pids=()
start_hold_servers() {
  local plane=$1 i
  hold_server_pids=()
  for i in $(seq 2 "$hold_servers"); do
    start_echo "$plane" "$plane-$i"
    hold_server_pids+=($!)
    # Its own log, not /health: that could be answered by any server on the address.
    wait_for "sockmesh-echo $i ($plane, for the idle connections)" "$!" \
      grep -q "listening on" "$work/echo-$plane-$i.log"
  done
}

stop_pids() {  # stop_pids PID...: stops processes we started, and forgets their PIDs
  local pid kept=()
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    [[ " $* " == *" $pid "* ]] || kept+=("$pid")
  done
  pids=("${kept[@]}")
}

stop_hold_servers() {  # stops what start_hold_servers started
  stop_pids "${hold_server_pids[@]}"
  hold_server_pids=()
}

# hold PLANE: opens idle connections until failure / --hold-max / --hold-seconds, and records the
# count and the RSS of the plane's processes while they are held.
hold() {
  local plane=$1 line="" pid target=${http_target[$1]} rss_json runner=() servers
  if [[ $plane == sockmesh ]]; then runner=("${in_mesh_client[@]}"); fi
  start_hold_servers "$plane"
  servers=${plane_pids[server-$plane]}
  plane_pids[server-$plane]+="${hold_server_pids[*]} "
  "${runner[@]}" python3 "$here/hold_connections.py" --addr "$target" --sources "$hold_sources" \
    --max "$hold_max" --seconds "$hold_seconds" --hold 2 >"$work/hold-$plane.json" \
    2>>"$work/hold.log" &
  pid=$!
  pids+=("$pid")
  while kill -0 "$pid" 2>/dev/null; do
    line=$(head -1 "$work/hold-$plane.json" 2>/dev/null || true)
    [[ -n $line ]] && break
    sleep 0.2
  done
  rss_json=$(rss_snapshot "$plane")
  wait "$pid" || { echo "sidecar_bench: hold_connections failed on $plane" >&2; return 1; }
  line=$(head -1 "$work/hold-$plane.json")
  echo "{\"plane\":\"$plane\",\"kind\":\"hold\",\"result\":$line,\"rss_kb\":$rss_json}" >>"$results"
  log "$plane held $line"
  plane_pids[server-$plane]=$servers
  stop_hold_servers
  # Let the RSTs and the servers' closes settle before the next load.
  sleep 1
}

rss_snapshot() {  # rss_snapshot PLANE: JSON {role: kB} of the plane's processes now
  local plane=$1 parts=()
  parts+=("\"server\":$(rss_kb ${plane_pids[server-$plane]})")
  case "$plane" in
    sockmesh) parts+=("\"agent\":$(rss_kb "${plane_pids[agent]}")") ;;
    no_mesh) ;;
    *) parts+=("\"client_proxy\":$(rss_kb "${plane_pids[$plane-client]}")"
               "\"server_proxy\":$(rss_kb "${plane_pids[$plane-server]}")") ;;
  esac
  local IFS=,
  echo "{${parts[*]}}"
}

# --- Run ---

log "work directory $work; planes: ${planes[*]}; rates ${rates}/s; ${seconds} s per load, $rounds rounds + $paired_rounds paired"
start_agent
for plane in "${planes[@]}"; do start_servers "$plane"; done
for plane in "${planes[@]}"; do
  case "$plane" in haproxy|nginx|envoy) start_sidecars "$plane" ;; esac
done
# Every plane answers before anything is measured.
for plane in "${planes[@]}"; do
  client "$plane" curl -sf --max-time 2 -o /dev/null "http://${http_target[$plane]}/bytes/1024" ||
    { echo "sidecar_bench: $plane does not answer HTTP at ${http_target[$plane]}" >&2; exit 1; }
done
log "all planes answer; warming up"
for plane in "${planes[@]}"; do
  client "$plane" "$loadgen" -q --protocol http --addr "${http_target[$plane]}" --path /bytes/1024 \
    --rate 0 -c 4 --duration 0.5 >/dev/null 2>>"$work/loadgen.log"
done

python3 - "$(nproc)" "$(uname -r)" "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
  "$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)" "$(cut -d' ' -f1-3 /proc/loadavg)" \
  "$(haproxy -v 2>&1 | head -1)" "$(nginx -v 2>&1)" "$( ((have_envoy)) && envoy --version 2>&1 | tail -1)" \
  "$(git -C "$here/../.." rev-parse --short HEAD 2>/dev/null)$(git -C "$here/../.." diff --quiet HEAD 2>/dev/null || echo +dirty)" \
  "$quick" "$seconds" "$closed_seconds" "$rates" "$hold_max" "$hold_seconds" "$nice_value" \
  "$(python3 --version 2>&1)" "$fd_limit" "$rounds" "$paired_rounds" "$hold_servers" >>"$results" <<'PY'
import json, sys
a = sys.argv[1:]
print(json.dumps(dict(kind="machine", nproc=int(a[0]), kernel=a[1], cpu=a[2], mem_kb=int(a[3]),
                      loadavg_start=a[4], haproxy=a[5], nginx=a[6], envoy=a[7], commit=a[8],
                      quick=int(a[9]), seconds=float(a[10]), closed_seconds=float(a[11]),
                      rates=[int(x) for x in a[12].split(",")], hold_max=int(a[13]),
                      hold_seconds=float(a[14]), nice=int(a[15]), python=a[16],
                      fd_limit=int(a[17]), rounds=int(a[18]), paired_rounds=int(a[19]),
                      hold_servers=int(a[20]))))
PY

# Fixed-rate loads: a single run's p99 is a handful of requests, and on a shared 2-CPU machine
# it moves by tens of microseconds from one run to the next, more than the planes' differences.
# So every fixed-rate load runs --rounds times, each round going through every load and plane
# once (drift spreads over all of them), and each run keeps its latency histogram: the report
# merges a load's rounds and takes its percentiles over every request of every round. Each load
# of each round runs the planes in a shuffled order (seeded, so a rerun runs the same orders):
# in a fixed order every plane would always follow the same other one and inherit whatever that
# one left behind (a sidecar pair's 64 KB load leaves the most). Then --paired-rounds more rounds
# run no_mesh and sockmesh only: the report compares the two round by round (seconds apart), and
# a difference of a few microseconds in a tail that moves by tens needs many such pairs.
plane_order() {  # plane_order SEED PLANE...: the planes in an order shuffled with SEED
  local seed=$1
  shift
  printf '%s\n' "$@" | awk -v seed="$seed" '
    { p[NR] = $0 }
    END { srand(seed); for (i = NR; i > 1; i--) { j = int(rand() * i) + 1; t = p[i]; p[i] = p[j]; p[j] = t }
          for (i = 1; i <= NR; i++) print p[i] }'
}
grpc_rate=${rate_list[$((${#rate_list[@]} / 2))]}
# restart_servers PLANE: new server processes for the plane. Over a server's life, one identical
# server's p99 has led another's by a median of 6 to 10 µs (server_aa.sh): something a process
# keeps for its whole life (not identified), as large as what the latency target compares. So no_mesh and sockmesh get new servers every round,
# and the rounds sample that instead of keeping one draw of it. The sidecar planes keep theirs
# (their proxies hold pooled connections to them; they add hundreds of µs).
restart_servers() {
  # shellcheck disable=SC2086  # the PIDs are words
  stop_pids ${plane_pids[server-$1]}
  start_servers "$1"
}

fixed_rate_round() {  # fixed_rate_round PLANE...: every fixed-rate load of round $round
  local size rate plane round_planes
  for plane in no_mesh sockmesh; do restart_servers "$plane"; done
  for size in 1024 65536; do
    for rate in "${rate_list[@]}"; do
      mapfile -t round_planes < <(plane_order "$round$size$rate" "$@")
      for plane in "${round_planes[@]}"; do
        run_load "$plane" http_open "http ${size}B @${rate}/s" --protocol http \
          --addr "${http_target[$plane]}" --path "/bytes/$size" --rate "$rate" -c 32 \
          --duration "$seconds" --json-histogram
      done
    done
  done
  mapfile -t round_planes < <(plane_order "${round}0" "$@")
  for plane in "${round_planes[@]}"; do
    run_load "$plane" grpc_open "grpc get-product @${grpc_rate}/s" --protocol grpc \
      --call get-product --addr "${grpc_target[$plane]}" --connections 4 --rate "$grpc_rate" \
      -c 32 --duration "$seconds" --json-histogram
  done
}
for round in $(seq 1 "$rounds"); do
  log "fixed-rate round $round of $rounds"
  fixed_rate_round "${planes[@]}"
done
for round in $(seq $((rounds + 1)) $((rounds + paired_rounds))); do
  log "paired round $((round - rounds)) of $paired_rounds (no_mesh and sockmesh only)"
  fixed_rate_round no_mesh sockmesh
done
round=1
for size in 1024 65536; do
  for plane in "${planes[@]}"; do
    run_load "$plane" http_closed "http ${size}B max" --protocol http \
      --addr "${http_target[$plane]}" --path "/bytes/$size" --rate 0 -c 16 \
      --duration "$closed_seconds"
  done
done
for plane in "${planes[@]}"; do
  run_load "$plane" grpc_closed "grpc get-product max" --protocol grpc --call get-product \
    --addr "${grpc_target[$plane]}" --connections 4 --rate 0 -c 16 --duration "$closed_seconds"
done
for plane in "${planes[@]}"; do
  run_load "$plane" connect "http new connection/request" --protocol http \
    --addr "${http_target[$plane]}" --path /bytes/64 --connection-per-request --rate 0 -c 4 \
    --duration "$closed_seconds"
done
# Memory after the loads: steady state with the connections the loads left (idle pools).
for plane in "${planes[@]}"; do
  echo "{\"plane\":\"$plane\",\"kind\":\"rss\",\"rss_kb\":$(rss_snapshot "$plane")}" >>"$results"
done
for plane in "${planes[@]}"; do hold "$plane"; done
echo "{\"kind\":\"end\",\"loadavg_end\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >>"$results"

log "writing the report to $out"
mkdir -p "$out"
python3 "$here/report.py" --results "$results" --out "$out"
cp "$results" "$out/sidecar_results.jsonl"
log "done"
