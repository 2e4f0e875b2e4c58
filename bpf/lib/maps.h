/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Every map of the socket load balancer. Sizes come from consts.h; the agent may resize them before
 * load. Maps that hooks read while the agent replaces entries are BPF_F_NO_PREALLOC: their elements
 * are freed after an RCU grace period, so a pointer a hook holds is never recycled under it (a
 * preallocated hash map reuses freed elements at once). */
#ifndef SOCKMESH_BPF_LIB_MAPS_H_
#define SOCKMESH_BPF_LIB_MAPS_H_

/* vmlinux.h first: the libbpf headers use its types. */
#include "vmlinux.h"
/* clang-format would sort libbpf above vmlinux.h without this line. */
#include <bpf/bpf_helpers.h>

#include "sockmesh/abi.h"

/* Frontends. Written by the agent (map_sync), read by the connect/sendmsg hooks. An entry leaves
 * when its Service or port leaves the desired state. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, SM_MAX_SERVICES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct sm_svc_key);
  __type(value, struct sm_svc);
} sm_svc_v1 SEC(".maps");

/* Backend set members per (svc_id, rev). Written by the agent before it publishes rev in sm_svc_v1;
 * the previous rev's entries are deleted after the swap. Read by the hooks after a LUT lookup and
 * to validate session affinity. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, SM_MAX_BACKEND_ENTRIES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct sm_be_key);
  __type(value, struct sm_backend);
} sm_be_v1 SEC(".maps");

/* Selection table per (svc_id, rev): slot -> backend_id. Built by the agent (Maglev or weighted),
 * written and retired together with sm_be_v1. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, SM_MAX_LUT_ENTRIES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct sm_lut_key);
  __type(value, __u32);
} sm_lut_v1 SEC(".maps");

/* ClientIP session affinity: (client netns, service) -> backend and last use. Written and read by
 * the connect/sendmsg hooks; entries expire by timeout (checked on use) or LRU eviction. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, SM_MAX_AFFINITY_ENTRIES);
  __type(key, struct sm_aff_key);
  __type(value, struct sm_aff_val);
} sm_aff_v1 SEC(".maps");

/* Reverse translation for unconnected UDP: (socket, backend) -> VIP. Written when a sendmsg is
 * translated, read by recvmsg. Such a socket may talk to many VIPs, so socket-local storage cannot
 * hold it; entries leave by LRU eviction. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, SM_MAX_REVNAT_ENTRIES);
  __type(key, struct sm_revnat_key);
  __type(value, struct sm_revnat_val);
} sm_revnat_v1 SEC(".maps");

/* The VIP behind each connected socket (connect() translated), and the connection count it holds.
 * Written by the connect hooks, read by getpeername, recvmsg and sock_release; the kernel frees an
 * entry with its socket. */
struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct sm_sock_vip);
} sm_sock_vip_v2 SEC(".maps");

/* Live TCP connections per (svc_id, backend_id). The connect hook adds one when it sends a socket
 * to a backend; the socket's next connect() or its release takes it back (lib/backend_conns.h).
 * Read by least-connections and the connection limit, and by sockmeshctl. Entries are never deleted
 * by the kernel (a delete racing an increment would lose it); the agent deletes zero entries of
 * pairs that no longer exist. No prealloc: a hook's pointer is never recycled for another key. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, SM_MAX_BE_CONN_ENTRIES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct sm_be_conn_key);
  __type(value, __u64);
} sm_be_conns_v1 SEC(".maps");

/* Same-node short-circuit: established loopback TCP sockets of the mesh cgroup, keyed by the
 * connection as each socket sees it. Written by the sockops program when a connection is
 * established, read by the sk_msg program (attached to this map) to find a sender's peer. The
 * kernel removes a socket when it closes. Only the sm_short_circuit object creates it. */
struct {
  __uint(type, BPF_MAP_TYPE_SOCKHASH);
  __uint(max_entries, SM_MAX_SOCK_PAIRS);
  __type(key, struct sm_sock_key);
  __type(value, __u64);
} sm_sock_pairs_v1 SEC(".maps");

/* Workload address -> identity, for local and remote workloads alike (policy will look up the peer
 * of a connection here). Written by the agent (identity_sync) from the streamed model; an entry
 * leaves when its workload or the address leaves the model. Read by the policy ingress check for
 * sources that sm_flow_identity_v1 does not know (remote nodes). */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, SM_MAX_IP_IDENTITIES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct sm_ip_identity_key);
  __type(value, struct sm_identity);
} sm_ip_identity_v1 SEC(".maps");

/* Cgroup id (bpf_get_current_cgroup_id()) -> identity of the local standalone workload whose
 * processes live in that cgroup (<mesh cgroup>/<namespace>/<name>). Written by the agent when the
 * model or the cgroup tree changes; an entry leaves with its cgroup or its workload. Read by the
 * policy checks: a client's identity at connect()/sendmsg() and in egress. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, SM_MAX_CGROUP_IDENTITIES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, __u64);
  __type(value, struct sm_identity);
} sm_cgroup_identity_v1 SEC(".maps");

/* Authorization policy rows (lib/policy.h): (kernel set id, source identity, port, source prefix)
 * -> the matching DENY/ALLOW/AUDIT policy ids. Written by the agent (policy_sync) under fresh set
 * ids before endpoints switch to them; the old set's rows are deleted after the switch. Read by
 * the policy checks on both sides. */
struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, SM_MAX_POLICY_ROWS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct sm_policy_row_key);
  __type(value, struct sm_policy_row);
} sm_policy_rows_v1 SEC(".maps");

/* Address of a workload that policies select (local or remote) -> its endpoint. Written by the
 * agent (policy_sync); read by the client-side check on the final destination of a connect() or
 * sendmsg(). An entry leaves when no policy selects the workload any more. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, SM_MAX_POLICY_ENDPOINT_IPS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct sm_ip_identity_key);
  __type(value, struct sm_policy_endpoint);
} sm_ip_policy_endpoint_v1 SEC(".maps");

/* Cgroup id of a local workload that policies select -> its endpoint. Written by the agent
 * (policy_sync, cgroups found as for sm_cgroup_identity_v1); read by the destination-side check
 * with the receiving socket's cgroup, so any address of the workload (::1, IPv6) is covered. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, SM_MAX_POLICY_ENDPOINT_CGROUPS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, __u64);
  __type(value, struct sm_policy_endpoint);
} sm_cgroup_policy_endpoint_v1 SEC(".maps");

/* Policy decisions counted per (endpoint, source identity, policy, verdict, side). Written by the
 * policy checks, read (summed over CPUs) by the agent's /metrics. Counters only grow; the agent
 * deletes entries of endpoints that left. A full map counts SM_CNT_POLICY_DECISIONS_FULL. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, SM_MAX_POLICY_DECISIONS);
  __type(key, struct sm_policy_decision_key);
  __type(value, __u64);
} sm_policy_decisions_v1 SEC(".maps");

/* 5-tuple -> identity of the local workload that sent it. Written by the egress check for TCP SYNs
 * and UDP datagrams of workload sockets, read by the ingress check of a local destination. Entries
 * leave by LRU eviction. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, SM_MAX_FLOW_IDENTITIES);
  __type(key, struct sm_flow_key);
  __type(value, struct sm_identity);
} sm_flow_identity_v1 SEC(".maps");

/* Key 0 -> whether the egress check records flows in sm_flow_identity_v1 (SM_FLOW_GATE_*). Written
 * by the agent (policy_sync): RECORD before the first local workload is selected by a policy, SKIP
 * once none is (no destination-side check would read the record). A fresh map holds RECORD, so a
 * datapath that no agent has told otherwise records as it always did. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u32);
} sm_flow_gate_v1 SEC(".maps");

/* Denial events (struct sm_policy_denial) for sockmeshctl monitor. Written by the policy checks;
 * a full buffer drops the event and counts SM_CNT_POLICY_EVENTS_LOST. */
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, SM_POLICY_DENIALS_BYTES);
} sm_policy_denials_v1 SEC(".maps");

/* Outcome counters indexed by SM_CNT_*. Shared by both objects (sm_short_circuit reuses the pin).
 * Incremented by the hooks, read (summed over CPUs) by the
 * agent's metrics and sockmeshctl. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, SM_CNT_MAX);
  __type(key, __u32);
  __type(value, __u64);
} sm_counters_v1 SEC(".maps");

#endif /* SOCKMESH_BPF_LIB_MAPS_H_ */
