/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Request latency of tracked connections (lib/conn_track.h), timed in cgroup_skb with no
 * per-request userspace work: a client segment with payload while the connection is idle starts a
 * request; the first server segment with payload after it ends it, and the time between goes into
 * the (cgroup, service) histogram.
 *
 * This is exact for one request at a time per connection (HTTP/1.1 keep-alive, gRPC unary calls
 * issued one after another). Approximations: pipelined HTTP/1.1 requests or concurrent HTTP/2
 * streams on one connection are timed as one request (first request out to first response
 * byte in). HTTP/2 control frames do not count as request or response: a connection that starts
 * with the client preface is parsed frame by frame (up to SM_H2_MAX_FRAMES headers per segment),
 * and only segments carrying DATA, HEADERS or CONTINUATION frames start or end a request, so
 * SETTINGS, PING, WINDOW_UPDATE and their ACKs are ignored. A frame split across segments is
 * parsed from its header only; a segment that starts inside a frame is skipped when it is a
 * continuation of a request already timed, but may be misread otherwise. */
#ifndef SOCKMESH_BPF_LIB_REQUEST_LATENCY_H_
#define SOCKMESH_BPF_LIB_REQUEST_LATENCY_H_

#include <bpf/bpf_endian.h>

#include "lib/conn_track.h"
#include "lib/packet.h"

#define SM_H2_PREFACE_LEN 24
#define SM_H2_FRAME_HDR_LEN 9
#define SM_H2_MAX_FRAMES 8
#define SM_H2_DATA 0
#define SM_H2_HEADERS 1
#define SM_H2_CONTINUATION 9
#define SM_SKB_PASS 1

/* Where the TCP payload of a cgroup_skb packet starts, or 0 when the packet carries none. IPv6
 * extension headers are walked: a socket with IPV6_DSTOPTS or IPV6_HOPOPTS, or its peer, puts
 * them on every segment. */
static __always_inline __u32 sm_tcp_payload_offset(struct __sk_buff *skb) {
  struct sm_packet pkt;
  if (sm_packet_parse(skb, &pkt) != SM_PACKET_L4 || pkt.l4_proto != SM_IPPROTO_TCP) return 0;
  __u8 doff;
  if (bpf_skb_load_bytes(skb, pkt.l4_offset + 12, &doff, 1)) return 0;
  __u32 off = pkt.l4_offset + (__u32)(doff >> 4) * 4;
  return off < skb->len ? off : 0;
}

/* "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" starts with these 8 bytes. */
static __always_inline bool sm_is_h2_preface(struct __sk_buff *skb, __u32 off) {
  __u64 head;
  if (bpf_skb_load_bytes(skb, off, &head, sizeof(head))) return false;
  return head == ((__u64)'P' | (__u64)'R' << 8 | (__u64)'I' << 16 | (__u64)' ' << 24 |
                  (__u64)'*' << 32 | (__u64)' ' << 40 | (__u64)'H' << 48 | (__u64)'T' << 56);
}

/* Whether an HTTP/2 segment carries a request or response (DATA/HEADERS/CONTINUATION frame) rather
 * than only connection control frames. */
static __always_inline bool sm_h2_carries_message(struct __sk_buff *skb, __u32 off) {
  for (int i = 0; i < SM_H2_MAX_FRAMES; i++) {
    if (off + SM_H2_FRAME_HDR_LEN > skb->len) return false;
    __u8 hdr[SM_H2_FRAME_HDR_LEN];
    if (bpf_skb_load_bytes(skb, off, hdr, sizeof(hdr))) return false;
    __u8 type = hdr[3];
    if (type == SM_H2_DATA || type == SM_H2_HEADERS || type == SM_H2_CONTINUATION) return true;
    off += SM_H2_FRAME_HDR_LEN + ((__u32)hdr[0] << 16 | (__u32)hdr[1] << 8 | hdr[2]);
  }
  return false;
}

/* The tracked connection of a packet's full socket `sk`, NULL for every other socket (one storage
 * lookup). */
static __always_inline struct sm_conn *sm_skb_conn(struct bpf_sock *sk) {
  return sk ? bpf_sk_storage_get(&sm_conn_v1, sk, 0, 0) : NULL;
}

/* Client -> server, on the packet's full socket `sk` (NULL: none). Always lets the packet
 * through. */
static __always_inline int sm_request_egress(struct __sk_buff *skb, struct bpf_sock *sk) {
  struct sm_conn *c = sm_skb_conn(sk);
  if (!c || c->request_ns || !(c->flags & SM_CONN_ESTABLISHED)) return SM_SKB_PASS;
  __u32 off = sm_tcp_payload_offset(skb);
  if (!off) return SM_SKB_PASS;
  if (!(c->flags & SM_CONN_FIRST_SEEN)) {
    c->flags |= SM_CONN_FIRST_SEEN;
    if (sm_is_h2_preface(skb, off)) {
      c->flags |= SM_CONN_H2;
      off += SM_H2_PREFACE_LEN;
    }
  }
  if ((c->flags & SM_CONN_H2) && !sm_h2_carries_message(skb, off)) return SM_SKB_PASS;
  c->request_ns = SM_KTIME_NS();
  return SM_SKB_PASS;
}

/* Server -> client: the first response bytes end the outstanding request. */
static __always_inline int sm_request_ingress(struct __sk_buff *skb, struct bpf_sock *sk) {
  struct sm_conn *c = sm_skb_conn(sk);
  if (!c || !c->request_ns) return SM_SKB_PASS;
  __u32 off = sm_tcp_payload_offset(skb);
  if (!off) return SM_SKB_PASS;
  if ((c->flags & SM_CONN_H2) && !sm_h2_carries_message(skb, off)) return SM_SKB_PASS;
  __u64 elapsed_ns = SM_KTIME_NS() - c->request_ns;
  c->request_ns = 0;
  struct sm_conn_stats *s = sm_conn_stats_get(&c->key);
  if (!s) return SM_SKB_PASS;
  s->requests += 1;
  sm_hist_record(&s->request_us, elapsed_ns / 1000);
  return SM_SKB_PASS;
}

#endif /* SOCKMESH_BPF_LIB_REQUEST_LATENCY_H_ */
