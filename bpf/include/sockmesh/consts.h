/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Sizes, enumerations and reason codes shared by the BPF programs and the agent. Plain #defines (no
 * enums as field types) so both C and C++ see the same integer values. */
#ifndef SOCKMESH_CONSTS_H_
#define SOCKMESH_CONSTS_H_

/* Bumped whenever a shared struct's layout changes; map names carry the same _vN suffix. */
#define SM_ABI_VERSION 2

/* Address families as stored in sm_*.family (not AF_*: those differ between libc and the kernel
 * headers we can see from BPF). */
#define SM_FAMILY_V4 4
#define SM_FAMILY_V6 6

/* sm_svc.algo */
#define SM_LB_RANDOM 0
#define SM_LB_MAGLEV 1
#define SM_LB_LEAST_CONN 2 /* fewest live connections per unit of weight; see lib/lb.h */

/* Longest backend list (see struct sm_svc): the most backends a least-connections service, or a
 * service with a connection limit, may have. Each connect() walks the whole list. */
#define SM_LB_MAX_LIST_BACKENDS 256

/* Default map sizes; the agent may resize before load (bpf_map__set_max_entries). */
#define SM_MAX_SERVICES 16384
#define SM_MAX_BACKEND_ENTRIES 65536
#define SM_MAX_LUT_ENTRIES 1048576
#define SM_MAX_AFFINITY_ENTRIES 65536
#define SM_MAX_REVNAT_ENTRIES 262144
/* (service, backend) pairs with a live-connection count. */
#define SM_MAX_BE_CONN_ENTRIES 65536
/* Established loopback sockets of the mesh cgroup (two per same-node connection). */
#define SM_MAX_SOCK_PAIRS 65536

/* Outlier ejection: (service, backend) pairs with failure state (sm_be_outlier_v1), and how many
 * backends of one service may be ejected at once whatever maxEjectionPercent says (the slots of
 * struct sm_svc_ejections). */
#define SM_MAX_OUTLIER_ENTRIES 65536
#define SM_OUTLIER_MAX_EJECTED 16
/* Draws from the selection table a connect makes to get past ejected backends before it takes
 * the last one anyway (never refuse for ejection alone). */
#define SM_OUTLIER_REDRAWS 4
/* Envoy's default max_ejection_time: an ejection never lasts longer, however often repeated. */
#define SM_OUTLIER_MAX_EJECTION_NS (300ULL * 1000000000ULL)

/* Workload identities (sm_ip_identity_v1, sm_cgroup_identity_v1). Numbers below
 * SM_IDENTITY_FIRST_ALLOCATED are reserved; the control plane never gives them to a principal. */
#define SM_MAX_IP_IDENTITIES 65536
#define SM_MAX_CGROUP_IDENTITIES 16384
#define SM_IDENTITY_UNKNOWN 0 /* not a known workload: the world */
#define SM_IDENTITY_HOST 1    /* the node itself */
#define SM_IDENTITY_FIRST_ALLOCATED 256
/* sm_identity.flags */
#define SM_IDENTITY_F_LOCAL 1 /* the workload runs on this node */
/* sm_flow_gate_v1[0]: whether the egress check records which local workload opens a flow */
#define SM_FLOW_GATE_RECORD 0
#define SM_FLOW_GATE_SKIP 1

/* Authorization policy (lib/policy.h). Rows hold every policy set twice for a moment while the
 * agent swaps a new compiled policy in, so size them for twice the largest policy. */
#define SM_MAX_POLICY_ROWS 65536
#define SM_MAX_POLICY_ENDPOINT_IPS 65536
#define SM_MAX_POLICY_ENDPOINT_CGROUPS 16384
/* (endpoint, source identity, policy, verdict, enforcement point) tuples counted. */
#define SM_MAX_POLICY_DECISIONS 16384
/* Connections and UDP flows of local workloads in flight between the client's egress and the
 * destination's ingress (an LRU: old flows leave by eviction). */
#define SM_MAX_FLOW_IDENTITIES 65536
#define SM_POLICY_DENIALS_BYTES (256 * 1024) /* ring buffer of denial events, a power of two */
/* sm_policy_row_key.source_identity / .port wildcards (PolicyRow in the proto). */
#define SM_POLICY_ANY_SOURCE 0xFFFFFFFFu
#define SM_POLICY_ANY_PORT 0
/* sm_policy_row_key.prefixlen of a row without source prefix: set id, identity, port and pad. A
 * row with a source prefix of N bits (IPv4 as ::ffff:a.b.c.d, so N + 96 for IPv4) adds N. */
#define SM_POLICY_ROW_FIXED_BITS 96
#define SM_POLICY_ROW_KEY_BITS (SM_POLICY_ROW_FIXED_BITS + 128)
/* sm_policy_endpoint.flags */
#define SM_POLICY_F_HAS_ALLOW 1 /* an ALLOW policy selects it: no matching row = deny */
/* Some row has a source prefix: connect() cannot know the source address, the destination decides
 */
#define SM_POLICY_F_SOURCE_ADDRESS_DEPENDENT 2
/* sm_policy_decision_key.verdict (policy_id 0 with ALLOW: no ALLOW policy selects the endpoint) */
#define SM_POLICY_ALLOW 1
#define SM_POLICY_DENY 2          /* a DENY policy matched: policy_id is it */
#define SM_POLICY_DENY_NO_MATCH 3 /* ALLOW policies select the endpoint, none matched */
#define SM_POLICY_AUDIT 4         /* an AUDIT policy matched (counted besides the verdict) */
/* sm_policy_decision_key.point: which side decided */
#define SM_POLICY_AT_CLIENT 1      /* connect()/sendmsg() of a local client */
#define SM_POLICY_AT_DESTINATION 2 /* ingress of a local workload's socket */

/* (source cgroup, service) pairs in sm_conn_stats_v1. Each entry is a per-CPU sm_conn_stats. */
#define SM_MAX_CONN_STATS 4096

/* Latency histograms (sm_conn_stats): microseconds, 4 buckets per power of two. Buckets 0..3 hold
 * 0, 1, 2 and 3 us; above that, bucket 4 + 4 * (e - 2) + s holds [(4 + s) << (e - 2),
 * (5 + s) << (e - 2)) where e = floor(log2(us)). The last bucket also takes everything above
 * (about 33 s). Adjacent bounds differ by at most 25%. */
#define SM_HIST_SUB_BUCKETS 4
#define SM_HIST_BUCKETS 100

/* IPv6 extension headers the packet parser (bpf/lib/packet.h) walks before it gives up on a
 * packet. A fixed bound keeps the verifier's work fixed; real traffic has a few at most (RFC 8200
 * 4.1: each at most once, Destination Options twice). */
#define SM_IPV6_MAX_EXT_HDRS 8

/* How many times a hook re-reads a service whose revision changed under it (a writer swapped the
 * backend set between two lookups). Two swaps inside one hook run are already implausible. */
#define SM_MAX_REV_RETRIES 3

/* Per-CPU counters (sm_counters_v1 index). Every non-default outcome of a hook has one. */
#define SM_CNT_CONNECT_XLATE 0   /* connect() to a VIP rewritten to a backend */
#define SM_CNT_SENDMSG_XLATE 1   /* UDP sendmsg() to a VIP rewritten to a backend */
#define SM_CNT_NO_BACKEND 2      /* VIP with no ready backend: refused */
#define SM_CNT_RECVMSG_REVNAT 3  /* UDP reply source rewritten back to the VIP */
#define SM_CNT_PEERNAME_REVNAT 4 /* getpeername() answered with the VIP */
#define SM_CNT_AFFINITY_HIT 5    /* session affinity reused a backend */
#define SM_CNT_AFFINITY_STALE 6  /* affinity entry expired or its backend left the set */
#define SM_CNT_REV_RETRY 7       /* selection retried because the backend set was swapped */
#define SM_CNT_INCONSISTENT 8    /* LUT or backend entry missing at a stable revision: fail open */
#define SM_CNT_REVNAT_UPDATE_FAIL 9 /* could not record VIP for reply/getpeername (map full) */
#define SM_CNT_AFFINITY_UPDATE_FAIL 10
#define SM_CNT_SC_REDIRECT 11     /* sk_msg: a send went straight to the local peer socket */
#define SM_CNT_SC_PASS 12         /* sk_msg: peer not in sm_sock_pairs_v1, normal TCP path */
#define SM_CNT_SC_INSERT_FAIL 13  /* sockops: could not add a socket to sm_sock_pairs_v1 */
#define SM_CNT_CONN_LIMIT 14      /* every backend at its connection limit: refused */
#define SM_CNT_CONN_UNTRACKED 15  /* sm_be_conns_v1 or socket storage full: connect not counted */
#define SM_CNT_CONN_STATS_FULL 16 /* sm_conn_stats_v1 full: a connection's metrics were dropped */
/* Authorization policy (lib/policy.h). */
#define SM_CNT_POLICY_DENIED_CLIENT 17  /* connect()/sendmsg() refused (EPERM) by policy */
#define SM_CNT_POLICY_DROPPED_DEST 18   /* SYN or UDP datagram dropped at the destination */
#define SM_CNT_POLICY_DECISIONS_FULL 19 /* sm_policy_decisions_v1 full: a decision not counted */
#define SM_CNT_POLICY_EVENTS_LOST 20    /* sm_policy_denials_v1 full: a denial event lost */
#define SM_CNT_FLOW_IDENTITY_FAIL 21    /* sm_flow_identity_v1 update failed */
/* Outlier ejection (lib/outlier.h). */
#define SM_CNT_OUTLIER_EJECTED 22     /* a backend was ejected after consecutive connect failures */
#define SM_CNT_OUTLIER_AVOIDED 23     /* a connect skipped an ejected backend for another */
#define SM_CNT_OUTLIER_ALL_EJECTED 24 /* only ejected backends were found: one was used anyway */
#define SM_CNT_OUTLIER_CAPPED 25      /* not ejected: maxEjectionPercent already ejected */
/* Authorization policy, continued. */
#define SM_CNT_POLICY_DROPPED_UNPARSED 26 /* to a policy endpoint, ports unreadable: dropped */
#define SM_CNT_MAX 27

#endif /* SOCKMESH_CONSTS_H_ */
