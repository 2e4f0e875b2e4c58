/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef SOCKMESH_BPF_LIB_METRICS_H_
#define SOCKMESH_BPF_LIB_METRICS_H_

#include "lib/maps.h"

static __always_inline void sm_count(__u32 reason) {
  __u64 *value = bpf_map_lookup_elem(&sm_counters_v1, &reason);
  if (value) *value += 1; /* per-CPU slot: no atomics needed */
}

#endif /* SOCKMESH_BPF_LIB_METRICS_H_ */
