/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The cgroup_skb logic: one program per direction runs every packet feature in turn, the
 * destination-side policy (lib/policy.h) and then the request timer (lib/request_latency.h), so
 * that the kernel enters one program per packet and direction, not one per feature.
 *
 * Most packets of a mesh socket are data and ACKs of an established TCP connection, which policy
 * never decides on (it decides on SYNs and UDP datagrams): the socket's state says so before any
 * byte of the packet is read. A packet whose socket we cannot inspect is parsed as before. */
#ifndef SOCKMESH_BPF_LIB_CGROUP_SKB_H_
#define SOCKMESH_BPF_LIB_CGROUP_SKB_H_

#include "lib/policy.h"
#include "lib/request_latency.h"

#define SM_SKB_TCP_SYN_SENT 2 /* BPF_TCP_SYN_SENT */
#define SM_SKB_TCP_LISTEN 10  /* BPF_TCP_LISTEN */

/* Whether a TCP socket in `state` may send (egress) or receive (ingress) a SYN that opens a
 * connection: a connecting socket sends one, a listener receives them (a connecting socket
 * receives one only on a simultaneous open). */
static __always_inline bool sm_skb_tcp_may_open(__u32 state, bool ingress) {
  if (state == SM_SKB_TCP_SYN_SENT) return true;
  return ingress && state == SM_SKB_TCP_LISTEN;
}

/* Whether policy has to look at this packet; `sk` is the packet's full socket or NULL. */
static __always_inline bool sm_skb_policy_wants(const struct bpf_sock *sk, bool ingress) {
  if (!sk || sk->protocol != SM_IPPROTO_TCP) return true;
  return sm_skb_tcp_may_open(sk->state, ingress);
}

/* Whether some local workload is selected by a policy, so that its ingress check may want to know
 * which local workload opened a flow (sm_flow_gate_v1; a UDP reply that arrives after the first
 * such policy may then be decided as a new flow). */
static __always_inline bool sm_skb_flow_identity_wanted(void) {
  __u32 zero = 0;
  const __u32 *gate = bpf_map_lookup_elem(&sm_flow_gate_v1, &zero);
  return !gate || *gate != SM_FLOW_GATE_SKIP;
}

static __always_inline struct bpf_sock *sm_skb_full_sock(struct __sk_buff *skb) {
  struct bpf_sock *sk = skb->sk;
  return sk ? bpf_sk_fullsock(sk) : NULL;
}

/* Egress of a mesh socket: records a new flow's source workload, then times requests. Always
 * lets the packet through. */
static __always_inline int sm_cgroup_skb_egress(struct __sk_buff *skb) {
  struct bpf_sock *sk = sm_skb_full_sock(skb);
  if (sm_skb_policy_wants(sk, false) && sm_skb_flow_identity_wanted()) sm_policy_egress(skb);
  return sm_request_egress(skb, sk);
}

/* Ingress of a mesh socket: policy may drop a new connection or datagram; a packet that passes
 * may end a request. */
static __always_inline int sm_cgroup_skb_ingress(struct __sk_buff *skb) {
  struct bpf_sock *sk = sm_skb_full_sock(skb);
  if (sm_skb_policy_wants(sk, true) && !sm_policy_ingress(skb)) return 0;
  return sm_request_ingress(skb, sk);
}

#endif /* SOCKMESH_BPF_LIB_CGROUP_SKB_H_ */
