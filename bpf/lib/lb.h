/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Backend selection for a frontend, independent of the hook that asks. Hooks build an sm_flow and
 * call sm_lb_select(); test programs include this file with mocked helpers. */
#ifndef SOCKMESH_BPF_LIB_LB_H_
#define SOCKMESH_BPF_LIB_LB_H_

#include "lib/maps.h"
#include "lib/metrics.h"

/* Helpers a test replaces to make selection deterministic. */
#ifndef SM_GET_PRANDOM
#define SM_GET_PRANDOM() bpf_get_prandom_u32()
#endif
#ifndef SM_KTIME_NS
#define SM_KTIME_NS() bpf_ktime_get_ns()
#endif

#define SM_NSEC_PER_SEC 1000000000ULL

/* What a hook knows about the caller. */
struct sm_flow {
  __u64 netns_cookie; /* session-affinity client */
  __u32 hash;         /* Maglev key: stable per flow */
  __u32 pad;
};

enum sm_select_result {
  SM_SELECT_NOT_SERVICE = 0, /* not a frontend: leave the call alone */
  SM_SELECT_OK,              /* *out holds the backend */
  SM_SELECT_NO_BACKEND,      /* frontend with an empty set: refuse */
  SM_SELECT_INCONSISTENT,    /* maps disagree at a stable revision: fail open, counted */
};

/* murmur3's 64-bit finalizer: cheap, and every input bit reaches every output bit. */
static __always_inline __u64 sm_mix64(__u64 h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

static __always_inline __u32 sm_hash_words(__u64 a, __u64 b) {
  return (__u32)sm_mix64(a ^ sm_mix64(b + 0x9e3779b97f4a7c15ULL));
}

/* A snapshot of sm_svc: the element may be replaced while we work, so read it once. */
struct sm_svc_snap {
  __u32 svc_id;
  __u32 rev;
  __u32 lut_size;
  __u32 affinity_timeout_s;
  __u8 algo;
};

static __always_inline void sm_svc_snapshot(const struct sm_svc *svc, struct sm_svc_snap *s) {
  s->svc_id = svc->svc_id;
  s->rev = svc->rev;
  s->lut_size = svc->lut_size;
  s->affinity_timeout_s = svc->affinity_timeout_s;
  s->algo = svc->algo;
}

static __always_inline const struct sm_backend *sm_backend_lookup(const struct sm_svc_snap *s,
                                                                  __u32 backend_id) {
  struct sm_be_key key = {.svc_id = s->svc_id, .rev = s->rev, .backend_id = backend_id};
  return bpf_map_lookup_elem(&sm_be_v1, &key);
}

/* The affinity backend if the entry is fresh and its backend is still in this revision's set. */
static __always_inline const struct sm_backend *sm_affinity_lookup(const struct sm_svc_snap *s,
                                                                   const struct sm_flow *flow,
                                                                   __u64 now) {
  struct sm_aff_key key = {.netns_cookie = flow->netns_cookie, .svc_id = s->svc_id};
  struct sm_aff_val *val = bpf_map_lookup_elem(&sm_aff_v1, &key);
  if (!val) return NULL;
  if (now - val->last_used_ns > (__u64)s->affinity_timeout_s * SM_NSEC_PER_SEC) {
    sm_count(SM_CNT_AFFINITY_STALE);
    return NULL;
  }
  const struct sm_backend *be = sm_backend_lookup(s, val->backend_id);
  if (!be) {
    sm_count(SM_CNT_AFFINITY_STALE);
    return NULL;
  }
  val->last_used_ns = now; /* racy by design: a hint, not a lock */
  sm_count(SM_CNT_AFFINITY_HIT);
  return be;
}

static __always_inline void sm_affinity_record(const struct sm_svc_snap *s,
                                               const struct sm_flow *flow, __u32 backend_id,
                                               __u64 now) {
  struct sm_aff_key key = {.netns_cookie = flow->netns_cookie, .svc_id = s->svc_id};
  struct sm_aff_val val = {.last_used_ns = now, .backend_id = backend_id};
  if (bpf_map_update_elem(&sm_aff_v1, &key, &val, BPF_ANY) != 0)
    sm_count(SM_CNT_AFFINITY_UPDATE_FAIL);
}

/* Picks from the selection table; NULL when this revision's entries are gone (swapped away). */
static __always_inline const struct sm_backend *sm_lut_pick(const struct sm_svc_snap *s,
                                                            const struct sm_flow *flow,
                                                            __u32 *backend_id) {
  __u32 draw = s->algo == SM_LB_MAGLEV ? flow->hash : SM_GET_PRANDOM();
  struct sm_lut_key key = {.svc_id = s->svc_id, .rev = s->rev, .slot = draw % s->lut_size};
  __u32 *id = bpf_map_lookup_elem(&sm_lut_v1, &key);
  if (!id) return NULL;
  *backend_id = *id;
  return sm_backend_lookup(s, *id);
}

static __always_inline const struct sm_backend *sm_select_in_rev(const struct sm_svc_snap *s,
                                                                 const struct sm_flow *flow) {
  __u64 now = 0;
  if (s->affinity_timeout_s) {
    now = SM_KTIME_NS();
    const struct sm_backend *be = sm_affinity_lookup(s, flow, now);
    if (be) return be;
  }
  __u32 backend_id = 0;
  const struct sm_backend *be = sm_lut_pick(s, flow, &backend_id);
  if (be && s->affinity_timeout_s) sm_affinity_record(s, flow, backend_id, now);
  return be;
}

/* Chooses a backend for `key`. The agent publishes a new backend set by writing (svc_id, rev+1)
 * entries, swapping sm_svc in one update and then deleting the old rev's entries. A lookup that
 * misses therefore means "swapped under us": re-read the service and try its new revision. */
static __always_inline enum sm_select_result sm_lb_select(const struct sm_svc_key *key,
                                                          const struct sm_flow *flow,
                                                          struct sm_backend *out) {
  const struct sm_svc *svc = bpf_map_lookup_elem(&sm_svc_v1, key);
  if (!svc) return SM_SELECT_NOT_SERVICE;
  struct sm_svc_snap snap;
  sm_svc_snapshot(svc, &snap);

  for (int attempt = 0; attempt < SM_MAX_REV_RETRIES; attempt++) {
    if (snap.lut_size == 0) return SM_SELECT_NO_BACKEND;
    const struct sm_backend *be = sm_select_in_rev(&snap, flow);
    if (be) {
      __builtin_memcpy(out, be, sizeof(*out));
      return SM_SELECT_OK;
    }
    svc = bpf_map_lookup_elem(&sm_svc_v1, key);
    if (!svc) return SM_SELECT_NOT_SERVICE; /* removed meanwhile: behave as if never there */
    if (svc->rev == snap.rev) break;
    sm_count(SM_CNT_REV_RETRY);
    sm_svc_snapshot(svc, &snap);
  }
  sm_count(SM_CNT_INCONSISTENT);
  return SM_SELECT_INCONSISTENT;
}

#endif /* SOCKMESH_BPF_LIB_LB_H_ */
