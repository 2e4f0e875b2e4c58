// SPDX-License-Identifier: Apache-2.0
// `sockmeshctl top`: per-service request rate, request latency percentiles, connection rate and
// failures over an interval, from two snapshots of the pinned sm_conn_stats_v1 (summed over
// source cgroups). The kernel keeps only totals; rates and percentiles come from the difference.
#ifndef SOCKMESH_USERSPACE_CTL_TOP_VIEW_H_
#define SOCKMESH_USERSPACE_CTL_TOP_VIEW_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "userspace/bpf/conn_stats.h"

namespace sockmesh::ctl {

struct TopRow {
  std::string frontend;  // "127.10.0.10:80/TCP", or "svc_id N" when the frontend is gone
  double requests_per_second = 0;
  double request_p50_seconds = 0;  // over the interval; 0 when no request completed
  double request_p99_seconds = 0;
  double connections_per_second = 0;
  double failed_per_second = 0;  // connects that never got established (refused, timed out)
  uint64_t active = 0;           // established and not yet closed, at the end of the interval
};

// Rows sorted by request rate, then frontend. `frontends` names svc_ids.
std::vector<TopRow> ComputeTop(const std::vector<bpf::ConnStatsEntry>& before,
                               const std::vector<bpf::ConnStatsEntry>& after,
                               const std::map<uint32_t, std::string>& frontends, double seconds);

std::string FormatTopTable(const std::vector<TopRow>& rows, double seconds);
std::string FormatTopJson(const std::vector<TopRow>& rows, double seconds);

}  // namespace sockmesh::ctl

#endif  // SOCKMESH_USERSPACE_CTL_TOP_VIEW_H_
