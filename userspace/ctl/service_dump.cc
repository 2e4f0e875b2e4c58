// SPDX-License-Identifier: Apache-2.0
#include "userspace/ctl/service_dump.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string_view>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "userspace/agent/abi_conversion.h"
#include "userspace/agent/datapath.h"
#include "userspace/ctl/text_table.h"

namespace sockmesh::ctl {
namespace {

// The agent swaps a revision in one map update and then deletes the old one, so a service read
// while that happens shows half a set. Reading it again normally succeeds at once; a service that
// keeps changing (an agent applying a flapping source) is shown as last read, with a warning.
constexpr int kMaxReadAttempts = 5;

constexpr char kRefusedNote[] = "no backends: connects are refused";

using BackendSet = std::map<uint32_t, sm_backend>;                         // backend_id -> entry
using BackendIndex = std::map<std::pair<uint32_t, uint32_t>, BackendSet>;  // (svc_id, rev)

std::string Str(std::string_view s) { return std::string(s); }

absl::StatusOr<BackendIndex> IndexBackends(const bpf::MapInterface<sm_be_key, sm_backend>& map) {
  absl::StatusOr<std::vector<std::pair<sm_be_key, sm_backend>>> entries = map.Dump();
  if (!entries.ok()) return entries.status();
  BackendIndex index;
  for (const auto& [key, be] : *entries) index[{key.svc_id, key.rev}][key.backend_id] = be;
  return index;
}

std::string HostPort(const model::IpAddress& ip, uint16_t port) {
  if (ip.is_v6()) return absl::StrCat("[", ip.ToString(), "]:", port);
  return absl::StrCat(ip.ToString(), ":", port);
}

// Reads the backend set that `svc` (one value of sm_svc_v1) points at.
absl::StatusOr<ServiceView> ReadRevision(const model::Frontend& frontend, const sm_svc& svc,
                                         const BackendIndex& index, const ServiceMapsReader& maps) {
  ServiceView view;
  view.frontend = frontend;
  view.svc_id = svc.svc_id;
  view.revision = svc.rev;
  view.affinity_timeout_s = svc.affinity_timeout_s;
  view.lut_size = svc.lut_size;
  view.max_connections_per_backend = svc.max_conns_per_backend;
  if (absl::StatusOr<model::LbAlgorithm> algo = agent::FromAbiAlgorithm(svc.algo); algo.ok()) {
    view.algorithm = Str(model::LbAlgorithmName(*algo));
  } else {
    view.algorithm = absl::StrCat("unknown(", svc.algo, ")");
    view.warnings.push_back(std::string(algo.status().message()));
  }

  // A corrupt lut_size must not turn into four billion lookups.
  uint32_t slots_to_read = svc.lut_size;
  if (slots_to_read > maps.lut->max_entries()) {
    view.warnings.push_back(absl::StrCat("selection table size ", svc.lut_size, " exceeds ",
                                         agent::kLutMap, "'s capacity ", maps.lut->max_entries()));
    slots_to_read = maps.lut->max_entries();
  }
  std::map<uint32_t, uint32_t> slots;  // backend_id -> slots
  uint32_t missing = 0;
  for (uint32_t slot = 0; slot < slots_to_read; ++slot) {
    absl::StatusOr<uint32_t> id =
        maps.lut->Lookup(sm_lut_key{.svc_id = svc.svc_id, .rev = svc.rev, .slot = slot});
    if (id.ok()) {
      ++slots[*id];
    } else if (absl::IsNotFound(id.status())) {
      ++missing;
    } else {
      return id.status();
    }
  }

  BackendSet set;
  if (auto it = index.find({svc.svc_id, svc.rev}); it != index.end()) set = it->second;
  for (const auto& [id, count] : slots) {
    if (set.contains(id)) continue;
    // Written after the index was dumped, or really missing.
    absl::StatusOr<sm_backend> be =
        maps.backends->Lookup(sm_be_key{.svc_id = svc.svc_id, .rev = svc.rev, .backend_id = id});
    if (be.ok()) {
      set[id] = *be;
    } else if (absl::IsNotFound(be.status())) {
      view.warnings.push_back(absl::StrCat(count, " selection-table slots point at backend id ", id,
                                           ", which has no ", agent::kBackendsMap,
                                           " entry: connects landing there are not balanced"));
    } else {
      return be.status();
    }
  }
  for (const auto& [id, be] : set) {
    absl::StatusOr<model::Backend> backend = agent::FromAbiBackend(be);
    if (!backend.ok()) {
      view.warnings.push_back(absl::StrCat("backend id ", id, ": ", backend.status().message()));
      continue;
    }
    auto it = slots.find(id);
    uint64_t active = 0;
    if (maps.conns) {
      absl::StatusOr<uint64_t> count =
          maps.conns->Lookup(sm_be_conn_key{.svc_id = svc.svc_id, .backend_id = id});
      if (count.ok()) {
        active = *count;
      } else if (!absl::IsNotFound(count.status())) {
        return count.status();
      }
    }
    BackendView bv{.address = backend->address,
                   .port = backend->port,
                   .weight = backend->weight,
                   .backend_id = id,
                   .slots = it == slots.end() ? 0 : it->second,
                   .active_connections = active};
    if (maps.outliers) {
      absl::StatusOr<sm_be_outlier> o =
          maps.outliers->Lookup(sm_be_conn_key{.svc_id = svc.svc_id, .backend_id = id});
      if (o.ok()) {
        bv.consecutive_failures = o->consecutive_failures;
        bv.ejections = o->ejections;
        if (o->ejected_until_ns > maps.now_ns) {
          bv.ejected_remaining_ms = (o->ejected_until_ns - maps.now_ns + 999999) / 1000000;
        }
      } else if (!absl::IsNotFound(o.status())) {
        return o.status();
      }
    }
    view.backends.push_back(bv);
  }
  std::sort(view.backends.begin(), view.backends.end(),
            [](const BackendView& a, const BackendView& b) {
              return std::tie(a.address, a.port) < std::tie(b.address, b.port);
            });

  if (missing > 0) {
    view.warnings.push_back(absl::StrCat(missing, " of ", svc.lut_size,
                                         " selection-table slots are missing: connects landing "
                                         "there are not balanced"));
  }
  if (svc.backend_count != set.size()) {
    view.warnings.push_back(absl::StrCat("service entry counts ", svc.backend_count, " backends, ",
                                         agent::kBackendsMap, " holds ", set.size()));
  }
  return view;
}

std::string AffinityText(uint32_t timeout_s) {
  return timeout_s == 0 ? "none" : absl::StrCat("ClientIP/", timeout_s, "s");
}

std::string PercentText(double share) { return absl::StrFormat("%.1f%%", share * 100.0); }

// "-" while in rotation; "12.3s left (2x)" while ejected, with the back-off multiplier.
std::string EjectedText(const BackendView& b) {
  if (b.ejected_remaining_ms == 0) return "-";
  return absl::StrFormat("%.1fs left (%dx)", static_cast<double>(b.ejected_remaining_ms) / 1000.0,
                         b.ejections);
}

std::string LimitText(uint32_t limit) { return limit == 0 ? "none" : absl::StrCat(limit); }

// Least-connections has no fixed share: the live counts decide.
bool HasShare(const ServiceView& s) {
  return s.algorithm != model::LbAlgorithmName(model::LbAlgorithm::kLeastConnections);
}

}  // namespace

double ServiceView::ShareOf(const BackendView& backend) const {
  return lut_size == 0 ? 0.0 : static_cast<double>(backend.slots) / lut_size;
}

absl::StatusOr<ServiceDump> ReadServices(const ServiceMapsReader& maps, std::string instance) {
  ServiceDump dump;
  dump.instance = std::move(instance);
  absl::StatusOr<std::vector<std::pair<sm_svc_key, sm_svc>>> services = maps.services->Dump();
  if (!services.ok()) return services.status();
  absl::StatusOr<BackendIndex> index = IndexBackends(*maps.backends);
  if (!index.ok()) return index.status();

  for (const auto& [key, first] : *services) {
    absl::StatusOr<model::Frontend> frontend = agent::FromSvcKey(key);
    if (!frontend.ok()) {
      dump.warnings.push_back(absl::StrCat(agent::kServicesMap, " entry for service id ",
                                           first.svc_id,
                                           " skipped: ", frontend.status().message()));
      continue;
    }
    sm_svc current = first;
    std::optional<ServiceView> view;
    for (int attempt = 1;; ++attempt) {
      absl::StatusOr<ServiceView> read = ReadRevision(*frontend, current, *index, maps);
      if (!read.ok()) return read.status();
      absl::StatusOr<sm_svc> again = maps.services->Lookup(key);
      if (absl::IsNotFound(again.status())) break;  // removed meanwhile: no longer a frontend
      if (!again.ok()) return again.status();
      if (bpf::AbiEqual(*again, current)) {
        view = *std::move(read);
        break;
      }
      if (attempt == kMaxReadAttempts) {
        view = *std::move(read);
        view->warnings.push_back(absl::StrCat("the backend set changed ", kMaxReadAttempts,
                                              " times while it was read; shown as last read"));
        break;
      }
      current = *again;
      // The new revision's backends were written after the index was taken.
      index = IndexBackends(*maps.backends);
      if (!index.ok()) return index.status();
    }
    if (view) dump.services.push_back(*std::move(view));
  }
  std::sort(dump.services.begin(), dump.services.end(),
            [](const ServiceView& a, const ServiceView& b) { return a.frontend < b.frontend; });
  return dump;
}

std::string FormatServicesTable(const ServiceDump& dump) {
  if (dump.services.empty() && dump.warnings.empty()) {
    return absl::StrCat("No services in datapath instance \"", dump.instance, "\".\n");
  }
  TextTable table({"FRONTEND", "ALGORITHM", "AFFINITY", "LIMIT", "REVISION", "BACKEND", "WEIGHT",
                   "SHARE", "ACTIVE", "EJECTED"});
  for (const ServiceView& s : dump.services) {
    std::vector<std::string> head = {
        s.frontend.ToString(), s.algorithm, AffinityText(s.affinity_timeout_s),
        LimitText(s.max_connections_per_backend), absl::StrCat(s.revision)};
    if (s.backends.empty()) {
      head.push_back("<none>");
      table.AddRow(std::move(head), absl::StrCat("(", kRefusedNote, ")"));
    }
    for (size_t i = 0; i < s.backends.size(); ++i) {
      const BackendView& b = s.backends[i];
      std::vector<std::string> row =
          i == 0 ? head : std::vector<std::string>(head.size(), std::string());
      row.push_back(HostPort(b.address, b.port));
      row.push_back(absl::StrCat(b.weight));
      row.push_back(HasShare(s) ? PercentText(s.ShareOf(b)) : "-");
      row.push_back(absl::StrCat(b.active_connections));
      row.push_back(EjectedText(b));
      table.AddRow(std::move(row));
    }
    if (!s.backends.empty() && s.lut_size == 0) table.AddNote(absl::StrCat("  ! ", kRefusedNote));
    for (const std::string& w : s.warnings) table.AddNote(absl::StrCat("  ! ", w));
  }
  for (const std::string& w : dump.warnings) table.AddNote(absl::StrCat("! ", w));
  return table.Render();
}

std::string FormatServicesJson(const ServiceDump& dump) {
  using Json = nlohmann::ordered_json;
  Json services = Json::array();
  for (const ServiceView& s : dump.services) {
    Json backends = Json::array();
    for (const BackendView& b : s.backends) {
      backends.push_back(Json{{"address", b.address.ToString()},
                              {"port", b.port},
                              {"weight", b.weight},
                              {"share", s.ShareOf(b)},
                              {"slots", b.slots},
                              {"backend_id", b.backend_id},
                              {"active_connections", b.active_connections},
                              {"ejected", b.ejected_remaining_ms > 0},
                              {"ejected_remaining_ms", b.ejected_remaining_ms},
                              {"consecutive_connect_failures", b.consecutive_failures},
                              {"ejections", b.ejections}});
    }
    Json entry = {{"frontend", s.frontend.ToString()},
                  {"vip", s.frontend.vip.ToString()},
                  {"port", s.frontend.port},
                  {"protocol", Str(model::ProtocolName(s.frontend.protocol))},
                  {"algorithm", s.algorithm},
                  {"max_connections_per_backend", s.max_connections_per_backend},
                  {"affinity_timeout_seconds", s.affinity_timeout_s},
                  {"revision", s.revision},
                  {"service_id", s.svc_id},
                  {"lut_size", s.lut_size},
                  {"backends", std::move(backends)}};
    if (s.lut_size == 0) entry["note"] = kRefusedNote;
    entry["warnings"] = s.warnings;
    services.push_back(std::move(entry));
  }
  Json out = {{"instance", dump.instance}, {"services", std::move(services)}};
  if (!dump.warnings.empty()) out["warnings"] = dump.warnings;
  return out.dump(2) + "\n";
}

}  // namespace sockmesh::ctl
