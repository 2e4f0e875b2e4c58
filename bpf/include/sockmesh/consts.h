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

/* (source cgroup, service) pairs in sm_conn_stats_v1. Each entry is a per-CPU sm_conn_stats. */
#define SM_MAX_CONN_STATS 4096

/* Latency histograms (sm_conn_stats): microseconds, 4 buckets per power of two. Buckets 0..3 hold
 * 0, 1, 2 and 3 us; above that, bucket 4 + 4 * (e - 2) + s holds [(4 + s) << (e - 2),
 * (5 + s) << (e - 2)) where e = floor(log2(us)). The last bucket also takes everything above
 * (about 33 s). Adjacent bounds differ by at most 25%. */
#define SM_HIST_SUB_BUCKETS 4
#define SM_HIST_BUCKETS 100

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
/* Outlier ejection (lib/outlier.h). */
#define SM_CNT_OUTLIER_EJECTED 24     /* a backend was ejected after consecutive connect failures */
#define SM_CNT_OUTLIER_AVOIDED 25     /* a connect skipped an ejected backend for another */
#define SM_CNT_OUTLIER_ALL_EJECTED 26 /* only ejected backends were found: one was used anyway */
#define SM_CNT_OUTLIER_CAPPED 27      /* not ejected: maxEjectionPercent already ejected */
#define SM_CNT_MAX 28

#endif /* SOCKMESH_CONSTS_H_ */
