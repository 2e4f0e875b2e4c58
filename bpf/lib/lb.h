/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Backend selection for a frontend, independent of the hook that asks. Hooks build an sm_flow and
 * call sm_lb_select(); test programs include this file with mocked helpers. */
#ifndef SOCKMESH_BPF_LIB_LB_H_
#define SOCKMESH_BPF_LIB_LB_H_

#include "lib/backend_conns.h"
#include "lib/maps.h"
#include "lib/metrics.h"
#include "lib/outlier.h"

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
  __u32 track;        /* 1: a TCP connect(): take a connection count on the chosen backend */
};

/* The connection count a successful selection took (flow->track); backend_id 0 = none. */
struct sm_conn_ref {
  __u32 svc_id;
  __u32 backend_id;
};

enum sm_select_result {
  SM_SELECT_NOT_SERVICE = 0, /* not a frontend: leave the call alone */
  SM_SELECT_OK,              /* *out holds the backend */
  SM_SELECT_NO_BACKEND,      /* frontend with an empty set: refuse */
  SM_SELECT_INCONSISTENT,    /* maps disagree at a stable revision: fail open, counted */
  SM_SELECT_OVER_LIMIT,      /* every backend at the service's connection limit: refuse */
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
  __u32 backend_count;
  __u32 affinity_timeout_s;
  __u32 max_conns; /* per backend; 0 = unlimited */
  __u8 algo;
};

static __always_inline void sm_svc_snapshot(const struct sm_svc *svc, struct sm_svc_snap *s) {
  s->svc_id = svc->svc_id;
  s->rev = svc->rev;
  s->lut_size = svc->lut_size;
  s->backend_count = svc->backend_count;
  s->affinity_timeout_s = svc->affinity_timeout_s;
  s->max_conns = svc->max_conns_per_backend;
  s->algo = svc->algo;
}

/* A backend chosen within one revision. */
struct sm_pick {
  const struct sm_backend *be;
  __u32 id;
  __u32 counted; /* 1: a connection count was taken on (svc_id, id) */
};

enum sm_pick_result {
  SM_PICK_OK,
  SM_PICK_SWAPPED, /* this revision's entries are gone: re-read the service */
  SM_PICK_FULL,    /* every backend is at the connection limit */
};

static __always_inline const struct sm_backend *sm_backend_lookup(const struct sm_svc_snap *s,
                                                                  __u32 backend_id) {
  struct sm_be_key key = {.svc_id = s->svc_id, .rev = s->rev, .backend_id = backend_id};
  return bpf_map_lookup_elem(&sm_be_v1, &key);
}

/* The affinity backend if the entry is fresh and its backend is still in this revision's set. */
static __always_inline bool sm_affinity_lookup(const struct sm_svc_snap *s,
                                               const struct sm_flow *flow, __u64 now,
                                               struct sm_pick *out) {
  struct sm_aff_key key = {.netns_cookie = flow->netns_cookie, .svc_id = s->svc_id};
  struct sm_aff_val *val = bpf_map_lookup_elem(&sm_aff_v1, &key);
  if (!val) return false;
  if (now - val->last_used_ns > (__u64)s->affinity_timeout_s * SM_NSEC_PER_SEC) {
    sm_count(SM_CNT_AFFINITY_STALE);
    return false;
  }
  __u32 backend_id = val->backend_id;
  const struct sm_backend *be = sm_backend_lookup(s, backend_id);
  if (!be) {
    sm_count(SM_CNT_AFFINITY_STALE);
    return false;
  }
  val->last_used_ns = now; /* racy by design: a hint, not a lock */
  sm_count(SM_CNT_AFFINITY_HIT);
  out->be = be;
  out->id = backend_id;
  return true;
}

static __always_inline void sm_affinity_record(const struct sm_svc_snap *s,
                                               const struct sm_flow *flow, __u32 backend_id,
                                               __u64 now) {
  struct sm_aff_key key = {.netns_cookie = flow->netns_cookie, .svc_id = s->svc_id};
  struct sm_aff_val val = {.last_used_ns = now, .backend_id = backend_id};
  if (bpf_map_update_elem(&sm_aff_v1, &key, &val, BPF_ANY) != 0)
    sm_count(SM_CNT_AFFINITY_UPDATE_FAIL);
}

static __always_inline enum sm_pick_result sm_lut_draw(const struct sm_svc_snap *s, __u32 draw,
                                                       struct sm_pick *out) {
  struct sm_lut_key key = {.svc_id = s->svc_id, .rev = s->rev, .slot = draw % s->lut_size};
  __u32 *id = bpf_map_lookup_elem(&sm_lut_v1, &key);
  if (!id) return SM_PICK_SWAPPED;
  out->id = *id;
  out->be = sm_backend_lookup(s, out->id);
  return out->be ? SM_PICK_OK : SM_PICK_SWAPPED;
}

/* Picks from the selection table past ejected outliers: a few more draws (Maglev's derived from
 * the flow's hash, so a flow still maps to one backend), which keep the other backends' shares,
 * then the slots after the first draw, which find another backend when most draws would not (the
 * table interleaves its backends). When all of them are ejected the last one stands: ejection
 * alone never refuses a connect. */
static __always_inline enum sm_pick_result sm_lut_pick(const struct sm_svc_snap *s,
                                                       const struct sm_flow *flow,
                                                       struct sm_pick *out) {
  const bool maglev = s->algo == SM_LB_MAGLEV;
  const __u32 first = maglev ? flow->hash : SM_GET_PRANDOM();
  enum sm_pick_result r = sm_lut_draw(s, first, out);
  if (r != SM_PICK_OK || !sm_outlier_ejected(s->svc_id, out->id)) return r;
  for (__u32 i = 1; i <= 2 * SM_OUTLIER_REDRAWS; i++) {
    __u32 draw = i > SM_OUTLIER_REDRAWS ? first % s->lut_size + (i - SM_OUTLIER_REDRAWS)
                 : maglev               ? sm_hash_words(flow->hash, i)
                                        : SM_GET_PRANDOM();
    r = sm_lut_draw(s, draw, out);
    if (r != SM_PICK_OK) return r;
    if (!sm_outlier_ejected(s->svc_id, out->id)) {
      sm_count(SM_CNT_OUTLIER_AVOIDED);
      return SM_PICK_OK;
    }
  }
  sm_count(SM_CNT_OUTLIER_ALL_EJECTED);
  return SM_PICK_OK;
}

/* State of one walk over a revision's backend list (bpf_loop context). */
struct sm_lc_scan {
  __u32 svc_id;
  __u32 rev;
  __u32 first; /* LUT slot of the list's first backend */
  __u32 limit; /* skip backends holding this many connections; 0 = skip none */
  __u64 best_conns;
  __u64 best_weight;
  __u64 tie_weight;      /* summed weight of the backends tied with the best so far */
  __u32 best_id;         /* 0 = none yet */
  __u32 swapped;         /* a list or backend entry was missing */
  __u32 avoid_ejected;   /* 1: skip outliers (lib/outlier.h) */
  __u32 skipped_ejected; /* an outlier was skipped */
};

/* Least connections per unit of weight (conns_a * weight_b < conns_b * weight_a), so a backend of
 * weight 2 carries twice the connections of one of weight 1. Ties are broken at random in
 * proportion to weight (weighted reservoir sampling: the k-th tied backend replaces the choice
 * with probability weight_k / summed weight), so equal backends share ties evenly. */
static long sm_lc_visit(__u32 index, void *arg) {
  struct sm_lc_scan *sc = arg;
  struct sm_lut_key lk = {.svc_id = sc->svc_id, .rev = sc->rev, .slot = sc->first + index};
  const __u32 *id = bpf_map_lookup_elem(&sm_lut_v1, &lk);
  if (!id) {
    sc->swapped = 1;
    return 1;
  }
  __u32 backend_id = *id;
  struct sm_be_key bk = {.svc_id = sc->svc_id, .rev = sc->rev, .backend_id = backend_id};
  const struct sm_backend *be = bpf_map_lookup_elem(&sm_be_v1, &bk);
  if (!be) {
    sc->swapped = 1;
    return 1;
  }
  __u64 conns = sm_conns_of(sc->svc_id, backend_id);
  if (sc->limit && conns >= sc->limit) return 0;
  if (sc->avoid_ejected && sm_outlier_ejected(sc->svc_id, backend_id)) {
    sc->skipped_ejected = 1;
    return 0;
  }
  __u64 weight = be->weight ? be->weight : 1;
  __u64 lhs = conns * sc->best_weight;
  __u64 rhs = sc->best_conns * weight;
  bool take = false;
  if (!sc->best_id || lhs < rhs) {
    sc->tie_weight = weight;
    take = true;
  } else if (lhs == rhs) {
    sc->tie_weight += weight;
    take = SM_GET_PRANDOM() % sc->tie_weight < weight;
  }
  if (take) {
    sc->best_id = backend_id;
    sc->best_conns = conns;
    sc->best_weight = weight;
  }
  return 0;
}

/* The least-loaded backend of the revision's backend list among those under `limit`, outliers
 * avoided unless they are all that is left. */
static __always_inline enum sm_pick_result sm_least_conn_pick(const struct sm_svc_snap *s,
                                                              __u32 limit, struct sm_pick *out) {
  __u32 n = s->backend_count;
  if (n > SM_LB_MAX_LIST_BACKENDS) n = SM_LB_MAX_LIST_BACKENDS;
  struct sm_lc_scan sc = {.svc_id = s->svc_id,
                          .rev = s->rev,
                          .first = s->algo == SM_LB_LEAST_CONN ? 0 : s->lut_size,
                          .limit = limit,
                          .avoid_ejected = 1};
  bpf_loop(n, sm_lc_visit, &sc, 0);
  if (!sc.swapped && !sc.best_id && sc.skipped_ejected) {
    sm_count(SM_CNT_OUTLIER_ALL_EJECTED);
    sc.avoid_ejected = 0;
    bpf_loop(n, sm_lc_visit, &sc, 0);
  } else if (sc.skipped_ejected) {
    sm_count(SM_CNT_OUTLIER_AVOIDED);
  }
  if (sc.swapped || n == 0) return SM_PICK_SWAPPED;
  if (!sc.best_id) return SM_PICK_FULL;
  out->id = sc.best_id;
  out->be = sm_backend_lookup(s, sc.best_id);
  return out->be ? SM_PICK_OK : SM_PICK_SWAPPED;
}

static __always_inline enum sm_pick_result sm_try_acquire(const struct sm_svc_snap *s, __u32 limit,
                                                          struct sm_pick *p) {
  switch (sm_conn_acquire(s->svc_id, p->id, limit)) {
    case SM_ACQUIRE_OK:
      p->counted = 1;
      return SM_PICK_OK;
    case SM_ACQUIRE_UNTRACKED:
      return SM_PICK_OK;
    default:
      return SM_PICK_FULL;
  }
}

/* Takes the connection count for a TCP connect. The circuit breaker: when the chosen backend is at
 * the service's limit, the least-loaded backend still under it is taken instead, whatever the
 * algorithm; when none is, the connect is refused. */
static __always_inline enum sm_pick_result sm_take_conn(const struct sm_svc_snap *s,
                                                        struct sm_pick *p) {
  if (sm_try_acquire(s, s->max_conns, p) == SM_PICK_OK) return SM_PICK_OK;
  enum sm_pick_result r = sm_least_conn_pick(s, s->max_conns, p);
  if (r != SM_PICK_OK) return r;
  return sm_try_acquire(s, s->max_conns, p);
}

static __always_inline enum sm_pick_result sm_select_in_rev(const struct sm_svc_snap *s,
                                                            const struct sm_flow *flow,
                                                            struct sm_pick *out) {
  __u64 now = 0;
  bool sticky = false;
  if (s->affinity_timeout_s) {
    now = SM_KTIME_NS();
    sticky = sm_affinity_lookup(s, flow, now, out) && !sm_outlier_ejected(s->svc_id, out->id);
  }
  enum sm_pick_result r = SM_PICK_OK;
  if (!sticky) {
    /* A TCP connect avoids full backends up front; other calls never count, so never fill. */
    r = s->algo == SM_LB_LEAST_CONN ? sm_least_conn_pick(s, flow->track ? s->max_conns : 0, out)
                                    : sm_lut_pick(s, flow, out);
    if (r != SM_PICK_OK) return r;
  }
  __u32 first_choice = out->id;
  if (flow->track) {
    r = sm_take_conn(s, out);
    if (r != SM_PICK_OK) return r;
  }
  if (s->affinity_timeout_s && (!sticky || out->id != first_choice))
    sm_affinity_record(s, flow, out->id, now);
  return SM_PICK_OK;
}

/* One revision's choice, copied out of the map: a global function cannot return a map pointer. */
struct sm_rev_choice {
  struct sm_backend be;
  __u32 id;
  __u32 counted; /* 1: a connection count was taken on (svc_id, id) */
};

/* A global function, so the verifier checks it once on its own instead of once per revision retry
 * at every call site: inlined, the retries multiplied the branches of affinity, outlier redraws and
 * the circuit breaker past the verifier's 1M-instruction budget on 6.18 kernels. The verifier
 * cannot know the callers' pointers are valid, hence the NULL check. */
__noinline int sm_select_rev_choice(const struct sm_svc_snap *s, const struct sm_flow *flow,
                                    struct sm_rev_choice *out) {
  if (!s || !flow || !out) return SM_PICK_SWAPPED;
  struct sm_pick pick = {};
  enum sm_pick_result r = sm_select_in_rev(s, flow, &pick);
  if (r != SM_PICK_OK) return r;
  if (!pick.be) return SM_PICK_SWAPPED;
  __builtin_memcpy(&out->be, pick.be, sizeof(out->be));
  out->id = pick.id;
  out->counted = pick.counted;
  return SM_PICK_OK;
}

/* Chooses a backend for `key`. The agent publishes a new backend set by writing (svc_id, rev+1)
 * entries, swapping sm_svc in one update and then deleting the old rev's entries. A lookup that
 * misses therefore means "swapped under us": re-read the service and try its new revision. With
 * flow->track, a successful selection has taken the connection count that *held names; the caller
 * must record it on the socket or give it back (sm_conn_put). */
static __always_inline enum sm_select_result sm_lb_select(const struct sm_svc_key *key,
                                                          const struct sm_flow *flow,
                                                          struct sm_backend *out,
                                                          struct sm_conn_ref *held) {
  held->svc_id = 0;
  held->backend_id = 0;
  const struct sm_svc *svc = bpf_map_lookup_elem(&sm_svc_v1, key);
  if (!svc) return SM_SELECT_NOT_SERVICE;
  struct sm_svc_snap snap;
  sm_svc_snapshot(svc, &snap);

  for (int attempt = 0; attempt < SM_MAX_REV_RETRIES; attempt++) {
    if (snap.lut_size == 0) return SM_SELECT_NO_BACKEND;
    struct sm_rev_choice choice = {};
    int r = sm_select_rev_choice(&snap, flow, &choice);
    if (r == SM_PICK_FULL) return SM_SELECT_OVER_LIMIT;
    if (r == SM_PICK_OK) {
      __builtin_memcpy(out, &choice.be, sizeof(*out));
      if (choice.counted) {
        held->svc_id = snap.svc_id;
        held->backend_id = choice.id;
      }
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
