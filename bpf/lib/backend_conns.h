/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Live TCP connections per (service, backend) in sm_be_conns_v1, for least-connections and the
 * per-backend connection limit.
 *
 * A socket holds at most one count, recorded in its socket-local storage (sm_sock_vip.svc_id,
 * backend_id): the connect hook takes it when it sends the socket to a backend, and gives back any
 * count the socket already held first (a socket may connect() again after a failed attempt or
 * after AF_UNSPEC). The sock_release hook gives it back when the socket is closed. connect() and
 * release of one socket never run at the same time (release runs once the last file reference is
 * gone), so reading and clearing the storage fields needs no atomics; the shared counters do.
 *
 * A socket counts from connect() until it is closed or connects again: a connect that the backend
 * refuses keeps its count until the application closes the socket. */
#ifndef SOCKMESH_BPF_LIB_BACKEND_CONNS_H_
#define SOCKMESH_BPF_LIB_BACKEND_CONNS_H_

#include "lib/maps.h"
#include "lib/metrics.h"

static __always_inline __u64 sm_conns_of(__u32 svc_id, __u32 backend_id) {
  struct sm_be_conn_key key = {.svc_id = svc_id, .backend_id = backend_id};
  const __u64 *count = bpf_map_lookup_elem(&sm_be_conns_v1, &key);
  return count ? *count : 0;
}

/* The counter of (svc_id, backend_id), created at zero on first use; NULL when the map is full. */
static __always_inline __u64 *sm_conns_slot(__u32 svc_id, __u32 backend_id) {
  struct sm_be_conn_key key = {.svc_id = svc_id, .backend_id = backend_id};
  __u64 *count = bpf_map_lookup_elem(&sm_be_conns_v1, &key);
  if (count) return count;
  __u64 zero = 0;
  /* NOEXIST: another CPU may create it first; either way the lookup below finds one entry. */
  bpf_map_update_elem(&sm_be_conns_v1, &key, &zero, BPF_NOEXIST);
  return bpf_map_lookup_elem(&sm_be_conns_v1, &key);
}

enum sm_acquire_result {
  SM_ACQUIRE_OK,        /* one count taken: the socket must record it */
  SM_ACQUIRE_UNTRACKED, /* no room to count: connect proceeds uncounted (fail open) */
  SM_ACQUIRE_FULL,      /* the backend is at `limit`: nothing taken */
};

/* Takes one count on (svc_id, backend_id) unless that would exceed `limit` (0 = no limit). Adds
 * first and checks after, so two racing connects cannot both slip under the limit: at worst both
 * back off and one of them is refused although a slot was free for an instant. */
static __always_inline enum sm_acquire_result sm_conn_acquire(__u32 svc_id, __u32 backend_id,
                                                              __u32 limit) {
  __u64 *count = sm_conns_slot(svc_id, backend_id);
  if (!count) {
    sm_count(SM_CNT_CONN_UNTRACKED);
    return SM_ACQUIRE_UNTRACKED;
  }
  __sync_fetch_and_add(count, 1);
  if (limit && *count > limit) {
    __sync_fetch_and_add(count, -1);
    return SM_ACQUIRE_FULL;
  }
  return SM_ACQUIRE_OK;
}

static __always_inline void sm_conn_put(__u32 svc_id, __u32 backend_id) {
  struct sm_be_conn_key key = {.svc_id = svc_id, .backend_id = backend_id};
  __u64 *count = bpf_map_lookup_elem(&sm_be_conns_v1, &key);
  /* Missing only if the agent pruned it at zero, which it does not do while we hold a count. */
  if (count) __sync_fetch_and_add(count, -1);
}

/* Gives back the count a socket holds, if any, and forgets it (exactly once per count). */
static __always_inline void sm_sock_conn_release(struct sm_sock_vip *v) {
  if (!v || !v->backend_id) return;
  sm_conn_put(v->svc_id, v->backend_id);
  v->backend_id = 0;
  v->svc_id = 0;
}

#endif /* SOCKMESH_BPF_LIB_BACKEND_CONNS_H_ */
