/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Same-node short-circuit. sockops puts every established loopback TCP socket of the mesh cgroup
 * into sm_sock_pairs_v1 under its own 4-tuple; sk_msg, run on each send of such a socket, looks up
 * the peer (the same 4-tuple seen from the other end) and moves the data onto the peer's receive
 * queue, skipping TCP/IP. A peer that is not in the map (outside the mesh cgroup, or a remote
 * host) is not an error: the send takes the normal path. Both hooks fail open. */
#ifndef SOCKMESH_BPF_LIB_SHORT_CIRCUIT_H_
#define SOCKMESH_BPF_LIB_SHORT_CIRCUIT_H_

#include <bpf/bpf_endian.h>

#include "lib/maps.h"
#include "lib/metrics.h"

#define SM_AF_INET 2
#define SM_AF_INET6 10

/* Overridable so that a test program can mock the helpers (STYLE: BPF code). */
#ifndef SM_SOCK_HASH_UPDATE
#define SM_SOCK_HASH_UPDATE bpf_sock_hash_update
#endif
#ifndef SM_MSG_REDIRECT_HASH
#define SM_MSG_REDIRECT_HASH bpf_msg_redirect_hash
#endif

/* bpf_sock_ops.remote_port and sk_msg_md.remote_port hold the __be16 port, but the kernel's ctx
 * rewrite puts it in the upper 16 bits on little-endian machines (it loads skc_dport and shifts),
 * and a future kernel may not shift. A connected socket's port is never 0, so whichever half is
 * non-zero is the port. local_port is host order in both contexts. */
static __always_inline __be16 sm_ctx_remote_port(__u32 raw) {
  return (__be16)(raw >> 16 ? raw >> 16 : raw & 0xffff);
}

static __always_inline __be16 sm_ctx_local_port(__u32 raw) { return bpf_htons((__u16)raw); }

static __always_inline bool sm_v4_mapped(const __u32 a[4]) {
  return a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0x0000ffff);
}

static __always_inline bool sm_loopback4(__be32 a) { return (bpf_ntohl(a) >> 24) == 127; }

/* Fills `key` from a socket's addresses (ctx field copies). Returns false when the connection is
 * not a loopback one: only those can have a peer socket on this node that we can find by 4-tuple
 * (a connection to the node's own non-loopback address would too, but is left on the normal path
 * to keep the map small). */
static __always_inline bool sm_fill_key(struct sm_sock_key *key, __u32 family, const __u32 l6[4],
                                        const __u32 r6[4], __u32 l4, __u32 r4, __u32 lport,
                                        __u32 rport) {
  key->local_port = sm_ctx_local_port(lport);
  key->remote_port = sm_ctx_remote_port(rport);
  if (family == SM_AF_INET) {
    key->family = SM_FAMILY_V4;
    key->local[0] = l4;
    key->remote[0] = r4;
    return sm_loopback4(r4);
  }
  if (family != SM_AF_INET6) return false;
  if (sm_v4_mapped(r6) && sm_v4_mapped(l6)) {
    /* Stored as IPv4 so that an AF_INET peer socket finds this one and vice versa. */
    key->family = SM_FAMILY_V4;
    key->local[0] = l6[3];
    key->remote[0] = r6[3];
    return sm_loopback4(r6[3]);
  }
  key->family = SM_FAMILY_V6;
#pragma unroll
  for (int i = 0; i < 4; i++) {
    key->local[i] = l6[i];
    key->remote[i] = r6[i];
  }
  return r6[0] == 0 && r6[1] == 0 && r6[2] == 0 && r6[3] == bpf_htonl(1); /* ::1 */
}

/* sockops: on established (either side), remember the socket. Other ops are ignored. */
static __always_inline int sm_sockops_track(struct bpf_sock_ops *ops) {
  if (ops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB &&
      ops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB) {
    return 1;
  }
  /* Copies: the verifier wants ctx fields read one by one, not through a pointer. */
  __u32 l6[4] = {ops->local_ip6[0], ops->local_ip6[1], ops->local_ip6[2], ops->local_ip6[3]};
  __u32 r6[4] = {ops->remote_ip6[0], ops->remote_ip6[1], ops->remote_ip6[2], ops->remote_ip6[3]};
  struct sm_sock_key key = {};
  if (!sm_fill_key(&key, ops->family, l6, r6, ops->local_ip4, ops->remote_ip4, ops->local_port,
                   ops->remote_port)) {
    return 1;
  }
  /* Fail open: a socket that is not in the map simply keeps the normal path. */
  if (SM_SOCK_HASH_UPDATE(ops, &sm_sock_pairs_v1, &key, BPF_ANY) != 0) {
    sm_count(SM_CNT_SC_INSERT_FAIL);
  }
  return 1;
}

/* sk_msg: redirect to the peer's ingress queue when the peer is a tracked socket. */
static __always_inline int sm_skmsg_redirect(struct sk_msg_md *msg) {
  __u32 l6[4] = {msg->local_ip6[0], msg->local_ip6[1], msg->local_ip6[2], msg->local_ip6[3]};
  __u32 r6[4] = {msg->remote_ip6[0], msg->remote_ip6[1], msg->remote_ip6[2], msg->remote_ip6[3]};
  struct sm_sock_key self = {};
  if (!sm_fill_key(&self, msg->family, l6, r6, msg->local_ip4, msg->remote_ip4, msg->local_port,
                   msg->remote_port)) {
    sm_count(SM_CNT_SC_PASS);
    return SK_PASS;
  }
  struct sm_sock_key peer = {
      .local_port = self.remote_port, .remote_port = self.local_port, .family = self.family};
#pragma unroll
  for (int i = 0; i < 4; i++) {
    peer.local[i] = self.remote[i];
    peer.remote[i] = self.local[i];
  }
  /* SK_DROP here means "no such peer" (the helper changes nothing then): pass instead. */
  if (SM_MSG_REDIRECT_HASH(msg, &sm_sock_pairs_v1, &peer, BPF_F_INGRESS) == SK_PASS) {
    sm_count(SM_CNT_SC_REDIRECT);
    return SK_PASS;
  }
  sm_count(SM_CNT_SC_PASS);
  return SK_PASS;
}

#endif /* SOCKMESH_BPF_LIB_SHORT_CIRCUIT_H_ */
