// SPDX-License-Identifier: Apache-2.0
// `sockmeshctl counters`: the datapath's per-CPU outcome counters (sm_counters_v1), summed over
// CPUs and named as the agent's Prometheus `event` label names them.
#ifndef SOCKMESH_USERSPACE_CTL_COUNTERS_DUMP_H_
#define SOCKMESH_USERSPACE_CTL_COUNTERS_DUMP_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sockmesh::ctl {

struct CounterView {
  std::string event;  // DatapathEventNames()[SM_CNT_*]
  uint64_t value = 0;
};

struct CountersDump {
  std::string instance;
  std::vector<CounterView> counters;  // in SM_CNT_* order
};

// Reads the pinned counters map `fd`. Checks its layout first: the per-CPU read writes one value
// per possible CPU into a buffer sized for __u64 values, so a map with other sizes (an ABI change)
// must be refused rather than read.
absl::StatusOr<CountersDump> ReadCounters(int fd, std::string instance);

// Names the values (values[i] is SM_CNT_ i). Values beyond the known names are named "event_<i>".
CountersDump NameCounters(const std::vector<uint64_t>& values, std::string instance);

// EVENT / COUNT table.
std::string FormatCountersTable(const CountersDump& dump);
// {"instance": ..., "counters": {"connect_translated": 3, ...}} in SM_CNT_* order.
std::string FormatCountersJson(const CountersDump& dump);

}  // namespace sockmesh::ctl

#endif  // SOCKMESH_USERSPACE_CTL_COUNTERS_DUMP_H_
