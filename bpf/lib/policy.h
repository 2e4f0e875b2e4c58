/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Authorization policy, enforced on both sides of a connection (Istio's evaluation order, see
 * CompiledPolicy in control_plane.proto):
 *  - client side: connect() and UDP sendmsg() of a local workload, on the final destination (after
 *    the load balancer), fail at once with EPERM when denied. Skipped for endpoints whose rows
 *    depend on the source address, which connect() does not know yet;
 *  - destination side: the ingress of a local workload's socket drops a denied TCP SYN or UDP
 *    datagram. The endpoint comes from the receiving socket's cgroup, so every address of the
 *    workload (::1, IPv6, another IP) is covered; the source identity from sm_flow_identity_v1
 *    (a local client's egress wrote it), else sm_ip_identity_v1, else the world (0).
 * Everything not selected by a policy is allowed and not counted (the checks fail open outside
 * what policy denies), and so is traffic other than TCP and UDP (ICMP carries ping, path MTU
 * discovery and neighbour discovery). One exception fails closed: an IP packet to a workload that
 * policies select whose transport header we cannot reach (lib/packet.h) is dropped, since it
 * could be a TCP SYN or UDP datagram hidden behind headers we do not walk. */
#ifndef SOCKMESH_BPF_LIB_POLICY_H_
#define SOCKMESH_BPF_LIB_POLICY_H_

#include <bpf/bpf_endian.h>

#include "lib/maps.h"
#include "lib/metrics.h"
#include "lib/packet.h"

#define SM_POLICY_EPERM 1
#define SM_POLICY_TCP_SYN 0x02
#define SM_POLICY_TCP_ACK 0x10

#ifndef SM_POLICY_KTIME_NS
#define SM_POLICY_KTIME_NS() bpf_ktime_get_ns()
#endif

/* What one decision is about. Addresses as in the ABI (IPv4 in addr[0]). */
struct sm_policy_query {
  __be32 saddr[4]; /* zero when unknown (connect() of an unbound socket) */
  __be32 daddr[4];
  __u32 source_identity;
  __be16 sport;
  __be16 dport;
  __u8 proto;
  __u8 family;
  __u8 point; /* SM_POLICY_AT_* */
  __u8 pad;
};

/* The outcome: verdict and deciding policy, plus the auditing policy if any. */
struct sm_policy_result {
  __u32 policy_id;
  __u32 audit_policy_id;
  __u8 verdict;
};

static __always_inline __u32 sm_policy_lowest(__u32 have, __u32 id) {
  return id && (!have || id < have) ? id : have;
}

/* Merges the row of (set, source, port) that the longest prefix of the source address matches. */
static __always_inline void sm_policy_row_match(__u32 set_id, __u32 source, __be16 port,
                                                const __be32 mapped_saddr[4],
                                                struct sm_policy_row *acc) {
  struct sm_policy_row_key key = {.prefixlen = SM_POLICY_ROW_KEY_BITS,
                                  .policy_set_id = set_id,
                                  .source_identity = source,
                                  .port = port};
  __builtin_memcpy(key.source_addr, mapped_saddr, sizeof(key.source_addr));
  const struct sm_policy_row *row = bpf_map_lookup_elem(&sm_policy_rows_v1, &key);
  if (!row) return;
  acc->deny_policy_id = sm_policy_lowest(acc->deny_policy_id, row->deny_policy_id);
  acc->allow_policy_id = sm_policy_lowest(acc->allow_policy_id, row->allow_policy_id);
  acc->audit_policy_id = sm_policy_lowest(acc->audit_policy_id, row->audit_policy_id);
}

/* The source address as the rows store it: IPv4 as ::ffff:a.b.c.d. */
static __always_inline void sm_policy_mapped_addr(const struct sm_policy_query *q, __be32 out[4]) {
  if (q->family == SM_FAMILY_V4) {
    out[0] = 0;
    out[1] = 0;
    out[2] = bpf_htonl(0x0000ffff);
    out[3] = q->saddr[0];
  } else {
    __builtin_memcpy(out, q->saddr, 16);
  }
}

/* The verdict for `q` at endpoint `ep`: four lookups, (identity, any) x (port, any). */
static __always_inline void sm_policy_evaluate(const struct sm_policy_endpoint *ep,
                                               const struct sm_policy_query *q,
                                               struct sm_policy_result *res) {
  __be32 saddr[4];
  sm_policy_mapped_addr(q, saddr);
  struct sm_policy_row acc = {};
  __u32 set = ep->policy_set_id;
  sm_policy_row_match(set, q->source_identity, q->dport, saddr, &acc);
  sm_policy_row_match(set, q->source_identity, SM_POLICY_ANY_PORT, saddr, &acc);
  sm_policy_row_match(set, SM_POLICY_ANY_SOURCE, q->dport, saddr, &acc);
  sm_policy_row_match(set, SM_POLICY_ANY_SOURCE, SM_POLICY_ANY_PORT, saddr, &acc);
  res->audit_policy_id = acc.audit_policy_id;
  if (acc.deny_policy_id) {
    res->verdict = SM_POLICY_DENY;
    res->policy_id = acc.deny_policy_id;
  } else if (!(ep->flags & SM_POLICY_F_HAS_ALLOW)) {
    res->verdict = SM_POLICY_ALLOW;
    res->policy_id = 0;
  } else if (acc.allow_policy_id) {
    res->verdict = SM_POLICY_ALLOW;
    res->policy_id = acc.allow_policy_id;
  } else {
    res->verdict = SM_POLICY_DENY_NO_MATCH;
    res->policy_id = 0;
  }
}

static __always_inline void sm_policy_count(__u32 endpoint_id, const struct sm_policy_query *q,
                                            __u32 policy_id, __u8 verdict) {
  struct sm_policy_decision_key key = {.endpoint_id = endpoint_id,
                                       .source_identity = q->source_identity,
                                       .policy_id = policy_id,
                                       .verdict = verdict,
                                       .point = q->point};
  __u64 *count = bpf_map_lookup_elem(&sm_policy_decisions_v1, &key);
  if (count) {
    *count += 1; /* per-CPU slot: no atomics needed */
    return;
  }
  __u64 one = 1;
  /* Another program on this CPU cannot interleave; another CPU writes its own slot. */
  if (bpf_map_update_elem(&sm_policy_decisions_v1, &key, &one, BPF_NOEXIST) != 0) {
    count = bpf_map_lookup_elem(&sm_policy_decisions_v1, &key);
    if (count)
      *count += 1;
    else
      sm_count(SM_CNT_POLICY_DECISIONS_FULL);
  }
}

static __always_inline void sm_policy_report_denial(const struct sm_policy_endpoint *ep,
                                                    const struct sm_policy_query *q,
                                                    const struct sm_policy_result *res) {
  struct sm_policy_denial *e =
      bpf_ringbuf_reserve(&sm_policy_denials_v1, sizeof(struct sm_policy_denial), 0);
  if (!e) {
    sm_count(SM_CNT_POLICY_EVENTS_LOST);
    return;
  }
  e->time_ns = SM_POLICY_KTIME_NS();
  __builtin_memcpy(e->saddr, q->saddr, sizeof(e->saddr));
  __builtin_memcpy(e->daddr, q->daddr, sizeof(e->daddr));
  e->source_identity = q->source_identity;
  e->endpoint_id = ep->endpoint_id;
  e->policy_id = res->policy_id;
  e->sport = q->sport;
  e->dport = q->dport;
  e->proto = q->proto;
  e->family = q->family;
  e->verdict = res->verdict;
  e->point = q->point;
  __builtin_memset(e->pad, 0, sizeof(e->pad));
  bpf_ringbuf_submit(e, 0);
}

/* Decides, counts and reports. Returns whether the connection or datagram may pass. */
static __always_inline bool sm_policy_decide(const struct sm_policy_endpoint *ep,
                                             const struct sm_policy_query *q) {
  struct sm_policy_result res = {};
  sm_policy_evaluate(ep, q, &res);
  sm_policy_count(ep->endpoint_id, q, res.policy_id, res.verdict);
  if (res.audit_policy_id)
    sm_policy_count(ep->endpoint_id, q, res.audit_policy_id, SM_POLICY_AUDIT);
  if (res.verdict == SM_POLICY_ALLOW) return true;
  sm_policy_report_denial(ep, q, &res);
  return false;
}

/* The identity of a local workload's cgroup; 0 (the world) for any other cgroup. */
static __always_inline __u32 sm_policy_cgroup_identity(__u64 cgroup_id) {
  const struct sm_identity *id = bpf_map_lookup_elem(&sm_cgroup_identity_v1, &cgroup_id);
  return id ? id->identity : SM_IDENTITY_UNKNOWN;
}

/* ---- Client side -------------------------------------------------------------------------- */

/* connect() / sendmsg() to `dst` (the final destination, after translation) by the current task.
 * Returns false when policy denies it; the caller refuses the call. */
static __always_inline bool sm_policy_client_allows(const struct sm_svc_key *dst) {
  struct sm_ip_identity_key ek = {.family = dst->family};
  __builtin_memcpy(ek.addr, dst->addr, sizeof(ek.addr));
  const struct sm_policy_endpoint *ep = bpf_map_lookup_elem(&sm_ip_policy_endpoint_v1, &ek);
  if (!ep) return true; /* no policy selects the destination */
  /* Rows keyed by source address: connect() has none yet, the destination decides. */
  if (ep->flags & SM_POLICY_F_SOURCE_ADDRESS_DEPENDENT) return true;
  struct sm_policy_query q = {
      .source_identity = sm_policy_cgroup_identity(bpf_get_current_cgroup_id()),
      .dport = dst->port,
      .proto = dst->proto,
      .family = dst->family,
      .point = SM_POLICY_AT_CLIENT};
  __builtin_memcpy(q.daddr, dst->addr, sizeof(q.daddr));
  if (sm_policy_decide(ep, &q)) return true;
  sm_count(SM_CNT_POLICY_DENIED_CLIENT);
  return false;
}

/* ---- Packets (cgroup_skb) ----------------------------------------------------------------- */

/* What sm_policy_parse() found. */
#define SM_POLICY_PKT_PASS 0       /* not IP, or IP with a transport other than TCP/UDP */
#define SM_POLICY_PKT_FLOW 1       /* a TCP segment or UDP datagram: the flow and `opens` are set */
#define SM_POLICY_PKT_UNREADABLE 2 /* IP whose TCP/UDP ports (or flags) cannot be read */

/* The 5-tuple of a TCP or UDP packet (a cgroup_skb packet starts at the IP header, IPv6 extension
 * headers are walked), and whether it opens a connection (TCP SYN without ACK; every UDP
 * datagram). */
static __always_inline int sm_policy_parse(struct __sk_buff *skb, struct sm_flow_key *flow,
                                           bool *opens) {
  __builtin_memset(flow, 0, sizeof(*flow));
  struct sm_packet pkt;
  int parsed = sm_packet_parse(skb, &pkt);
  if (parsed == SM_PACKET_NOT_IP) return SM_POLICY_PKT_PASS;
  if (parsed != SM_PACKET_L4) return SM_POLICY_PKT_UNREADABLE;
  if (pkt.l4_proto != SM_IPPROTO_TCP && pkt.l4_proto != SM_IPPROTO_UDP) return SM_POLICY_PKT_PASS;
  flow->family = pkt.family;
  flow->proto = pkt.l4_proto;
  __builtin_memcpy(flow->saddr, pkt.saddr, sizeof(flow->saddr));
  __builtin_memcpy(flow->daddr, pkt.daddr, sizeof(flow->daddr));
  __be16 ports[2];
  if (bpf_skb_load_bytes(skb, pkt.l4_offset, ports, sizeof(ports))) return SM_POLICY_PKT_UNREADABLE;
  flow->sport = ports[0];
  flow->dport = ports[1];
  if (flow->proto == SM_IPPROTO_UDP) {
    *opens = true;
    return SM_POLICY_PKT_FLOW;
  }
  __u8 flags;
  if (bpf_skb_load_bytes(skb, pkt.l4_offset + 13, &flags, 1)) return SM_POLICY_PKT_UNREADABLE;
  *opens = (flags & (SM_POLICY_TCP_SYN | SM_POLICY_TCP_ACK)) == SM_POLICY_TCP_SYN;
  return SM_POLICY_PKT_FLOW;
}

/* Egress of a mesh socket: remember which local workload opens this flow, for the destination's
 * ingress on this node. Always lets the packet through. */
static __always_inline int sm_policy_egress(struct __sk_buff *skb) {
  struct sm_flow_key flow;
  bool opens = false;
  if (sm_policy_parse(skb, &flow, &opens) != SM_POLICY_PKT_FLOW || !opens) return 1;
  __u32 identity = sm_policy_cgroup_identity(bpf_skb_cgroup_id(skb));
  if (identity == SM_IDENTITY_UNKNOWN)
    return 1; /* not a workload: the destination sees the world */
  const struct sm_identity *have = bpf_map_lookup_elem(&sm_flow_identity_v1, &flow);
  if (have && have->identity == identity) return 1; /* UDP: once per flow, not per datagram */
  struct sm_identity value = {.identity = identity, .flags = SM_IDENTITY_F_LOCAL};
  if (bpf_map_update_elem(&sm_flow_identity_v1, &flow, &value, BPF_ANY) != 0)
    sm_count(SM_CNT_FLOW_IDENTITY_FAIL);
  return 1;
}

/* Who sent a flow: a local workload (its egress recorded it), a known remote workload address, or
 * the world. */
static __always_inline __u32 sm_policy_source_identity(const struct sm_flow_key *flow) {
  const struct sm_identity *id = bpf_map_lookup_elem(&sm_flow_identity_v1, flow);
  if (id) return id->identity;
  struct sm_ip_identity_key ik = {.family = flow->family};
  __builtin_memcpy(ik.addr, flow->saddr, sizeof(ik.addr));
  id = bpf_map_lookup_elem(&sm_ip_identity_v1, &ik);
  return id ? id->identity : SM_IDENTITY_UNKNOWN;
}

/* A UDP datagram answering one that a local workload sent (its egress recorded the flow): the
 * exchange was decided when the request went out, so the reply is not a new flow. */
static __always_inline bool sm_policy_is_reply(const struct sm_flow_key *flow) {
  struct sm_flow_key back = {
      .sport = flow->dport, .dport = flow->sport, .proto = flow->proto, .family = flow->family};
  __builtin_memcpy(back.saddr, flow->daddr, sizeof(back.saddr));
  __builtin_memcpy(back.daddr, flow->saddr, sizeof(back.daddr));
  return bpf_map_lookup_elem(&sm_flow_identity_v1, &back) != NULL;
}

/* Ingress of a mesh socket: decides for a new TCP connection (SYN) or a UDP datagram to a local
 * workload that policies select, and drops an IP packet to it whose ports cannot be read. Returns
 * 1 (pass) or 0 (drop). */
static __always_inline int sm_policy_ingress(struct __sk_buff *skb) {
  struct sm_flow_key flow;
  bool opens = false;
  int parsed = sm_policy_parse(skb, &flow, &opens);
  if (parsed == SM_POLICY_PKT_PASS || (parsed == SM_POLICY_PKT_FLOW && !opens)) return 1;
  if (parsed == SM_POLICY_PKT_FLOW && flow.proto == SM_IPPROTO_UDP && sm_policy_is_reply(&flow))
    return 1;
  __u64 cgroup_id = bpf_skb_cgroup_id(skb); /* the receiving socket's cgroup */
  const struct sm_policy_endpoint *ep =
      bpf_map_lookup_elem(&sm_cgroup_policy_endpoint_v1, &cgroup_id);
  if (!ep) return 1;
  if (parsed == SM_POLICY_PKT_UNREADABLE) {
    sm_count(SM_CNT_POLICY_DROPPED_UNPARSED); /* fail closed: policy cannot see what it is */
    return 0;
  }
  struct sm_policy_query q = {.source_identity = sm_policy_source_identity(&flow),
                              .sport = flow.sport,
                              .dport = flow.dport,
                              .proto = flow.proto,
                              .family = flow.family,
                              .point = SM_POLICY_AT_DESTINATION};
  __builtin_memcpy(q.saddr, flow.saddr, sizeof(q.saddr));
  __builtin_memcpy(q.daddr, flow.daddr, sizeof(q.daddr));
  if (sm_policy_decide(ep, &q)) return 1;
  sm_count(SM_CNT_POLICY_DROPPED_DEST);
  return 0;
}

#endif /* SOCKMESH_BPF_LIB_POLICY_H_ */
