/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Connection tracking for mesh TCP connections on the client side: sockets whose connect() the
 * sock_addr hook sent to a service backend (they carry sm_sock_vip_v2 storage). sockops sees the
 * SYN go out (opened), the handshake complete (established, connect latency) and the socket reach
 * TCP_CLOSE (closed or failed, bytes, retransmits, SRTT). Everything is aggregated per (source
 * cgroup, service) in the per-CPU sm_conn_stats_v1; the per-connection state lives in socket
 * storage and is freed with the socket. The request timer (lib/request_latency.h) shares it. */
#ifndef SOCKMESH_BPF_LIB_CONN_TRACK_H_
#define SOCKMESH_BPF_LIB_CONN_TRACK_H_

#include "lib/maps.h"
#include "lib/metrics.h"
#include "lib/outlier.h"

#define SM_IPPROTO_TCP 6
#define SM_TCP_SYN_SENT 2 /* BPF_TCP_SYN_SENT */
#define SM_TCP_CLOSE 7    /* BPF_TCP_CLOSE */

/* sm_conn.flags */
#define SM_CONN_ESTABLISHED 1
#define SM_CONN_DONE 2
#define SM_CONN_H2 4         /* the client sent the HTTP/2 connection preface */
#define SM_CONN_FIRST_SEEN 8 /* the first payload segment was inspected */

/* Per-socket state of a tracked connection (kernel-only, never read by userspace). */
struct sm_conn {
  struct sm_conn_stats_key key;
  __u64 connect_ns; /* SYN sent */
  __u64 request_ns; /* first byte of the outstanding request went out; 0 = idle */
  __u32 flags;      /* SM_CONN_* */
  __u32 pad;
};

/* Tracked connections. Created by sockops when a translated socket sends its SYN; read by sockops
 * and the cgroup_skb request timer; the kernel frees an entry with its socket. */
struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct sm_conn);
} sm_conn_v1 SEC(".maps");

/* Connection and request metrics per (source cgroup, service). Written by sockops and the request
 * timer, read (summed over CPUs) by the agent's /metrics and sockmeshctl top. Entries are never
 * deleted by the kernel (counters only grow); a full map drops new pairs' metrics and counts
 * SM_CNT_CONN_STATS_FULL. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, SM_MAX_CONN_STATS);
  __type(key, struct sm_conn_stats_key);
  __type(value, struct sm_conn_stats);
} sm_conn_stats_v1 SEC(".maps");

/* Zeroes to create a sm_conn_stats entry from (too large for the BPF stack). Never written. */
static struct sm_conn_stats sm_conn_stats_zero;

#ifndef SM_KTIME_NS
#define SM_KTIME_NS() bpf_ktime_get_ns()
#endif

/* floor(log2(v)) for v > 0, without loops (BPF has no count-leading-zeros). */
static __always_inline __u32 sm_log2(__u64 v) {
  __u32 r = 0;
  if (v >> 32) {
    v >>= 32;
    r += 32;
  }
  if (v >> 16) {
    v >>= 16;
    r += 16;
  }
  if (v >> 8) {
    v >>= 8;
    r += 8;
  }
  if (v >> 4) {
    v >>= 4;
    r += 4;
  }
  if (v >> 2) {
    v >>= 2;
    r += 2;
  }
  if (v >> 1) r += 1;
  return r;
}

/* The histogram bucket of a value in microseconds (layout in consts.h). */
static __always_inline __u32 sm_hist_bucket(__u64 us) {
  if (us < SM_HIST_SUB_BUCKETS) return (__u32)us;
  __u32 e = sm_log2(us);
  __u32 b = SM_HIST_SUB_BUCKETS + (e - 2) * SM_HIST_SUB_BUCKETS + ((us >> (e - 2)) & 3);
  return b < SM_HIST_BUCKETS ? b : SM_HIST_BUCKETS - 1;
}

static __always_inline void sm_hist_record(struct sm_hist *h, __u64 us) {
  __u32 b = sm_hist_bucket(us);
  /* clang knows b < SM_HIST_BUCKETS and would drop the check the verifier needs. */
  asm volatile("" : "+r"(b));
  if (b < SM_HIST_BUCKETS) h->buckets[b] += 1;
  h->sum_us += us;
}

/* This CPU's stats of a (cgroup, service) pair, created on first use. NULL when the map is full. */
static __always_inline struct sm_conn_stats *sm_conn_stats_get(
    const struct sm_conn_stats_key *key) {
  struct sm_conn_stats *s = bpf_map_lookup_elem(&sm_conn_stats_v1, key);
  if (s) return s;
  /* BPF_NOEXIST: another CPU may have created it meanwhile, then the lookup below finds it. */
  bpf_map_update_elem(&sm_conn_stats_v1, key, &sm_conn_stats_zero, BPF_NOEXIST);
  s = bpf_map_lookup_elem(&sm_conn_stats_v1, key);
  if (!s) sm_count(SM_CNT_CONN_STATS_FULL);
  return s;
}

/* The service a translated socket dialed: its VIP as recorded by the connect hook. */
static __always_inline const struct sm_svc *sm_conn_svc(const struct sm_sock_vip *vip) {
  struct sm_svc_key key;
  __builtin_memset(&key, 0, sizeof(key));
  __builtin_memcpy(key.addr, vip->vip, sizeof(key.addr));
  key.port = vip->vip_port;
  key.proto = SM_IPPROTO_TCP;
  key.family = vip->family;
  return bpf_map_lookup_elem(&sm_svc_v1, &key);
}

static __always_inline __u32 sm_conn_svc_id(const struct sm_sock_vip *vip) {
  const struct sm_svc *svc = sm_conn_svc(vip);
  return svc ? svc->svc_id : 0;
}

/* Tells outlier detection how a connect ended (lib/outlier.h). */
static __always_inline void sm_conn_report_outcome(struct bpf_sock_ops *ops, bool established) {
  struct bpf_sock *sk = ops->sk;
  if (!sk) return;
  struct sm_sock_vip *vip = bpf_sk_storage_get(&sm_sock_vip_v2, sk, 0, 0);
  if (!vip) return;
  if (established)
    sm_outlier_connect_succeeded(vip);
  else
    sm_outlier_connect_failed(vip, sm_conn_svc(vip));
}

/* SYN about to go out (process context, inside connect()): start tracking a translated socket. */
static __always_inline void sm_conn_open(struct bpf_sock_ops *ops) {
  struct bpf_sock *sk = ops->sk;
  if (!sk) return;
  struct sm_sock_vip *vip = bpf_sk_storage_get(&sm_sock_vip_v2, sk, 0, 0);
  if (!vip) return; /* not a service connection */
  __u32 svc_id = sm_conn_svc_id(vip);
  if (!svc_id) return; /* the frontend left between connect() and now */
  struct sm_conn *c = bpf_sk_storage_get(&sm_conn_v1, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
  if (!c) return;
  c->key.cgroup_id = bpf_get_current_cgroup_id();
  c->key.svc_id = svc_id;
  c->key.pad = 0;
  c->connect_ns = SM_KTIME_NS();
  c->request_ns = 0;
  c->flags = 0;
  struct sm_conn_stats *s = sm_conn_stats_get(&c->key);
  if (s) s->opened += 1;
  bpf_sock_ops_cb_flags_set(ops, BPF_SOCK_OPS_STATE_CB_FLAG);
}

static __always_inline void sm_conn_established(struct bpf_sock_ops *ops) {
  struct bpf_sock *sk = ops->sk;
  if (!sk) return;
  struct sm_conn *c = bpf_sk_storage_get(&sm_conn_v1, sk, 0, 0);
  if (!c || (c->flags & (SM_CONN_ESTABLISHED | SM_CONN_DONE))) return;
  c->flags |= SM_CONN_ESTABLISHED;
  struct sm_conn_stats *s = sm_conn_stats_get(&c->key);
  if (!s) return;
  s->established += 1;
  sm_hist_record(&s->connect_us, (SM_KTIME_NS() - c->connect_ns) / 1000);
}

/* TCP_CLOSE: from SYN_SENT (refused, timed out, aborted) it failed, otherwise it closed. */
static __always_inline void sm_conn_close(struct bpf_sock_ops *ops) {
  struct bpf_sock *sk = ops->sk;
  if (!sk) return;
  struct sm_conn *c = bpf_sk_storage_get(&sm_conn_v1, sk, 0, 0);
  if (!c || (c->flags & SM_CONN_DONE)) return;
  c->flags |= SM_CONN_DONE;
  struct sm_conn_stats *s = sm_conn_stats_get(&c->key);
  if (!s) return;
  if (!(c->flags & SM_CONN_ESTABLISHED)) {
    s->failed += 1;
    return;
  }
  s->closed += 1;
  s->bytes_sent += ops->bytes_acked;
  s->bytes_received += ops->bytes_received;
  s->retransmits += ops->total_retrans;
  sm_hist_record(&s->srtt_us, ops->srtt_us >> 3); /* the kernel keeps srtt << 3 */
}

/* sockops entry: only the callbacks a tracked connection asked for do any work. */
static __always_inline int sm_conn_track(struct bpf_sock_ops *ops) {
  switch (ops->op) {
    case BPF_SOCK_OPS_TCP_CONNECT_CB:
      sm_conn_open(ops);
      break;
    case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
      sm_conn_established(ops);
      sm_conn_report_outcome(ops, true);
      break;
    case BPF_SOCK_OPS_STATE_CB:
      if (ops->args[1] != SM_TCP_CLOSE) break;
      if (ops->args[0] == SM_TCP_SYN_SENT) sm_conn_report_outcome(ops, false);
      sm_conn_close(ops);
      break;
  }
  return 1;
}

#endif /* SOCKMESH_BPF_LIB_CONN_TRACK_H_ */
