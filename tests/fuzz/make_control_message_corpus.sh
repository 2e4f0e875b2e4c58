#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Regenerates corpus/control_message_fuzz/ (serialized sockmesh.v1.ServerMessage seeds) from the
# text-format messages below with protoc --encode. Deltas are based on the fuzz target's Base()
# state (version 3). Run once after changing the proto; the output is committed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
proto_dir="$here/../../control_plane/proto"
out="$here/corpus/control_message_fuzz"
mkdir -p "$out"

V4_1='bytes: "\n\000\000\001"'        # 10.0.0.1
V4_2='bytes: "\n\000\000\002"'        # 10.0.0.2
B4_1='bytes: "\n\001\000\001"'        # 10.1.0.1
B4_2='bytes: "\n\001\000\002"'        # 10.1.0.2
V6_1='bytes: "\375\000\000\000\000\000\000\000\000\000\000\000\000\000\000\001"'  # fd00::1
B6_2='bytes: "\375\000\000\000\000\000\000\000\000\000\000\000\000\000\000\002"'  # fd00::2

encode() {  # NAME TEXT
  printf '%s\n' "$2" | protoc --proto_path="$proto_dir" --encode=sockmesh.v1.ServerMessage \
    sockmesh/v1/control_plane.proto > "$out/$1"
}

encode snapshot-basic "snapshot { version: 3
  services { namespace: \"ns\" name: \"web\" port_name: \"http\"
    frontend { vip { $V4_1 } port: 80 }
    backends { address { $B4_1 } port: 8080 weight: 3 ready: true }
    backends { address { $B4_2 } port: 8080 weight: 1 ready: false } }
  services { namespace: \"ns\" name: \"dns\" frontend { vip { $V4_2 } port: 53 protocol: PROTOCOL_UDP } }
  services { namespace: \"ns\" name: \"v6\" frontend { vip { $V6_1 } port: 443 }
    algorithm: LB_ALGORITHM_MAGLEV affinity: SESSION_AFFINITY_CLIENT_IP affinity_timeout_seconds: 600
    backends { address { $B6_2 } port: 8443 weight: 65535 ready: true } } }"
encode snapshot-empty "snapshot { version: 1 }"
encode snapshot-invalid "snapshot { version: 2
  services { name: \"bad\" frontend { vip { bytes: \"\001\002\003\" } port: 0 }
    backends { address { $B6_2 } port: 70000 weight: 0 ready: true } }
  services { name: \"mixed\" frontend { vip { $V4_1 } port: 80 }
    backends { address { $B6_2 } port: 80 weight: 1 ready: true } } }"
encode snapshot-duplicate-frontend "snapshot { version: 4
  services { name: \"a\" frontend { vip { $V4_1 } port: 80 } }
  services { name: \"b\" frontend { vip { $V4_1 } port: 80 } } }"
encode delta-upsert-remove "delta { version: 4 base_version: 3
  upserted_services { namespace: \"ns\" name: \"web\" frontend { vip { $V4_1 } port: 80 }
    algorithm: LB_ALGORITHM_MAGLEV
    backends { address { $B4_2 } port: 8080 weight: 2 ready: true } }
  removed_frontends { vip { $V4_2 } port: 53 } }"
encode delta-remove-missing "delta { version: 5 base_version: 3
  removed_frontends { vip { $V6_1 } port: 9 protocol: PROTOCOL_UDP } }"
encode delta-invalid "delta { version: 6 base_version: 3
  upserted_services { name: \"x\" frontend { vip { bytes: \"\" } port: 1 }
    backends { address { $B4_1 } port: 0 weight: 100000 ready: true } }
  removed_frontends { port: 80 } }"
encode snapshot-workloads "snapshot { version: 7
  workloads { principal: \"cluster.local/ns/shop/sa/web\" identity: 4096 ips { $B4_1 } ips { $B6_2 }
    namespace: \"shop\" name: \"web-1\" service_account: \"web\" labels { key: \"app\" value: \"web\" }
    node_name: \"node-a\" }
  workloads { principal: \"cluster.local/ns/shop/sa/client\" identity: 300 namespace: \"shop\"
    name: \"client\" kind: WORKLOAD_KIND_WORKLOAD_ENTRY service_account: \"client\" }
  identities { principal: \"cluster.local/ns/shop/sa/web\" identity: 4096 }
  identities { principal: \"cluster.local/ns/shop/sa/client\" identity: 300 }
  namespaces { name: \"shop\" labels { key: \"team\" value: \"a\" } } }"
encode delta-workloads "delta { version: 4 base_version: 3
  upserted_workloads { principal: \"cluster.local/ns/a/sa/b\" identity: 5000 namespace: \"a\"
    name: \"w\" service_account: \"b\" ips { $B4_2 } }
  upserted_identities { principal: \"cluster.local/ns/a/sa/b\" identity: 5000 }
  removed_workloads { namespace: \"x\" name: \"y\" } removed_principals: \"cluster.local/ns/x/sa/y\"
  upserted_namespaces { name: \"a\" } removed_namespaces: \"x\" }"
printf '' > "$out/empty"
