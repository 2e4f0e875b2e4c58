// SPDX-License-Identifier: Apache-2.0
#include "userspace/ctl/counters_dump.h"

#include <linux/bpf.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "userspace/agent/datapath.h"
#include "userspace/bpf/abi.h"
#include "userspace/bpf/typed_map.h"
#include "userspace/ctl/text_table.h"
#include "userspace/metrics/agent_metrics.h"

namespace sockmesh::ctl {

absl::StatusOr<CountersDump> ReadCounters(int fd, std::string instance) {
  absl::StatusOr<bpf::MapInfo> info = bpf::GetMapInfo(fd);
  if (!info.ok()) return info.status();
  if (info->type != BPF_MAP_TYPE_PERCPU_ARRAY || info->key_size != sizeof(uint32_t) ||
      info->value_size != sizeof(uint64_t) || info->max_entries < SM_CNT_MAX) {
    return absl::FailedPreconditionError(absl::StrCat(
        "map ", info->name, ": type ", info->type, ", key/value size ", info->key_size, "/",
        info->value_size, ", ", info->max_entries, " entries; this binary expects a per-CPU array ",
        "of at least ", SM_CNT_MAX, " __u64 counters (ABI version mismatch)"));
  }
  absl::StatusOr<std::vector<uint64_t>> values = bpf::ReadPerCpuCounters(fd, SM_CNT_MAX);
  if (!values.ok()) return values.status();
  return NameCounters(*values, std::move(instance));
}

CountersDump NameCounters(const std::vector<uint64_t>& values, std::string instance) {
  const std::vector<std::string>& names = metrics::DatapathEventNames();
  CountersDump dump;
  dump.instance = std::move(instance);
  for (size_t i = 0; i < values.size(); ++i) {
    if (i < names.size() && names[i].empty()) continue;  // a number no counter uses (yet)
    dump.counters.push_back(CounterView{
        .event = i < names.size() ? names[i] : absl::StrCat("event_", i), .value = values[i]});
  }
  return dump;
}

std::string FormatCountersTable(const CountersDump& dump) {
  TextTable table({"EVENT", "COUNT"});
  for (const CounterView& c : dump.counters) table.AddRow({c.event, absl::StrCat(c.value)});
  return table.Render();
}

std::string FormatCountersJson(const CountersDump& dump) {
  nlohmann::ordered_json counters = nlohmann::ordered_json::object();
  for (const CounterView& c : dump.counters) counters[c.event] = c.value;
  nlohmann::ordered_json out = {{"instance", dump.instance}, {"counters", std::move(counters)}};
  return out.dump(2) + "\n";
}

}  // namespace sockmesh::ctl
