/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The network layer of a cgroup_skb packet, down to its transport header. A cgroup_skb program
 * sees the packet from the IP header on, extension headers included: on ingress the kernel has
 * already processed them (the socket's filter runs in tcp_v6_rcv/udpv6_rcv), but the data it hands
 * the program still starts at the network header. A peer chooses those headers (IPV6_DSTOPTS,
 * IPV6_HOPOPTS, routing headers), so a check that stops at a fixed 40-byte IPv6 header can be
 * walked around.
 *
 * Fragments: cgroup_skb sees whole packets. Ingress runs at socket delivery, after the IP layer
 * has reassembled (ip_local_deliver / ipv6_frag_rcv); IPv6 reassembly also removes the Fragment
 * header. Egress runs in ip_finish_output / ip6_finish_output before the packet is fragmented. What
 * remains is an atomic fragment (RFC 6946: a Fragment header with offset 0 and no more fragments,
 * which Linux delivers with the header in place) and, in theory, a first fragment; both carry the
 * transport header. A packet that is not a first fragment carries no ports, so it is unreadable. */
#ifndef SOCKMESH_BPF_LIB_PACKET_H_
#define SOCKMESH_BPF_LIB_PACKET_H_

#include <bpf/bpf_endian.h>

#include "lib/maps.h"

#define SM_ETH_P_IP 0x0800
#define SM_ETH_P_IPV6 0x86DD
#define SM_IPPROTO_HOPOPTS 0
#define SM_IPPROTO_TCP 6
#define SM_IPPROTO_UDP 17
#define SM_IPPROTO_ROUTING 43
#define SM_IPPROTO_FRAGMENT 44
#define SM_IPPROTO_ESP 50
#define SM_IPPROTO_AH 51
#define SM_IPPROTO_NONE 59
#define SM_IPPROTO_DSTOPTS 60
#define SM_IPV6_HDR_LEN 40
#define SM_IPV6_FRAG_OFFSET 0xfff8 /* fragment offset bits of the Fragment header (host order) */
#define SM_IPV4_FRAG_OFFSET 0x1fff /* fragment offset bits of iphdr.frag_off (host order) */

/* What sm_packet_parse() found. UNREADABLE: IP, but its transport header cannot be reached (more
 * extension headers than SM_IPV6_MAX_EXT_HDRS, ESP, "no next header", a non-first fragment, or a
 * truncated header). */
#define SM_PACKET_NOT_IP 0
#define SM_PACKET_L4 1 /* the transport header: l4_proto at l4_offset */
#define SM_PACKET_UNREADABLE 2

struct sm_packet {
  __be32 saddr[4]; /* network order; IPv4 in [0] */
  __be32 daddr[4]; /* network order; IPv4 in [0] */
  __u32 l4_offset; /* bytes from the IP header to the transport header */
  __u8 l4_proto;   /* IPPROTO_* of the transport header */
  __u8 family;     /* SM_FAMILY_V4 / SM_FAMILY_V6 */
};

/* The headers that only lead to the next one. AH is one in IPv4 too; the others are IPv6's. */
static __always_inline bool sm_is_ext_hdr(__u8 proto, bool ipv6) {
  if (proto == SM_IPPROTO_AH) return true;
  return ipv6 && (proto == SM_IPPROTO_HOPOPTS || proto == SM_IPPROTO_ROUTING ||
                  proto == SM_IPPROTO_DSTOPTS || proto == SM_IPPROTO_FRAGMENT);
}

/* Follows the header chain from `proto` at `off` to the transport header. */
static __always_inline int sm_packet_walk(struct __sk_buff *skb, __u8 proto, __u32 off, bool ipv6,
                                          struct sm_packet *pkt) {
  for (int i = 0; i < SM_IPV6_MAX_EXT_HDRS && sm_is_ext_hdr(proto, ipv6); i++) {
    /* Every extension header starts with (next header, length); only Fragment has no length. */
    __u8 hdr[4];
    if (bpf_skb_load_bytes(skb, off, hdr, sizeof(hdr))) return SM_PACKET_UNREADABLE;
    __u8 next = hdr[0];
    if (proto == SM_IPPROTO_FRAGMENT) {
      if (((__u16)hdr[2] << 8 | hdr[3]) & SM_IPV6_FRAG_OFFSET) return SM_PACKET_UNREADABLE;
      off += 8;
    } else if (proto == SM_IPPROTO_AH) {
      off += ((__u32)hdr[1] + 2) * 4; /* RFC 4302: 32-bit words, minus 2 */
    } else {
      off += ((__u32)hdr[1] + 1) * 8; /* RFC 8200: 8-octet units, not counting the first 8 */
    }
    proto = next;
  }
  /* ESP encrypts what follows; "no next header" has nothing; a longer chain we do not walk. */
  if (sm_is_ext_hdr(proto, ipv6) || proto == SM_IPPROTO_ESP || proto == SM_IPPROTO_NONE)
    return SM_PACKET_UNREADABLE;
  pkt->l4_proto = proto;
  pkt->l4_offset = off;
  return SM_PACKET_L4;
}

/* Addresses and transport header of a cgroup_skb packet (it starts at the IP header). */
static __always_inline int sm_packet_parse(struct __sk_buff *skb, struct sm_packet *pkt) {
  __builtin_memset(pkt, 0, sizeof(*pkt));
  if (skb->protocol == bpf_htons(SM_ETH_P_IP)) {
    struct iphdr ip;
    if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip))) return SM_PACKET_UNREADABLE;
    pkt->family = SM_FAMILY_V4;
    pkt->saddr[0] = ip.saddr;
    pkt->daddr[0] = ip.daddr;
    if (ip.frag_off & bpf_htons(SM_IPV4_FRAG_OFFSET)) return SM_PACKET_UNREADABLE;
    if (ip.ihl < 5) return SM_PACKET_UNREADABLE;
    return sm_packet_walk(skb, ip.protocol, (__u32)ip.ihl * 4, false, pkt);
  }
  if (skb->protocol == bpf_htons(SM_ETH_P_IPV6)) {
    struct ipv6hdr ip6;
    if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6))) return SM_PACKET_UNREADABLE;
    pkt->family = SM_FAMILY_V6;
    __builtin_memcpy(pkt->saddr, &ip6.saddr, 16);
    __builtin_memcpy(pkt->daddr, &ip6.daddr, 16);
    return sm_packet_walk(skb, ip6.nexthdr, SM_IPV6_HDR_LEN, true, pkt);
  }
  return SM_PACKET_NOT_IP;
}

#endif /* SOCKMESH_BPF_LIB_PACKET_H_ */
