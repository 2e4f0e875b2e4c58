// SPDX-License-Identifier: Apache-2.0
// sm_conn_stats_v1 as userspace reads it: per-CPU values summed into one sm_conn_stats per
// (source cgroup, service), and the latency histogram layout of consts.h (SM_HIST_BUCKETS) turned
// into bucket bounds and interpolated quantiles.
#ifndef SOCKMESH_USERSPACE_BPF_CONN_STATS_H_
#define SOCKMESH_USERSPACE_BPF_CONN_STATS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/bpf/abi.h"

namespace sockmesh::bpf {

struct ConnStatsEntry {
  sm_conn_stats_key key{};
  sm_conn_stats stats{};
};

// Every entry of the map behind `fd`, each summed over the possible CPUs.
absl::StatusOr<std::vector<ConnStatsEntry>> ReadConnStats(int fd);

// into += from, field by field (histograms bucket by bucket).
void AddConnStats(sm_conn_stats& into, const sm_conn_stats& from);
// into -= from (a later snapshot minus an earlier one of the same entry).
void SubtractConnStats(sm_conn_stats& into, const sm_conn_stats& from);

// Exclusive upper bound of histogram bucket `b`, in microseconds (the last bucket's is the
// bound of its range; it also holds everything above).
uint64_t HistBucketUpperUs(int b);
uint64_t HistBucketLowerUs(int b);
uint64_t HistCount(const sm_hist& h);
// The q-quantile (0 < q <= 1) in seconds, interpolated linearly inside the bucket it falls in;
// 0 for an empty histogram.
double HistQuantileSeconds(const sm_hist& h, double q);

}  // namespace sockmesh::bpf

#endif  // SOCKMESH_USERSPACE_BPF_CONN_STATS_H_
