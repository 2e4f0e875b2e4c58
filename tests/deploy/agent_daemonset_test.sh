#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the agent and the control plane with the command lines of deploy/manifests/sockmesh.yaml
# (and the uninstall render), so the manifests cannot drift from the binaries' real flags.
# Substituted, because no cluster runs here: the agent's --cgroup (a throwaway child cgroup
# instead of kubepods), --instance (a throwaway pin instance), --node-name, the control plane's
# address (127.0.0.1 instead of the Service name) and listen hosts (127.0.0.1 instead of 0.0.0.0,
# same ports), and the control plane's source (--manifests with the standalone demo instead of
# --kubernetes). The agent runs as root with only the DaemonSet's capabilities (setpriv bounding
# set); the control plane as the Deployment's non-root user with no capabilities.
# Checks: both start and serve metrics on the manifests' ports, the agent follows the control
# plane, every startup/liveness/readiness probe of both (their real paths and ports, asked over
# HTTP as the kubelet does) answers 200, a restarted agent adopts the pinned datapath (the upgrade
# path) and is live but not ready while the control plane is away, ready again once it is back,
# and the uninstall step's command removes every pin. Needs root; run under
# /tmp/sockmesh-ptest.lock (ctest label privileged, RUN_SERIAL).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
: "${SOCKMESH_DEPLOY_TOOLS:?}" "${SOCKMESH_AGENT:?}" "${SOCKMESH_CONTROL:?}" "${SOCKMESHCTL:?}"
fail() { echo "agent_daemonset_test: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "needs root (loads BPF programs, creates a cgroup)"
command -v setpriv > /dev/null || fail "setpriv (util-linux) not found"
command -v bpftool > /dev/null || fail "bpftool not found (scripts/install-deps.sh installs it)"

work=$(mktemp -d)
cg_mount=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
[ -n "$cg_mount" ] || fail "no cgroup2 mount in /proc/mounts"
cgroup=$cg_mount/sockmesh-deploy-$$
instance=deploy-$$
agent_pid="" control_pid=""
cleanup() {
  for pid in $agent_pid $control_pid; do kill -TERM "$pid" 2> /dev/null && wait "$pid" || true; done
  "$SOCKMESH_AGENT" --cleanup --instance "$instance" > /dev/null 2>&1 || true
  rmdir "$cgroup" 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

bash "$root/scripts/render-manifests.sh" --helm "$SOCKMESH_DEPLOY_TOOLS/bin/helm" --check > /dev/null ||
  fail "deploy/manifests/sockmesh.yaml is stale (scripts/render-manifests.sh)"
"$SOCKMESH_DEPLOY_TOOLS/bin/helm" template sockmesh "$root/deploy/helm/sockmesh" \
  --namespace kube-system --set agent.cleanupOnly=true > "$work/cleanup.yaml"
node "$here/manifest_commands.cjs" "$root/deploy/manifests/sockmesh.yaml" "$work/cleanup.yaml" \
  > "$work/items.tsv"
items() { awk -F'\t' -v k="$1" '$1 == k {print $2}' "$work/items.tsv"; }
item() { items "$1" | head -1; }

# Substitutes one flag's value (--name=value form, as the chart writes them); fails if absent.
subst() {  # NAME NEWVALUE, on the array named by $cmd_var
  local -n arr=$cmd_var
  local i found=0
  for i in "${!arr[@]}"; do
    if [[ ${arr[$i]} == "$1="* ]]; then arr[i]="$1=$2"; found=1; fi
  done
  ((found)) || fail "the manifest's command has no $1=: ${arr[*]}"
}
flag() {  # NAME: the manifest's value of --NAME=
  local -n arr=$cmd_var
  local a
  for a in "${arr[@]}"; do [[ $a == "$1="* ]] && { echo "${a#*=}"; return; }; done
  fail "the manifest's command has no $1="
}

# ---- the manifests agree with themselves --------------------------------------------------
mapfile -t agent_cmd < <(items agent_cmd)
mapfile -t control_cmd < <(items control_cmd)
cmd_var=agent_cmd
metrics_addr=$(flag --metrics-addr)
metrics_port=${metrics_addr##*:}
[ "$metrics_port" = "$(item agent_metrics_port)" ] ||
  fail "--metrics-addr=$metrics_addr but containerPort $(item agent_metrics_port)"
[ "$metrics_port" = "$(item agent_scrape_port)" ] ||
  fail "--metrics-addr=$metrics_addr but prometheus.io/port $(item agent_scrape_port)"
[ "$(flag --bpffs)" = "$(item agent_bpffs_mount)" ] ||
  fail "--bpffs=$(flag --bpffs) is not the bpffs volume's mountPath $(item agent_bpffs_mount)"
manifest_cgroup=$(flag --cgroup)
[[ $manifest_cgroup == "$(item agent_cgroup_mount)/"* ]] ||
  fail "--cgroup=$manifest_cgroup is not below the cgroup2 volume's mountPath"
[ "$(flag --bpffs)" = /sys/fs/bpf ] && grep -q '^bpf /sys/fs/bpf bpf' /proc/mounts ||
  fail "this test runs the agent on the host's /sys/fs/bpf, which must be a bpffs mount here"
cp_addr=$(flag --control-plane)
cmd_var=control_cmd
listen=$(flag --listen)
control_metrics=$(flag --metrics-addr)
[ "${cp_addr##*:}" = "${listen##*:}" ] || fail "agents dial $cp_addr but the control plane listens on $listen"
[ "${cp_addr##*:}" = "$(item control_service_grpc_port)" ] ||
  fail "agents dial $cp_addr but the Service's grpc port is $(item control_service_grpc_port)"

# The manifests' fixed ports, bound here on 127.0.0.1: say so if something else holds one.
for port in "$metrics_port" "${listen##*:}" "${control_metrics##*:}"; do
  [ -z "$(ss -Hltn "sport = :$port")" ] || fail "port $port (from the manifests) is already in use here"
done

# ---- the init container's bpffs mount is a no-op where bpffs is mounted -----------------------
mapfile -t mount_cmd < <(items mount_bpffs_cmd)
before=$(grep -c ' /sys/fs/bpf bpf ' /proc/mounts)
"${mount_cmd[@]}" || fail "mount-bpffs init command failed: ${mount_cmd[*]}"
[ "$(grep -c ' /sys/fs/bpf bpf ' /proc/mounts)" = "$before" ] || fail "mount-bpffs mounted bpffs again"

# ---- the control plane, as the Deployment runs it --------------------------------------------
mkdir -p "$work/manifests"
cp "$root/deploy/examples/standalone/echo.yaml" "$work/manifests/"
chmod -R a+rX "$work"
subst --listen "127.0.0.1:${listen##*:}"
subst --metrics-addr "127.0.0.1:${control_metrics##*:}"
control_args=()
for a in "${control_cmd[@]}"; do
  [ "$a" = --kubernetes ] && control_args+=(--manifests "$work/manifests") || control_args+=("$a")
done
uid=$(item control_user)
setpriv --reuid "$uid" --regid "$uid" --clear-groups --bounding-set=-all --inh-caps=-all \
  -- "$SOCKMESH_CONTROL" "${control_args[@]:1}" > "$work/control.log" 2>&1 &
control_pid=$!
# The image's binary path is the manifest's command[0]; here the built binary stands in for it.
[ "${control_cmd[0]}" = /usr/local/bin/sockmesh-control ] || fail "control command ${control_cmd[0]}"

# ---- the agent, as the DaemonSet runs it --------------------------------------------------
cmd_var=agent_cmd
[ "${agent_cmd[0]}" = /usr/local/bin/sockmesh-agent ] || fail "agent command ${agent_cmd[0]}"
subst --cgroup "$cgroup"
subst --instance "$instance"
subst --node-name deploy-test-node
subst --control-plane "127.0.0.1:${cp_addr##*:}"
subst --metrics-addr "127.0.0.1:$metrics_port"
# SOCKMESH_AGENT_CAPS=BPF,NET_ADMIN (say) replaces the DaemonSet's set: how the README's
# smallest-set figures were measured.
if [ -n "${SOCKMESH_AGENT_CAPS:-}" ]; then
  caps=$(tr 'A-Z,' 'a-z\n' <<< "$SOCKMESH_AGENT_CAPS" | sed 's/^/+/' | paste -sd,)
else
  caps=$(items agent_caps | tr 'A-Z' 'a-z' | sed 's/^/+/' | paste -sd,)
fi
capped=(setpriv --bounding-set="-all,$caps" --inh-caps=-all --)
run_capped() { "${capped[@]}" "$@"; }
# A simple command, not a function, in the background: setpriv execs the agent in the forked
# process itself, so $! is the agent's PID and SIGTERM reaches it.
start_agent() {
  "${capped[@]}" "$SOCKMESH_AGENT" "${agent_cmd[@]:1}" >> "$work/agent.log" 2>&1 &
  agent_pid=$!
}
scrape() { curl -sf --max-time 2 "http://127.0.0.1:$1/metrics" || true; }
# GET PORT PATH: the HTTP status (000 when nothing answered); the body is in $work/probe.json.
http_status() {
  curl -s --max-time 2 -o "$work/probe.json" -w '%{http_code}' "http://127.0.0.1:$1$2" || true
}
# Asks every probe of COMPONENT (agent|control) as the kubelet would, until each answers WANT (an
# HTTP status) or 30 s pass. ONLY (a probe kind), when given, limits it to that kind.
check_probes() {  # COMPONENT WANT [ONLY]
  local kind path port code i
  while read -r kind path port; do
    [ -n "${3:-}" ] && [ "$kind" != "$3" ] && continue
    local listener=$metrics_port
    [ "$1" = control ] && listener=${control_metrics##*:}
    [ "$port" = "$listener" ] || fail "$1 $kind probes port $port, not the metrics listener's $listener"
    for i in $(seq 1 150); do
      code=$(http_status "$port" "$path")
      [ "$code" = "$2" ] && break
      sleep 0.2
    done
    [ "$code" = "$2" ] || {
      echo "--- $1 log" >&2; cat "$work/$1.log" >&2
      fail "$1 $kind GET $path on port $port answered $code, not $2: $(cat "$work/probe.json" 2> /dev/null)"
    }
    echo "$1: $kind GET $path on :$port -> $code"
  done < <(items "${1}_probe")
}
wait_metric() {  # PORT REGEX WHAT
  local i
  for i in $(seq 1 150); do
    scrape "$1" | grep -Eq "$2" && return 0
    if [ -n "$agent_pid" ] && ! kill -0 "$agent_pid" 2> /dev/null; then
      cat "$work/agent.log" >&2
      fail "the agent exited while waiting for $3"
    fi
    sleep 0.2
  done
  echo "--- agent log" >&2; cat "$work/agent.log" >&2
  echo "--- control log" >&2; cat "$work/control.log" >&2
  fail "$3: no /metrics line matching '$2' on port $1 within 30 s"
}
# On a node the kubelet has made the kubepods cgroup before any Pod starts; the agent only opens
# it. (Creating a cgroup needs CAP_DAC_OVERRIDE where the cgroup2 root is r-x, as here, and the
# DaemonSet does not grant it.)
mkdir "$cgroup"
echo "agent: ${agent_cmd[*]} (capabilities $caps)"
start_agent
wait_metric "$metrics_port" '^sockmesh_agent_programs_attached [1-9]' "programs attached"
wait_metric "$metrics_port" '^sockmesh_agent_control_plane_connected 1' "control plane stream"
wait_metric "${control_metrics##*:}" '^sockmesh_control_agents_connected 1' "agent seen by the control plane"
for i in $(seq 1 50); do
  "$SOCKMESHCTL" services --instance "$instance" | grep -q '127.10.0.10:80/TCP' && break
  [ "$i" = 50 ] && fail "the service the control plane streams never reached the agent's maps"
  sleep 0.2
done
echo "agent: attached, following the control plane, service 127.10.0.10:80 in its maps"

check_probes agent 200
# The readiness probe, asked last, says what it checked.
python3 - "$work/probe.json" << 'PY' || fail "agent /readyz: $(cat "$work/probe.json")"
import json, sys
j = json.load(open(sys.argv[1]))
p, cp = j["programs"], j["control_plane"]
assert j["ready"] and p["expected"] > 0 and p["attached"] == p["expected"], p
assert cp["connected"] and cp["acked_version"] >= 1, cp
print(f"agent: ready: {p['attached']}/{p['expected']} programs attached, version {cp['acked_version']} applied")
PY
expected_programs=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["programs"]["expected"])' "$work/probe.json")
check_probes control 200

# ---- upgrade: the old Pod stops, the datapath stays, the new Pod adopts it ----------------
kill -TERM "$agent_pid"
rc=0
wait "$agent_pid" || rc=$?
((rc == 0)) || { tail -5 "$work/agent.log" >&2; fail "the agent exited $rc on SIGTERM"; }
agent_pid=""
links=/sys/fs/bpf/sockmesh/$instance/links
[ -n "$(ls -A "$links" 2> /dev/null)" ] || fail "no pinned links after SIGTERM: the datapath went empty"
"$SOCKMESHCTL" services --instance "$instance" | grep -q '127.10.0.10:80/TCP' ||
  fail "the service left the maps while no agent ran"
# The control plane is away too (say, being upgraded): the new agent adopts the datapath, is live,
# and stays unready until a version is applied; the service stays in the maps meanwhile.
kill -TERM "$control_pid"
wait "$control_pid" || true
control_pid=""
start_agent
wait_metric "$metrics_port" '^sockmesh_agent_programs_attached [1-9]' "programs attached after restart"
check_probes agent 200 livenessProbe
# Adopted, not attached afresh: the pinned links got the new programs in place.
adopted=$(grep -o '[0-9]* adopted from pins' "$work/agent.log" | tail -1 | cut -d' ' -f1)
[ "${adopted:-0}" -ge "$expected_programs" ] ||
  fail "the restarted agent adopted ${adopted:-0} pinned links, not the $expected_programs the first one attached"
sleep 1
code=$(http_status "$metrics_port" /readyz)
[ "$code" = 503 ] || fail "agent ready ($code) although no control plane answered: $(cat "$work/probe.json")"
grep -q 'no version from the control plane' "$work/probe.json" ||
  fail "/readyz does not say why it is unready: $(cat "$work/probe.json")"
"$SOCKMESHCTL" services --instance "$instance" | grep -q '127.10.0.10:80/TCP' ||
  fail "the restarted agent lost the service while the control plane was away"
echo "agent: restarted with the datapath in place; unready (503) while the control plane is away"
setpriv --reuid "$uid" --regid "$uid" --clear-groups --bounding-set=-all --inh-caps=-all \
  -- "$SOCKMESH_CONTROL" "${control_args[@]:1}" >> "$work/control.log" 2>&1 &
control_pid=$!
check_probes control 200
check_probes agent 200
echo "agent: ready again once the control plane is back"

# ---- uninstall: the cleanupOnly render's init container removes every pin -------------------
kill -TERM "$agent_pid"
wait "$agent_pid" || true
agent_pid=""
mapfile -t cleanup_cmd < <(items cleanup_cmd)
cmd_var=cleanup_cmd
subst --instance "$instance"
run_capped "$SOCKMESH_AGENT" "${cleanup_cmd[@]:1}" || fail "cleanup failed: ${cleanup_cmd[*]}"
[ ! -e "/sys/fs/bpf/sockmesh/$instance" ] || fail "pins left after cleanup: $(find "/sys/fs/bpf/sockmesh/$instance")"
left=$(bpftool cgroup show "$cgroup" | awk '$1 ~ /^[0-9]+$/')
[ -z "$left" ] || fail "programs still attached to $cgroup after cleanup: $left"
echo "uninstall: every pin of the instance removed, no program left on the cgroup"
echo "agent_daemonset_test: ok"
