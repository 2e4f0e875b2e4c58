/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The logic behind the cgroup sock_addr hooks: reading the dialed address out of a bpf_sock_addr,
 * forward translation (VIP -> backend) and reverse translation (backend -> VIP). The hook entry
 * points in progs/sock_addr.bpf.c only call these. */
#ifndef SOCKMESH_BPF_LIB_SOCK_ADDR_H_
#define SOCKMESH_BPF_LIB_SOCK_ADDR_H_

#include <bpf/bpf_endian.h>

#include "lib/lb.h"
#include "lib/policy.h"

#define SM_SYS_ALLOW 1
#define SM_SYS_REJECT 0
#define SM_ECONNREFUSED 111

#ifndef SM_GET_SOCKET_COOKIE
#define SM_GET_SOCKET_COOKIE(ctx) bpf_get_socket_cookie(ctx)
#endif
#ifndef SM_GET_NETNS_COOKIE
#define SM_GET_NETNS_COOKIE(ctx) bpf_get_netns_cookie(ctx)
#endif

/* Context fields must be read with constant offsets from ctx itself; clang would otherwise reuse a
 * derived pointer (ctx + 16), which the verifier rejects. Read each word once into locals. */
static __always_inline void sm_read_user_ip6(const struct bpf_sock_addr *ctx, __be32 out[4]) {
  out[0] = ctx->user_ip6[0];
  out[1] = ctx->user_ip6[1];
  out[2] = ctx->user_ip6[2];
  out[3] = ctx->user_ip6[3];
  asm volatile("" ::: "memory");
}

/* A dual-stack socket dialing ::ffff:a.b.c.d reaches IPv4 services: treat it as IPv4. */
static __always_inline bool sm_is_v4_mapped(const __be32 ip6[4]) {
  return ip6[0] == 0 && ip6[1] == 0 && ip6[2] == bpf_htonl(0x0000ffff);
}

/* The frontend the caller addressed, as a sm_svc_key (also used for reverse lookups). */
static __always_inline void sm_dialed_key(const struct bpf_sock_addr *ctx, bool v6,
                                          struct sm_svc_key *key) {
  __builtin_memset(key, 0, sizeof(*key));
  key->port = (__be16)ctx->user_port; /* low 16 bits hold the port in network order */
  key->proto = (__u8)ctx->protocol;
  if (!v6) {
    key->family = SM_FAMILY_V4;
    key->addr[0] = ctx->user_ip4;
    return;
  }
  __be32 ip6[4];
  sm_read_user_ip6(ctx, ip6);
  if (sm_is_v4_mapped(ip6)) {
    key->family = SM_FAMILY_V4;
    key->addr[0] = ip6[3];
  } else {
    key->family = SM_FAMILY_V6;
    __builtin_memcpy(key->addr, ip6, sizeof(ip6));
  }
}

/* Writes addr/port into the call's destination (or, for recvmsg/getpeername, the reported peer). */
static __always_inline void sm_set_user_addr(struct bpf_sock_addr *ctx, bool v6, __u8 family,
                                             const __be32 addr[4], __be16 port) {
  ctx->user_port = (__u32)port;
  if (!v6) {
    ctx->user_ip4 = addr[0];
  } else if (family == SM_FAMILY_V4) {
    ctx->user_ip6[3] = addr[0]; /* v4-mapped: the ::ffff: prefix is already there */
  } else {
    ctx->user_ip6[0] = addr[0];
    ctx->user_ip6[1] = addr[1];
    ctx->user_ip6[2] = addr[2];
    ctx->user_ip6[3] = addr[3];
  }
}

/* Maglev's key: the bound source address and port when the socket has them (a client that pins its
 * source port gets the same backend every time), otherwise the socket itself. */
static __always_inline __u32 sm_flow_hash(struct bpf_sock_addr *ctx, bool v6, __u8 proto) {
  struct bpf_sock *sk = ctx->sk;
  if (sk && sk->src_port) {
    __u64 addr = v6 ? ((__u64)sk->src_ip6[0] << 32 | sk->src_ip6[1]) ^
                          ((__u64)sk->src_ip6[2] << 32 | sk->src_ip6[3])
                    : sk->src_ip4;
    return sm_hash_words(addr, (__u64)sk->src_port << 8 | proto);
  }
  return sm_hash_words(SM_GET_SOCKET_COOKIE(ctx), SM_GET_NETNS_COOKIE(ctx));
}

/* How the caller reaches the hook: connect() pins a socket to one peer, sendmsg() does not. */
enum sm_call { SM_CALL_CONNECT, SM_CALL_SENDMSG };

/* A connected socket keeps its VIP in socket-local storage: freed with the socket, never evicted.
 * It also records the connection count the selection took; when there is no storage to record it
 * in, the count is given back at once (uncounted rather than leaked). */
static __always_inline void sm_sock_vip_record(struct bpf_sock_addr *ctx,
                                               const struct sm_backend *be,
                                               const struct sm_svc_key *frontend,
                                               const struct sm_conn_ref *held) {
  struct bpf_sock *sk = ctx->sk;
  struct sm_sock_vip *v =
      sk ? bpf_sk_storage_get(&sm_sock_vip_v2, sk, 0, BPF_SK_STORAGE_GET_F_CREATE) : NULL;
  if (!v) {
    sm_count(SM_CNT_REVNAT_UPDATE_FAIL);
    if (held->backend_id) {
      sm_conn_put(held->svc_id, held->backend_id);
      sm_count(SM_CNT_CONN_UNTRACKED);
    }
    return;
  }
  __builtin_memcpy(v->vip, frontend->addr, sizeof(v->vip));
  __builtin_memcpy(v->backend, be->addr, sizeof(v->backend));
  v->vip_port = frontend->port;
  v->backend_port = be->port;
  v->family = be->family;
  v->svc_id = held->svc_id;
  v->backend_id = held->backend_id;
}

/* A socket that connect()s again (after a failed attempt, or after AF_UNSPEC) gives back the count
 * of its previous connect first, whatever it dials now. */
static __always_inline void sm_sock_conn_reconnect(struct bpf_sock_addr *ctx) {
  struct bpf_sock *sk = ctx->sk;
  if (sk) sm_sock_conn_release(bpf_sk_storage_get(&sm_sock_vip_v2, sk, 0, 0));
}

/* An unconnected UDP socket may send to many VIPs: key the VIP by (socket, backend). */
static __always_inline void sm_revnat_record(struct bpf_sock_addr *ctx, const struct sm_backend *be,
                                             const struct sm_svc_key *frontend) {
  struct sm_revnat_key key = {
      .cookie = SM_GET_SOCKET_COOKIE(ctx), .port = be->port, .family = be->family};
  __builtin_memcpy(key.addr, be->addr, sizeof(key.addr));
  struct sm_revnat_val val = {.port = frontend->port, .family = frontend->family};
  __builtin_memcpy(val.addr, frontend->addr, sizeof(val.addr));
  if (bpf_map_update_elem(&sm_revnat_v1, &key, &val, BPF_ANY) != 0)
    sm_count(SM_CNT_REVNAT_UPDATE_FAIL);
}

/* connect() and UDP sendmsg(): VIP -> backend. Fails open for anything that is not a service with
 * a consistent backend set; refuses (ECONNREFUSED) a service with no backend, like kube-proxy, and
 * a TCP connect when every backend is at the service's connection limit. */
static __always_inline int sm_sock_forward(struct bpf_sock_addr *ctx, bool v6, enum sm_call call) {
  struct sm_svc_key key;
  sm_dialed_key(ctx, v6, &key);
  struct sm_flow flow = {.netns_cookie = SM_GET_NETNS_COOKIE(ctx)};
  flow.hash = sm_flow_hash(ctx, v6, key.proto);
  if (call == SM_CALL_CONNECT && key.proto == IPPROTO_TCP) {
    sm_sock_conn_reconnect(ctx);
    flow.track = 1;
  }

  struct sm_backend be;
  struct sm_conn_ref held;
  switch (sm_lb_select(&key, &flow, &be, &held)) {
    case SM_SELECT_OK:
      break;
    case SM_SELECT_NO_BACKEND:
      sm_count(SM_CNT_NO_BACKEND);
      bpf_set_retval(-SM_ECONNREFUSED);
      return SM_SYS_REJECT;
    case SM_SELECT_OVER_LIMIT:
      sm_count(SM_CNT_CONN_LIMIT);
      bpf_set_retval(-SM_ECONNREFUSED);
      return SM_SYS_REJECT;
    default:
      return SM_SYS_ALLOW;
  }
  if (be.family != key.family) { /* the agent never mixes families; fail open if it did */
    if (held.backend_id) sm_conn_put(held.svc_id, held.backend_id);
    sm_count(SM_CNT_INCONSISTENT);
    return SM_SYS_ALLOW;
  }
  sm_set_user_addr(ctx, v6, be.family, be.addr, be.port);
  if (call == SM_CALL_CONNECT) {
    sm_sock_vip_record(ctx, &be, &key, &held);
    sm_count(SM_CNT_CONNECT_XLATE);
  } else {
    sm_revnat_record(ctx, &be, &key);
    sm_count(SM_CNT_SENDMSG_XLATE);
  }
  return SM_SYS_ALLOW;
}

/* Authorization of where the call really goes (after translation, or a backend dialed directly).
 * A denied connect() or sendmsg() fails at once with EPERM; a TCP socket gives back the backend
 * connection count the translation took. */
static __always_inline int sm_sock_authorize(struct bpf_sock_addr *ctx, bool v6,
                                             enum sm_call call) {
  struct sm_svc_key dst;
  sm_dialed_key(ctx, v6, &dst);
  if (sm_policy_client_allows(&dst)) return SM_SYS_ALLOW;
  if (call == SM_CALL_CONNECT && dst.proto == IPPROTO_TCP) sm_sock_conn_reconnect(ctx);
  bpf_set_retval(-SM_POLICY_EPERM);
  return SM_SYS_REJECT;
}

/* connect() and sendmsg(): load balancing, then policy. */
static __always_inline int sm_sock_outbound(struct bpf_sock_addr *ctx, bool v6, enum sm_call call) {
  if (sm_sock_forward(ctx, v6, call) != SM_SYS_ALLOW) return SM_SYS_REJECT;
  return sm_sock_authorize(ctx, v6, call);
}

static __always_inline bool sm_addr_equal(const __be32 a[4], const __be32 b[4]) {
  return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

/* recvmsg() and getpeername(): backend -> VIP, for sockets whose traffic we translated. */
static __always_inline int sm_sock_reverse(struct bpf_sock_addr *ctx, bool v6, __u32 counter) {
  struct sm_svc_key peer;
  sm_dialed_key(ctx, v6, &peer);

  struct bpf_sock *sk = ctx->sk;
  struct sm_sock_vip *conn = sk ? bpf_sk_storage_get(&sm_sock_vip_v2, sk, 0, 0) : NULL;
  if (conn && conn->family == peer.family && conn->backend_port == peer.port &&
      sm_addr_equal(conn->backend, peer.addr)) {
    sm_set_user_addr(ctx, v6, conn->family, conn->vip, conn->vip_port);
    sm_count(counter);
    return SM_SYS_ALLOW;
  }

  struct sm_revnat_key key = {
      .cookie = SM_GET_SOCKET_COOKIE(ctx), .port = peer.port, .family = peer.family};
  __builtin_memcpy(key.addr, peer.addr, sizeof(key.addr));
  const struct sm_revnat_val *vip = bpf_map_lookup_elem(&sm_revnat_v1, &key);
  if (!vip) return SM_SYS_ALLOW;
  sm_set_user_addr(ctx, v6, vip->family, vip->addr, vip->port);
  sm_count(counter);
  return SM_SYS_ALLOW;
}

/* cgroup/sock_release: a closed socket gives back its connection count. */
static __always_inline int sm_sock_released(struct bpf_sock *sk) {
  sm_sock_conn_release(bpf_sk_storage_get(&sm_sock_vip_v2, sk, 0, 0));
  return SM_SYS_ALLOW;
}

#endif /* SOCKMESH_BPF_LIB_SOCK_ADDR_H_ */
