/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Outlier ejection, the L4 form of Envoy's consecutive local-origin failures: a backend whose
 * connects fail `consecutive_failures` times in a row (the SYN answered by RST, or timed out) is
 * skipped by new connects for base_ejection_ns times the number of times it was ejected (Envoy's
 * back-off, capped at SM_OUTLIER_MAX_EJECTION_NS), then tried again. An established connection
 * resets the failure count; one established after a healthy base period also resets the back-off.
 *
 * The sockops tracker reports the outcome of each connect (lib/conn_track.h); the socket's storage
 * (sm_sock_vip_v2) says which (service, backend) it went to. The connect hook asks
 * sm_outlier_ejected() about the backend it drew and draws again (lib/lb.h); when only ejected
 * backends are found it takes one anyway: ejection never refuses a connect on its own.
 *
 * At most max_ejection_percent of a service's backends (at least one, at most
 * SM_OUTLIER_MAX_EJECTED) are out at once, counted in sm_svc_ejected_v1. Two CPUs ejecting two
 * backends of one service in the same instant may both see a free slot: the cap can be exceeded by
 * one for one back-off period, which is cheaper than a lock on every failure. */
#ifndef SOCKMESH_BPF_LIB_OUTLIER_H_
#define SOCKMESH_BPF_LIB_OUTLIER_H_

#include "lib/maps.h"
#include "lib/metrics.h"

#ifndef SM_KTIME_NS
#define SM_KTIME_NS() bpf_ktime_get_ns()
#endif

/* Outlier detection per service (svc_id -> config). Written by the agent (map_sync) from the
 * service's TrafficPolicy, read by the sockops tracker when a connect fails or succeeds. An entry
 * leaves when the policy or the service does. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, SM_MAX_SERVICES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, __u32);
  __type(value, struct sm_outlier_cfg);
} sm_outlier_cfg_v1 SEC(".maps");

/* Consecutive connect failures and ejection per (svc_id, backend_id). Created by the sockops
 * tracker at a backend's first failure under outlier detection, read by the connect hook and by
 * sockmeshctl. The agent deletes the entries of pairs that left the desired state. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, SM_MAX_OUTLIER_ENTRIES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct sm_be_conn_key);
  __type(value, struct sm_be_outlier);
} sm_be_outlier_v1 SEC(".maps");

/* End times of each service's current ejections (svc_id -> slots), for maxEjectionPercent. Written
 * and read by the sockops tracker; the agent deletes a service's entry with its config. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, SM_MAX_SERVICES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, __u32);
  __type(value, struct sm_svc_ejections);
} sm_svc_ejected_v1 SEC(".maps");

/* Whether new connects should avoid (svc_id, backend_id) now. One lookup in a map that holds only
 * backends that have failed, so a healthy mesh pays a miss. */
static __always_inline bool sm_outlier_ejected(__u32 svc_id, __u32 backend_id) {
  struct sm_be_conn_key key = {.svc_id = svc_id, .backend_id = backend_id};
  const struct sm_be_outlier *o = bpf_map_lookup_elem(&sm_be_outlier_v1, &key);
  return o && o->ejected_until_ns > SM_KTIME_NS();
}

/* Takes an ejection slot of the service until `until`, unless `allowed` backends are already out.
 */
static __always_inline bool sm_outlier_take_slot(__u32 svc_id, __u32 allowed, __u64 now,
                                                 __u64 until) {
  struct sm_svc_ejections *e = bpf_map_lookup_elem(&sm_svc_ejected_v1, &svc_id);
  if (!e) {
    struct sm_svc_ejections zero = {};
    bpf_map_update_elem(&sm_svc_ejected_v1, &svc_id, &zero, BPF_NOEXIST);
    e = bpf_map_lookup_elem(&sm_svc_ejected_v1, &svc_id);
    if (!e) return false; /* map full: do not eject rather than eject without a cap */
  }
  __u32 active = 0;
  int free_slot = -1;
#pragma unroll
  for (int i = 0; i < SM_OUTLIER_MAX_EJECTED; i++) {
    if (e->until_ns[i] > now)
      active++;
    else if (free_slot < 0)
      free_slot = i;
  }
  if (active >= allowed || free_slot < 0) return false;
#pragma unroll
  for (int i = 0; i < SM_OUTLIER_MAX_EJECTED; i++) {
    if (i == free_slot) e->until_ns[i] = until;
  }
  return true;
}

/* How many of `backends` may be out at once: the percentage, at least one when it is not 0. */
static __always_inline __u32 sm_outlier_allowed(__u32 backends, __u32 percent) {
  __u32 allowed = backends * percent / 100;
  if (percent && allowed == 0) allowed = 1;
  return allowed < SM_OUTLIER_MAX_EJECTED ? allowed : SM_OUTLIER_MAX_EJECTED;
}

/* A connect of this socket failed before it was established. `svc` is the service it dialed. */
static __always_inline void sm_outlier_connect_failed(const struct sm_sock_vip *v,
                                                      const struct sm_svc *svc) {
  if (!v || !svc || !v->backend_id || v->svc_id != svc->svc_id) return;
  __u32 svc_id = v->svc_id;
  const struct sm_outlier_cfg *cfg = bpf_map_lookup_elem(&sm_outlier_cfg_v1, &svc_id);
  if (!cfg || !cfg->consecutive_failures) return;
  struct sm_be_conn_key key = {.svc_id = svc_id, .backend_id = v->backend_id};
  struct sm_be_outlier *o = bpf_map_lookup_elem(&sm_be_outlier_v1, &key);
  if (!o) {
    struct sm_be_outlier zero = {};
    bpf_map_update_elem(&sm_be_outlier_v1, &key, &zero, BPF_NOEXIST);
    o = bpf_map_lookup_elem(&sm_be_outlier_v1, &key);
    if (!o) return;
  }
  __sync_fetch_and_add(&o->consecutive_failures, 1);
  if (o->consecutive_failures < cfg->consecutive_failures) return;
  __u64 now = SM_KTIME_NS();
  if (o->ejected_until_ns > now) return; /* connects sent before the ejection, failing late */
  __u64 duration = cfg->base_ejection_ns * (o->ejections + 1);
  __u64 cap = cfg->base_ejection_ns > SM_OUTLIER_MAX_EJECTION_NS ? cfg->base_ejection_ns
                                                                 : SM_OUTLIER_MAX_EJECTION_NS;
  if (duration > cap) duration = cap;
  __u32 allowed = sm_outlier_allowed(svc->backend_count, cfg->max_ejection_percent);
  if (!sm_outlier_take_slot(svc_id, allowed, now, now + duration)) {
    sm_count(SM_CNT_OUTLIER_CAPPED);
    return;
  }
  o->ejected_until_ns = now + duration;
  o->ejections += 1;
  sm_count(SM_CNT_OUTLIER_EJECTED);
}

/* A connect of this socket was established: the backend answers again. */
static __always_inline void sm_outlier_connect_succeeded(const struct sm_sock_vip *v) {
  if (!v || !v->backend_id) return;
  struct sm_be_conn_key key = {.svc_id = v->svc_id, .backend_id = v->backend_id};
  struct sm_be_outlier *o = bpf_map_lookup_elem(&sm_be_outlier_v1, &key);
  if (!o) return; /* never failed */
  if (o->consecutive_failures) o->consecutive_failures = 0;
  if (!o->ejections) return;
  __u32 svc_id = v->svc_id;
  const struct sm_outlier_cfg *cfg = bpf_map_lookup_elem(&sm_outlier_cfg_v1, &svc_id);
  /* Healthy for a whole base period after its last ejection: the back-off starts over. */
  if (!cfg || SM_KTIME_NS() > o->ejected_until_ns + cfg->base_ejection_ns) o->ejections = 0;
}

#endif /* SOCKMESH_BPF_LIB_OUTLIER_H_ */
