#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's policy walkthrough, end to end through every component: an AuthorizationPolicy file
# dropped into the manifests directory of `sockmesh-agent --standalone` is parsed and compiled by
# the embedded control plane, streamed to the agent, written into the kernel maps, and enforced
# at connect(). Asserts: the client workload connects before the policy; with a DENY it fails at
# once with EPERM, the decision counter and `sockmeshctl monitor` show it; an ALLOW for another
# principal denies it as "no ALLOW match"; removing the policies lets it connect again.
# Throwaway cgroup and pin instance; VIP 127.10.77.1, backends 127.0.77.1-2. Needs root.
set -euo pipefail
build=${SOCKMESH_BUILD_DIR:?SOCKMESH_BUILD_DIR is the build directory}
agent=$build/userspace/agent/sockmesh-agent
ctl=$build/userspace/ctl/sockmeshctl
echo_bin=$build/services/echo/sockmesh-echo
cg2=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
[[ -n $cg2 ]] || { echo "policy_walkthrough: no cgroup v2 mount in /proc/mounts" >&2; exit 1; }
instance=policy-walk-$$
cgroup=$cg2/sockmesh-policy-walk-$$
metrics=127.0.0.1:19477
work=$(mktemp -d /tmp/sockmesh-policy-walk.XXXXXX)
pids=()

cleanup() {
  local rc=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  "$agent" --cleanup --instance "$instance" > /dev/null 2>&1 || true
  find "$cgroup" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
  rmdir "$cgroup" 2>/dev/null || true
  if ((rc != 0)); then
    echo "--- agent log" >&2
    cat "$work/agent.log" >&2 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "policy_walkthrough: FAIL: $*" >&2; exit 1; }

mkdir -p "$work/manifests" "$cgroup"
cat > "$work/manifests/echo.yaml" <<'EOF'
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: shop}
spec:
  clusterIP: 127.10.77.1
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: echo-1
  namespace: shop
  labels: {kubernetes.io/service-name: echo}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
  - addresses: [127.0.77.1]
    conditions: {ready: true}
  - addresses: [127.0.77.2]
    conditions: {ready: true}
---
apiVersion: sockmesh.io/v1alpha1
kind: WorkloadEntry
metadata: {name: echo-1, namespace: shop}
spec: {address: 127.0.77.1, serviceAccount: echo, labels: {app: echo}}
---
apiVersion: sockmesh.io/v1alpha1
kind: WorkloadEntry
metadata: {name: echo-2, namespace: shop}
spec: {address: 127.0.77.2, serviceAccount: echo, labels: {app: echo}}
---
apiVersion: sockmesh.io/v1alpha1
kind: WorkloadEntry
metadata: {name: client, namespace: shop}
spec: {serviceAccount: client, labels: {app: client}}
EOF

for i in 1 2; do
  "$echo_bin" --name "echo-$i" --listen "127.0.77.$i:8080" > "$work/echo-$i.log" 2>&1 &
  pids+=($!)
done
"$agent" --standalone --manifests "$work/manifests" --cgroup "$cgroup" --instance "$instance" \
  --metrics-addr "$metrics" > "$work/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -sf --max-time 1 "http://$metrics/readyz" > /dev/null && break
  kill -0 "${pids[-1]}" 2>/dev/null || fail "the agent exited"
  sleep 0.1
done
curl -sf --max-time 1 "http://$metrics/readyz" > /dev/null || fail "the agent never became ready"

# One connect() from the workload shop/client; prints "ok" or the error bash reports (strerror).
dial() {
  "$ctl" exec --cgroup "$cgroup" --workload shop/client -- \
    timeout 5 bash -c 'exec 3<>/dev/tcp/127.10.77.1/80 && echo ok' 2>&1 | tail -1
}
# Waits until dial() prints something matching $1 (the manifests directory is watched).
expect_dial() {
  local want=$1 got=""
  for _ in $(seq 1 100); do
    got=$(dial || true)
    [[ $got == *"$want"* ]] && return 0
    sleep 0.1
  done
  fail "connect from shop/client: wanted '$want', got '$got'"
}
decisions() {  # decisions ACTION POLICY: the counter's value (0 when absent)
  curl -s "http://$metrics/metrics" | awk -v a="action=\"$1\"" -v p="policy=\"$2\"" \
    '/^sockmesh_policy_decisions_total\{/ && index($0, a) && index($0, p) {s += $NF}
     END {print s + 0}'
}

# write_policy NAME ACTION SA: an AuthorizationPolicy on the echo workloads whose one rule matches
# the principal of service account SA in shop, as manifests/NAME.yaml.
write_policy() {
  cat > "$work/manifests/$1.yaml" <<EOF
apiVersion: sockmesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: $1, namespace: shop}
spec:
  selector: {matchLabels: {app: echo}}
  action: $2
  rules:
    - from: [{source: {principals: ["cluster.local/ns/shop/sa/$3"]}}]
EOF
}

expect_dial ok
echo "policy_walkthrough: no policy: shop/client connects"

write_policy deny-client DENY client
expect_dial "Operation not permitted"
start=$(date +%s%N)
got=$(dial || true)
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
[[ $got == *"Operation not permitted"* ]] || fail "DENY: got '$got'"
echo "policy_walkthrough: DENY: connect refused with EPERM (${elapsed_ms} ms including exec)"
denied=$(decisions deny shop/deny-client)
((denied >= 2)) || fail "sockmesh_policy_decisions_total{action=deny,policy=shop/deny-client} is $denied"
monitor=$("$ctl" monitor --instance "$instance" --run-dir /run/sockmesh --count 1 --timeout 5 -o json ||
  true)
[[ $monitor == *deny-client* ]] || fail "sockmeshctl monitor did not show the denial: '$monitor'"
echo "policy_walkthrough: counter ${denied}, monitor: $monitor"

rm "$work/manifests/deny-client.yaml"
expect_dial ok
echo "policy_walkthrough: DENY removed: shop/client connects again"
write_policy allow-frontend ALLOW frontend
before=$(decisions deny no_allow_match)
expect_dial "Operation not permitted"
after=$(decisions deny no_allow_match)
((after > before)) || fail "no_allow_match denials did not grow ($before -> $after)"
echo "policy_walkthrough: ALLOW for another principal: denied as no_allow_match ($before -> $after)"

rm "$work/manifests/allow-frontend.yaml"
expect_dial ok
echo "policy_walkthrough: policies removed: shop/client connects again"
