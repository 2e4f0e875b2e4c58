// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/kernel_metrics_source.h"

#include <linux/bpf.h>

#include <filesystem>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "userspace/agent/abi_conversion.h"
#include "userspace/agent/datapath.h"
#include "userspace/bpf/typed_map.h"

namespace sockmesh::agent {

std::vector<metrics::LabelledConnStats> LabelConnStats(
    const std::vector<bpf::ConnStatsEntry>& entries,
    const std::map<uint32_t, model::Frontend>& frontends,
    const std::map<model::Frontend, ServiceName>& services,
    const std::vector<WorkloadCgroup>& workloads) {
  std::unordered_map<uint64_t, const WorkloadName*> by_cgroup;
  for (const WorkloadCgroup& w : workloads) by_cgroup[w.cgroup_id] = &w.workload;
  std::vector<metrics::LabelledConnStats> out;
  out.reserve(entries.size());
  for (const bpf::ConnStatsEntry& e : entries) {
    metrics::LabelledConnStats s{.labels = {}, .stats = e.stats};
    if (auto w = by_cgroup.find(e.key.cgroup_id); w != by_cgroup.end()) {
      s.labels.source_workload = w->second->name;
      s.labels.source_namespace = w->second->namespace_name;
    }
    if (auto f = frontends.find(e.key.svc_id); f != frontends.end()) {
      if (auto svc = services.find(f->second); svc != services.end()) {
        s.labels.destination_service_name = svc->second.name;
        s.labels.destination_service_namespace = svc->second.namespace_name;
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

void ConnStatsLabeler::SetServices(const model::DesiredState& state) {
  std::map<model::Frontend, ServiceName> names;
  for (const auto& [frontend, entry] : state) {
    names[frontend] = ServiceName{entry.namespace_name, entry.service_name};
  }
  absl::MutexLock lock(&mu_);
  services_ = std::move(names);
}

absl::StatusOr<std::vector<metrics::LabelledConnStats>> ConnStatsLabeler::Read() const {
  absl::StatusOr<std::vector<bpf::ConnStatsEntry>> entries =
      bpf::ReadConnStats(datapath_->conn_stats_fd());
  if (!entries.ok()) return entries.status();
  absl::StatusOr<std::vector<std::pair<sm_svc_key, sm_svc>>> svcs =
      datapath_->services_map().Dump();
  if (!svcs.ok()) return svcs.status();
  std::map<uint32_t, model::Frontend> frontends;
  for (const auto& [key, svc] : *svcs) {
    absl::StatusOr<model::Frontend> f = FromSvcKey(key);
    if (f.ok()) frontends[svc.svc_id] = *f;
  }
  // A missing workload tree is not an error: everything is then "unknown".
  absl::StatusOr<std::vector<WorkloadCgroup>> workloads = ListWorkloadCgroups(mesh_cgroup_);
  absl::MutexLock lock(&mu_);
  return LabelConnStats(*entries, frontends, services_,
                        workloads.ok() ? *workloads : std::vector<WorkloadCgroup>{});
}

absl::StatusOr<std::vector<metrics::MapFill>> ReadMapFills(const std::string& maps_dir) {
  std::vector<metrics::MapFill> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(maps_dir, ec)) {
    absl::StatusOr<sys::UniqueFd> fd = bpf::OpenPinned(entry.path().string());
    if (!fd.ok()) return fd.status();
    absl::StatusOr<bpf::MapInfo> info = bpf::GetMapInfo(fd->get());
    if (!info.ok()) return info.status();
    switch (info->type) {
      case BPF_MAP_TYPE_HASH:
      case BPF_MAP_TYPE_LRU_HASH:
      case BPF_MAP_TYPE_PERCPU_HASH:
      case BPF_MAP_TYPE_LRU_PERCPU_HASH:
      case BPF_MAP_TYPE_SOCKHASH:
        break;
      default:
        continue;
    }
    absl::StatusOr<uint64_t> n = bpf::CountMapEntries(fd->get(), info->key_size);
    if (!n.ok()) return n.status();
    out.push_back(
        {.map = entry.path().filename().string(), .entries = *n, .max_entries = info->max_entries});
  }
  if (ec) return sys::ErrnoToStatus(ec.value(), absl::StrCat("list ", maps_dir));
  return out;
}

}  // namespace sockmesh::agent
