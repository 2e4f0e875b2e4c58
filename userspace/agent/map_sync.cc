// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/map_sync.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace sockmesh::agent {
namespace {

// What makes two backends the same backend, whatever their weight.
std::vector<uint8_t> BackendIdentity(const sm_backend& be) {
  std::vector<uint8_t> id(sizeof(be.addr) + sizeof(be.port) + sizeof(be.family));
  std::memcpy(id.data(), be.addr, sizeof(be.addr));
  std::memcpy(id.data() + sizeof(be.addr), &be.port, sizeof(be.port));
  id.back() = be.family;
  return id;
}

bool SameBackends(const std::map<uint32_t, sm_backend>& a,
                  const std::map<uint32_t, sm_backend>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
    return x.first == y.first && bpf::AbiEqual(x.second, y.second);
  });
}

bool SameSettings(const sm_svc& a, const sm_svc& b) {
  return a.algo == b.algo && a.affinity_timeout_s == b.affinity_timeout_s &&
         a.lut_size == b.lut_size && a.backend_count == b.backend_count &&
         a.max_conns_per_backend == b.max_conns_per_backend;
}

uint32_t NextRev(uint32_t rev) { return rev + 1 == 0 ? 1 : rev + 1; }

std::string Describe(const model::Frontend& frontend) { return frontend.ToString(); }

}  // namespace

std::string SyncReport::Summary() const {
  return absl::StrCat(added, " added, ", updated, " updated, ", removed, " removed, ", unchanged,
                      " unchanged, ", failed, " failed (", entries_written, " map writes, ",
                      entries_deleted, " deletes)");
}

absl::StatusOr<MapSync> MapSync::Recover(ServiceMaps maps, uint32_t table_size) {
  MapSync sync(maps, table_size);
  if (absl::Status s = sync.RecoverState(); !s.ok()) return s;
  if (absl::Status s = sync.RecoverOutliers(); !s.ok()) return s;
  return sync;
}

absl::Status MapSync::RecoverState() {
  auto services = maps_.services->Dump();
  if (!services.ok()) return services.status();
  auto backends = maps_.backends->Dump();
  if (!backends.ok()) return backends.status();
  auto lut = maps_.lut->Dump();
  if (!lut.ok()) return lut.status();

  std::map<uint32_t, std::pair<model::Frontend, uint32_t>> live;  // svc_id -> frontend, rev
  for (const auto& [key, value] : *services) {
    absl::StatusOr<model::Frontend> frontend = FromSvcKey(key);
    if (!frontend.ok()) return frontend.status();
    Applied& a = applied_[*frontend];
    a.svc_id = value.svc_id;
    a.value = value;
    a.lut.assign(LutSlotsWritten(value), 0);
    live[value.svc_id] = {*frontend, value.rev};
    next_svc_id_ = std::max(next_svc_id_, value.svc_id + 1);
  }
  auto current = [&](uint32_t svc_id, uint32_t rev) -> Applied* {
    auto it = live.find(svc_id);
    if (it == live.end() || it->second.second != rev) return nullptr;
    return &applied_[it->second.first];
  };
  for (const auto& [key, be] : *backends) {
    Applied* a = current(key.svc_id, key.rev);
    if (!a) {  // a revision that was being written or retired when the last agent stopped
      (void)maps_.backends->Delete(key);
      ++orphans_removed_;
      continue;
    }
    a->backends[key.backend_id] = be;
    backend_ids_[BackendIdentity(be)] = key.backend_id;
    next_backend_id_ = std::max(next_backend_id_, key.backend_id + 1);
  }
  for (const auto& [key, backend_id] : *lut) {
    Applied* a = current(key.svc_id, key.rev);
    if (!a || key.slot >= a->lut.size()) {
      (void)maps_.lut->Delete(key);
      ++orphans_removed_;
      continue;
    }
    a->lut[key.slot] = backend_id;
  }
  return absl::OkStatus();
}

uint32_t MapSync::BackendId(const sm_backend& be) {
  auto [it, inserted] = backend_ids_.try_emplace(BackendIdentity(be), next_backend_id_);
  if (inserted) ++next_backend_id_;
  return it->second;
}

absl::StatusOr<MapSync::Wanted> MapSync::Plan(const model::ServiceEntry& entry) {
  absl::StatusOr<ServiceTables> tables = BuildServiceTables(entry, table_size_);
  if (!tables.ok()) return tables.status();
  Wanted w;
  std::vector<uint32_t> ids;
  ids.reserve(tables->backends.size());
  for (const model::Backend& b : tables->backends) {
    sm_backend be = ToAbiBackend(b);
    uint32_t id = BackendId(be);
    ids.push_back(id);
    w.backends[id] = be;
  }
  w.lut.reserve(tables->lut.size());
  for (uint32_t index : tables->lut) w.lut.push_back(ids[index]);
  w.header.lut_size = tables->lut_size;
  w.header.backend_count = static_cast<uint32_t>(w.backends.size());
  w.header.affinity_timeout_s = tables->affinity_timeout_s;
  w.header.algo = tables->algo;
  w.header.max_conns_per_backend = tables->max_conns_per_backend;
  return w;
}

SyncReport MapSync::Apply(const model::DesiredState& desired) {
  SyncReport report;
  auto fail = [&](const model::Frontend& f, const absl::Status& s) {
    ++report.failed;
    report.errors.push_back(absl::StrCat(Describe(f), ": ", s.message()));
  };
  // Removals first: they free room for what comes next.
  std::vector<model::Frontend> gone;
  for (const auto& [frontend, applied] : applied_) {
    if (!desired.contains(frontend)) gone.push_back(frontend);
  }
  for (const model::Frontend& f : gone) {
    if (absl::Status s = Remove(f, report); !s.ok()) fail(f, s);
  }
  for (const auto& [frontend, entry] : desired) {
    absl::StatusOr<Wanted> wanted = Plan(entry);
    absl::Status s = wanted.status();
    if (s.ok()) {
      auto it = applied_.find(frontend);
      s = it == applied_.end() ? Add(frontend, *std::move(wanted), report)
                               : Update(frontend, it->second, *std::move(wanted), report);
    }
    if (!s.ok()) fail(frontend, s);
  }
  PruneBackendIds();
  PruneConnCounts();
  SyncOutliers(desired, report);
  return report;
}

absl::Status MapSync::Add(const model::Frontend& frontend, Wanted wanted, SyncReport& report) {
  uint32_t svc_id = next_svc_id_;
  constexpr uint32_t kFirstRev = 1;
  if (absl::Status s = WriteRevision(svc_id, kFirstRev, wanted, report); !s.ok()) return s;
  sm_svc value = wanted.header;
  value.svc_id = svc_id;
  value.rev = kFirstRev;
  if (absl::Status s = maps_.services->Update(ToSvcKey(frontend), value); !s.ok()) {
    DeleteRevision(svc_id, kFirstRev, wanted.backends, wanted.lut.size(), report);
    return s;
  }
  ++report.entries_written;
  ++next_svc_id_;
  applied_[frontend] = Applied{.svc_id = svc_id,
                               .value = value,
                               .backends = std::move(wanted.backends),
                               .lut = std::move(wanted.lut)};
  ++report.added;
  return absl::OkStatus();
}

absl::Status MapSync::Update(const model::Frontend& frontend, Applied& applied, Wanted wanted,
                             SyncReport& report) {
  bool same_tables = SameBackends(applied.backends, wanted.backends) && applied.lut == wanted.lut;
  if (same_tables && SameSettings(applied.value, wanted.header)) {
    ++report.unchanged;
    return absl::OkStatus();
  }
  sm_svc value = wanted.header;
  value.svc_id = applied.svc_id;
  value.rev = same_tables ? applied.value.rev : NextRev(applied.value.rev);
  if (!same_tables) {
    if (absl::Status s = WriteRevision(value.svc_id, value.rev, wanted, report); !s.ok()) return s;
  }
  // The switch: one update of one element, atomic for readers.
  if (absl::Status s = maps_.services->Update(ToSvcKey(frontend), value); !s.ok()) {
    if (!same_tables)
      DeleteRevision(value.svc_id, value.rev, wanted.backends, wanted.lut.size(), report);
    return s;
  }
  ++report.entries_written;
  if (!same_tables) {
    DeleteRevision(applied.svc_id, applied.value.rev, applied.backends, applied.lut.size(), report);
  }
  applied.value = value;
  applied.backends = std::move(wanted.backends);
  applied.lut = std::move(wanted.lut);
  ++report.updated;
  return absl::OkStatus();
}

absl::Status MapSync::Remove(const model::Frontend& frontend, SyncReport& report) {
  Applied& applied = applied_[frontend];
  absl::Status s = maps_.services->Delete(ToSvcKey(frontend));
  if (!s.ok() && !absl::IsNotFound(s)) return s;
  ++report.entries_deleted;
  DeleteRevision(applied.svc_id, applied.value.rev, applied.backends, applied.lut.size(), report);
  applied_.erase(frontend);
  ++report.removed;
  return absl::OkStatus();
}

absl::Status MapSync::WriteRevision(uint32_t svc_id, uint32_t rev, const Wanted& wanted,
                                    SyncReport& report) {
  auto rollback = [&](const absl::Status& s) {
    DeleteRevision(svc_id, rev, wanted.backends, wanted.lut.size(), report);
    return absl::Status(s.code(),
                        absl::StrCat(s.message(), "; the previous backend set stays in force"));
  };
  for (const auto& [backend_id, be] : wanted.backends) {
    sm_be_key key{.svc_id = svc_id, .rev = rev, .backend_id = backend_id};
    if (absl::Status s = maps_.backends->Update(key, be); !s.ok()) return rollback(s);
    ++report.entries_written;
  }
  for (uint32_t slot = 0; slot < wanted.lut.size(); ++slot) {
    sm_lut_key key{.svc_id = svc_id, .rev = rev, .slot = slot};
    if (absl::Status s = maps_.lut->Update(key, wanted.lut[slot]); !s.ok()) return rollback(s);
    ++report.entries_written;
  }
  return absl::OkStatus();
}

void MapSync::DeleteRevision(uint32_t svc_id, uint32_t rev,
                             const std::map<uint32_t, sm_backend>& backends, size_t lut_size,
                             SyncReport& report) {
  // Hooks that still hold this revision miss on lookup and retry with the new one (lib/lb.h).
  for (uint32_t slot = 0; slot < lut_size; ++slot) {
    if (maps_.lut->Delete(sm_lut_key{.svc_id = svc_id, .rev = rev, .slot = slot}).ok()) {
      ++report.entries_deleted;
    }
  }
  for (const auto& [backend_id, be] : backends) {
    if (maps_.backends->Delete(sm_be_key{.svc_id = svc_id, .rev = rev, .backend_id = backend_id})
            .ok()) {
      ++report.entries_deleted;
    }
  }
}

void MapSync::PruneBackendIds() {
  std::set<uint32_t> used;
  for (const auto& [frontend, a] : applied_) {
    for (const auto& [id, be] : a.backends) used.insert(id);
  }
  std::erase_if(backend_ids_, [&](const auto& kv) { return !used.contains(kv.second); });
}

std::set<std::pair<uint32_t, uint32_t>> MapSync::LivePairs() const {
  std::set<std::pair<uint32_t, uint32_t>> live;
  for (const auto& [frontend, a] : applied_) {
    for (const auto& [id, be] : a.backends) live.insert({a.svc_id, id});
  }
  return live;
}

void MapSync::PruneConnCounts() {
  if (!maps_.conns) return;
  absl::StatusOr<std::vector<std::pair<sm_be_conn_key, uint64_t>>> counts = maps_.conns->Dump();
  if (!counts.ok()) return;  // next Apply tries again; the kernel keeps counting meanwhile
  const std::set<std::pair<uint32_t, uint32_t>> live = LivePairs();
  // A count that is not zero belongs to open sockets, whatever the desired state says: it goes
  // when they close. A hook may still race a delete here (see sm_be_conns_v1 in maps.h), but only
  // for a backend that has already left its service.
  for (const auto& [key, count] : *counts) {
    if (count != 0 || live.contains({key.svc_id, key.backend_id})) continue;
    if (maps_.conns->Delete(key).ok()) ++conn_counts_pruned_;
  }
}

absl::Status MapSync::RecoverOutliers() {
  if (!maps_.outlier_config) return absl::OkStatus();
  auto configs = maps_.outlier_config->Dump();
  if (!configs.ok()) return configs.status();
  for (const auto& [svc_id, cfg] : *configs) outlier_applied_[svc_id] = cfg;
  return absl::OkStatus();
}

void MapSync::SyncOutliers(const model::DesiredState& desired, SyncReport& report) {
  if (!maps_.outlier_config) return;
  std::map<uint32_t, sm_outlier_cfg> wanted;
  for (const auto& [frontend, a] : applied_) {
    auto entry = desired.find(frontend);
    if (entry == desired.end()) continue;
    if (std::optional<sm_outlier_cfg> cfg = ToAbiOutlierConfig(entry->second.outlier)) {
      wanted[a.svc_id] = *cfg;
    }
  }
  for (const auto& [svc_id, cfg] : wanted) {
    auto it = outlier_applied_.find(svc_id);
    if (it != outlier_applied_.end() && bpf::AbiEqual(it->second, cfg)) continue;
    if (absl::Status s = maps_.outlier_config->Update(svc_id, cfg); !s.ok()) {
      ++report.failed;
      report.errors.push_back(
          absl::StrCat("outlier detection of service ", svc_id, ": ", s.message()));
      continue;
    }
    ++report.entries_written;
    outlier_applied_[svc_id] = cfg;
  }
  // A service without outlier detection keeps no ejections: its backends are all in again.
  for (auto it = outlier_applied_.begin(); it != outlier_applied_.end();) {
    if (wanted.contains(it->first)) {
      ++it;
      continue;
    }
    if (maps_.outlier_config->Delete(it->first).ok()) ++report.entries_deleted;
    if (maps_.ejections) (void)maps_.ejections->Delete(it->first);
    it = outlier_applied_.erase(it);
  }
  if (!maps_.outliers) return;
  absl::StatusOr<std::vector<std::pair<sm_be_conn_key, sm_be_outlier>>> state =
      maps_.outliers->Dump();
  if (!state.ok()) return;  // next Apply tries again
  const std::set<std::pair<uint32_t, uint32_t>> live = LivePairs();
  for (const auto& [key, o] : *state) {
    if (wanted.contains(key.svc_id) && live.contains({key.svc_id, key.backend_id})) continue;
    if (maps_.outliers->Delete(key).ok()) ++report.entries_deleted;
  }
}

}  // namespace sockmesh::agent
