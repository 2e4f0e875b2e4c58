/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Every struct that crosses the kernel/user boundary. Fixed-width types only, explicit padding,
 * sizes asserted here and again in C++ (userspace/bpf/abi_checks.h). A layout change bumps
 * SM_ABI_VERSION and the _vN suffix of the maps that use the struct.
 *
 * Addresses: IPv4 lives in addr[0], addr[1..3] are zero. All addresses and ports are network byte
 * order; every other integer is host order. */
#ifndef SOCKMESH_ABI_H_
#define SOCKMESH_ABI_H_

#ifdef __bpf__
/* BPF side: vmlinux.h already defines __u8 .. __u64 and __be16/__be32. */
#else
#include <linux/types.h>
#endif

#include "sockmesh/consts.h"

#ifdef __cplusplus
#define SM_STATIC_ASSERT static_assert
#else
#define SM_STATIC_ASSERT _Static_assert
#endif

/* A frontend: what a client dials. Key of sm_svc_v1. */
struct sm_svc_key {
  __be32 addr[4]; /* VIP, network order */
  __be16 port;    /* network order */
  __u8 proto;     /* IPPROTO_TCP or IPPROTO_UDP */
  __u8 family;    /* SM_FAMILY_V4 / SM_FAMILY_V6 */
};

/* A service's current backend set. Value of sm_svc_v1. The backend set itself lives in sm_be_v1 and
 * sm_lut_v1 under (svc_id, rev); replacing the set writes a new rev there first and then swaps this
 * value in one update, so a hook sees either the old set or the new one. */
struct sm_svc {
  __u32 svc_id;             /* allocated by the agent, stable while the frontend exists, never 0 */
  __u32 rev;                /* revision of the backend set in sm_be_v1 / sm_lut_v1 */
  __u32 lut_size;           /* slots in sm_lut_v1 for (svc_id, rev); 0 = no backend: refuse */
  __u32 backend_count;      /* backends in the set (for tools; the LUT drives selection) */
  __u32 affinity_timeout_s; /* ClientIP session affinity timeout in seconds; 0 = no affinity */
  __u8 algo;                /* SM_LB_RANDOM, SM_LB_MAGLEV or SM_LB_LEAST_CONN */
  __u8 pad;
  /* Circuit breaker: live TCP connections one backend may hold for this service; 0 = unlimited.
   * Took two bytes that were zero padding in the first layout, so older entries read as
   * unlimited and the size and other offsets did not change. */
  __u16 max_conns_per_backend;
};

/* The backend list: one sm_lut_v1 slot per backend, in agent order, for least-connections and the
 * connection limit, which must look at every backend rather than draw one. Slots
 * [first, first + backend_count) with first = 0 for SM_LB_LEAST_CONN (the list is the whole table)
 * and first = lut_size for other algorithms with max_conns_per_backend != 0 (appended after the
 * table); other services have no list. At most SM_LB_MAX_LIST_BACKENDS backends. */

/* Key of sm_lut_v1; the value is a __u32 backend_id. */
struct sm_lut_key {
  __u32 svc_id;
  __u32 rev;
  __u32 slot; /* 0 .. sm_svc.lut_size-1 */
};

/* Key of sm_be_v1: a backend as a member of one revision of one service's set. */
struct sm_be_key {
  __u32 svc_id;
  __u32 rev;
  __u32 backend_id; /* allocated by the agent per (address, port), never 0 */
};

/* Value of sm_be_v1. */
struct sm_backend {
  __be32 addr[4]; /* network order */
  __be16 port;    /* network order */
  __u8 family;    /* SM_FAMILY_V4 / SM_FAMILY_V6 */
  __u8 pad;
  __u16 weight; /* informational: the LUT already encodes the share */
  __u8 pad2[2];
};

/* Key of sm_aff_v1 (LRU). The client of a socket-level load balancer is its network namespace:
 * at connect() time an unbound socket has no source address yet (Cilium's socket LB does the same).
 */
struct sm_aff_key {
  __u64 netns_cookie;
  __u32 svc_id;
  __u32 pad;
};

/* Value of sm_aff_v1. */
struct sm_aff_val {
  __u64 last_used_ns; /* bpf_ktime_get_ns() of the last connect that used it */
  __u32 backend_id;
  __u32 pad;
};

/* Key of sm_revnat_v1 (LRU): a socket and the backend it was sent to. Lets recvmsg() and
 * getpeername() show the VIP the application dialed instead of the backend. */
struct sm_revnat_key {
  __u64 cookie;   /* bpf_get_socket_cookie() */
  __be32 addr[4]; /* backend, network order */
  __be16 port;    /* backend port, network order */
  __u8 family;
  __u8 pad[5];
};

/* Value of sm_revnat_v1: the frontend to report. */
struct sm_revnat_val {
  __be32 addr[4]; /* VIP, network order */
  __be16 port;    /* network order */
  __u8 family;
  __u8 pad;
};

/* Value of sm_sock_vip_v2 (socket-local storage): what a connected socket dialed and where it was
 * sent. Freed by the kernel with the socket, so long-lived connections never lose it to eviction.
 */
struct sm_sock_vip {
  __be32 vip[4];     /* network order */
  __be32 backend[4]; /* network order */
  __be16 vip_port;   /* network order */
  __be16 backend_port;
  __u8 family; /* SM_FAMILY_V4 / SM_FAMILY_V6, of both */
  __u8 pad[3];
  /* The sm_be_conns_v1 entry this socket holds one count in; backend_id 0 = none. Set by the
   * connect hook for TCP, given back by the next connect() of the socket or its release. */
  __u32 svc_id;
  __u32 backend_id;
};

/* Key of sm_be_conns_v1; the value is a __u64 count of live TCP sockets. Not per revision: a
 * connection keeps counting against its backend across backend-set updates. */
struct sm_be_conn_key {
  __u32 svc_id;
  __u32 backend_id;
};

/* Value of sm_outlier_cfg_v1 (key: __u32 svc_id): a service's outlier detection, written by the
 * agent from the TrafficPolicy. No entry = no ejection for that service. */
struct sm_outlier_cfg {
  __u64 base_ejection_ns;     /* an ejection lasts this times the backend's ejection count */
  __u32 consecutive_failures; /* connect failures in a row that eject; never 0 */
  __u32 max_ejection_percent; /* 0..100 of backend_count; at least one backend when > 0 */
};

/* Value of sm_be_outlier_v1 (key: struct sm_be_conn_key): one backend's connect failures, written
 * by the sockops tracker, read by the connect hook and sockmeshctl. Times are bpf_ktime_get_ns()
 * (CLOCK_MONOTONIC). */
struct sm_be_outlier {
  __u64 ejected_until_ns;     /* skipped by connects until then; 0 = never ejected */
  __u32 consecutive_failures; /* since the last established connection */
  __u32 ejections;            /* the back-off multiplier; reset after a healthy period */
};

/* Value of sm_svc_ejected_v1 (key: __u32 svc_id): the end times of the service's current
 * ejections, so the kernel can tell how many backends are out without walking them. A slot is
 * free once its time has passed. */
struct sm_svc_ejections {
  __u64 until_ns[SM_OUTLIER_MAX_EJECTED];
};

/* Key of sm_sock_pairs_v1 (SOCKHASH): a TCP connection as one of its sockets sees it. The peer
 * socket's key is the same with local and remote swapped. IPv4-mapped IPv6 addresses are stored as
 * IPv4 (family SM_FAMILY_V4), so a dual-stack socket finds an IPv4 peer and vice versa. */
struct sm_sock_key {
  __be32 local[4];    /* network order */
  __be32 remote[4];   /* network order */
  __be16 local_port;  /* network order */
  __be16 remote_port; /* network order */
  __u8 family;        /* SM_FAMILY_V4 / SM_FAMILY_V6 */
  __u8 pad[3];
};

/* Key of sm_ip_identity_v1: a workload address (local or remote). IPv4 in addr[0]. */
struct sm_ip_identity_key {
  __be32 addr[4]; /* network order */
  __u8 family;    /* SM_FAMILY_V4 / SM_FAMILY_V6 */
  __u8 pad[3];
};

/* Value of sm_ip_identity_v1 and sm_cgroup_identity_v1: the workload identity the control plane
 * numbered (SM_IDENTITY_*; allocated ones start at SM_IDENTITY_FIRST_ALLOCATED). */
struct sm_identity {
  __u32 identity; /* host order; < 2^24 */
  __u32 flags;    /* SM_IDENTITY_F_* */
};

/* Key of sm_conn_stats_v1: who connected to what. */
struct sm_conn_stats_key {
  __u64 cgroup_id; /* cgroup v2 id of the process that called connect() */
  __u32 svc_id;    /* sm_svc.svc_id of the frontend it dialed */
  __u32 pad;
};

/* A latency histogram; bucket layout in consts.h (SM_HIST_BUCKETS). */
struct sm_hist {
  __u64 buckets[SM_HIST_BUCKETS];
  __u64 sum_us; /* sum of the recorded values, microseconds */
};

/* Value of sm_conn_stats_v1 (per-CPU hash): TCP connections of the mesh cgroup to service
 * backends, counted in the kernel. Counters only grow; userspace sums the CPUs. A connection is
 * opened when it sends its SYN and ends exactly once: failed (closed before established) or
 * closed (after). Active = established - closed. Byte and retransmit counts are added when the
 * connection closes. */
struct sm_conn_stats {
  __u64 opened;
  __u64 established;
  __u64 closed;
  __u64 failed;
  __u64 bytes_sent;          /* acknowledged by the peer (tcp_sock.bytes_acked: +2, SYN and FIN) */
  __u64 bytes_received;      /* tcp_sock.bytes_received (+1 for the FIN) */
  __u64 retransmits;         /* tcp_sock.total_retrans */
  __u64 requests;            /* request/response exchanges timed into request_us */
  struct sm_hist connect_us; /* connect() start (SYN sent) to established */
  struct sm_hist srtt_us;    /* smoothed RTT, sampled once per connection when it closes */
  struct sm_hist request_us; /* first request byte sent to first response byte received */
};

/* Key of sm_policy_rows_v1 (LPM trie): a row of one policy set. LPM compares bytes in order, so
 * the exact part (set, identity, port) comes first and the source prefix last; prefixlen counts
 * bits from policy_set_id on (SM_POLICY_ROW_FIXED_BITS without a source prefix). Lookups use
 * SM_POLICY_ROW_KEY_BITS and the connection's source address. */
struct sm_policy_row_key {
  __u32 prefixlen;       /* LPM prefix length in bits, host order */
  __u32 policy_set_id;   /* the agent's kernel set id (not the proto's), host order */
  __u32 source_identity; /* host order; SM_POLICY_ANY_SOURCE = any, 0 = world */
  __be16 port;           /* destination port, network order; 0 = any port */
  __u8 pad[2];
  __be32 source_addr[4]; /* network order; IPv4 as ::ffff:a.b.c.d */
};

/* Value of sm_policy_rows_v1: the lowest id of each action's policies matching the row, 0 = none
 * (PolicyRow.{deny,allow,audit}_policy_id). */
struct sm_policy_row {
  __u32 deny_policy_id;
  __u32 allow_policy_id;
  __u32 audit_policy_id;
  __u32 pad;
};

/* Value of sm_ip_policy_endpoint_v1 (key sm_ip_identity_key) and sm_cgroup_policy_endpoint_v1
 * (key __u64 cgroup id): a workload that policies select. */
struct sm_policy_endpoint {
  __u32 endpoint_id;   /* PolicyEndpoint.endpoint_id, host order, >= 1 */
  __u32 policy_set_id; /* kernel set id of its rows in sm_policy_rows_v1 */
  __u32 flags;         /* SM_POLICY_F_* */
};

/* Key of sm_policy_decisions_v1 (per-CPU hash, value __u64 count): one kind of decision. */
struct sm_policy_decision_key {
  __u32 endpoint_id;     /* destination */
  __u32 source_identity; /* 0 = world */
  __u32 policy_id;       /* the deciding (or auditing) policy; 0 = none */
  __u8 verdict;          /* SM_POLICY_ALLOW .. SM_POLICY_AUDIT */
  __u8 point;            /* SM_POLICY_AT_CLIENT / SM_POLICY_AT_DESTINATION */
  __u8 pad[2];
};

/* Key of sm_flow_identity_v1 (LRU, value struct sm_identity): a connection or UDP flow as its
 * packets carry it, written by the client's egress so that the destination's ingress on the same
 * node knows the local client's identity. IPv4 in addr[0]. */
struct sm_flow_key {
  __be32 saddr[4]; /* network order */
  __be32 daddr[4]; /* network order */
  __be16 sport;    /* network order */
  __be16 dport;    /* network order */
  __u8 proto;      /* IPPROTO_TCP / IPPROTO_UDP */
  __u8 family;     /* SM_FAMILY_V4 / SM_FAMILY_V6 */
  __u8 pad[2];
};

/* A denial, sent through the sm_policy_denials_v1 ring buffer (sockmeshctl monitor). IPv4 in
 * addr[0]. The client side of a connect() has no source address yet: zero. */
struct sm_policy_denial {
  __u64 time_ns;         /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
  __be32 saddr[4];       /* network order */
  __be32 daddr[4];       /* network order */
  __u32 source_identity; /* 0 = world */
  __u32 endpoint_id;
  __u32 policy_id; /* the DENY policy; 0 = no ALLOW policy matched */
  __be16 sport;    /* network order */
  __be16 dport;    /* network order */
  __u8 proto;      /* IPPROTO_TCP / IPPROTO_UDP */
  __u8 family;     /* SM_FAMILY_V4 / SM_FAMILY_V6 */
  __u8 verdict;    /* SM_POLICY_DENY / SM_POLICY_DENY_NO_MATCH */
  __u8 point;      /* SM_POLICY_AT_* */
  __u8 pad[4];
};

SM_STATIC_ASSERT(sizeof(struct sm_svc_key) == 20, "sm_svc_key layout");
SM_STATIC_ASSERT(sizeof(struct sm_svc) == 24, "sm_svc layout");
SM_STATIC_ASSERT(sizeof(struct sm_lut_key) == 12, "sm_lut_key layout");
SM_STATIC_ASSERT(sizeof(struct sm_be_key) == 12, "sm_be_key layout");
SM_STATIC_ASSERT(sizeof(struct sm_backend) == 24, "sm_backend layout");
SM_STATIC_ASSERT(sizeof(struct sm_aff_key) == 16, "sm_aff_key layout");
SM_STATIC_ASSERT(sizeof(struct sm_aff_val) == 16, "sm_aff_val layout");
SM_STATIC_ASSERT(sizeof(struct sm_revnat_key) == 32, "sm_revnat_key layout");
SM_STATIC_ASSERT(sizeof(struct sm_revnat_val) == 20, "sm_revnat_val layout");
SM_STATIC_ASSERT(sizeof(struct sm_sock_vip) == 48, "sm_sock_vip layout");
SM_STATIC_ASSERT(sizeof(struct sm_be_conn_key) == 8, "sm_be_conn_key layout");
SM_STATIC_ASSERT(sizeof(struct sm_sock_key) == 40, "sm_sock_key layout");
SM_STATIC_ASSERT(sizeof(struct sm_outlier_cfg) == 16, "sm_outlier_cfg layout");
SM_STATIC_ASSERT(sizeof(struct sm_be_outlier) == 16, "sm_be_outlier layout");
SM_STATIC_ASSERT(sizeof(struct sm_svc_ejections) == 8 * SM_OUTLIER_MAX_EJECTED,
                 "sm_svc_ejections layout");
SM_STATIC_ASSERT(sizeof(struct sm_ip_identity_key) == 20, "sm_ip_identity_key layout");
SM_STATIC_ASSERT(sizeof(struct sm_identity) == 8, "sm_identity layout");
SM_STATIC_ASSERT(sizeof(struct sm_conn_stats_key) == 16, "sm_conn_stats_key layout");
SM_STATIC_ASSERT(sizeof(struct sm_hist) == 8 * (SM_HIST_BUCKETS + 1), "sm_hist layout");
SM_STATIC_ASSERT(sizeof(struct sm_conn_stats) == 64 + 3 * sizeof(struct sm_hist),
                 "sm_conn_stats layout");
SM_STATIC_ASSERT(sizeof(struct sm_policy_row_key) == 32, "sm_policy_row_key layout");
SM_STATIC_ASSERT(sizeof(struct sm_policy_row) == 16, "sm_policy_row layout");
SM_STATIC_ASSERT(sizeof(struct sm_policy_endpoint) == 12, "sm_policy_endpoint layout");
SM_STATIC_ASSERT(sizeof(struct sm_policy_decision_key) == 16, "sm_policy_decision_key layout");
SM_STATIC_ASSERT(sizeof(struct sm_flow_key) == 40, "sm_flow_key layout");
SM_STATIC_ASSERT(sizeof(struct sm_policy_denial) == 64, "sm_policy_denial layout");

#endif /* SOCKMESH_ABI_H_ */
