// SPDX-License-Identifier: Apache-2.0
// Keeps the kernel's service maps equal to a desired state, writing only what differs.
//
// A service's backend set is replaced atomically: the new set is written under a new revision
// (sm_be_v1 and sm_lut_v1 keys carry the revision), then the sm_svc_v1 entry is switched to it in a
// single map update, then the old revision's entries are deleted. A connect() sees the old set or
// the new one. If a write fails (a full map), the new revision's entries are removed again and the
// old set stays in force.
#ifndef SOCKMESH_USERSPACE_AGENT_MAP_SYNC_H_
#define SOCKMESH_USERSPACE_AGENT_MAP_SYNC_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "control_plane/model/service_model.h"
#include "userspace/agent/abi_conversion.h"
#include "userspace/bpf/abi.h"
#include "userspace/bpf/map_interface.h"

namespace sockmesh::agent {

// The maps map_sync writes; kernel maps in the agent, in-memory fakes in unit tests.
struct ServiceMaps {
  bpf::MapInterface<sm_svc_key, sm_svc>* services = nullptr;
  bpf::MapInterface<sm_be_key, sm_backend>* backends = nullptr;
  bpf::MapInterface<sm_lut_key, uint32_t>* lut = nullptr;
  // Live connection counts (written by the kernel); optional. MapSync only deletes entries that
  // are zero and belong to no current (service, backend) pair, so the map does not fill up.
  bpf::MapInterface<sm_be_conn_key, uint64_t>* conns = nullptr;
  // Outlier detection (lib/outlier.h); optional. MapSync writes each service's config and deletes
  // the kernel's failure state of services and backends that left.
  bpf::MapInterface<uint32_t, sm_outlier_cfg>* outlier_config = nullptr;
  bpf::MapInterface<sm_be_conn_key, sm_be_outlier>* outliers = nullptr;
  bpf::MapInterface<uint32_t, sm_svc_ejections>* ejections = nullptr;
};

struct SyncReport {
  int added = 0;
  int updated = 0;  // new backend set (new revision) or new settings
  int removed = 0;
  int unchanged = 0;
  int failed = 0;
  uint64_t entries_written = 0;
  uint64_t entries_deleted = 0;
  std::vector<std::string> errors;  // one readable line per failed service
  std::string Summary() const;
};

class MapSync {
 public:
  // Reads what the maps already hold (a previous agent's work), so that the first Apply() after a
  // restart writes only real differences. Entries of half-written revisions are deleted.
  static absl::StatusOr<MapSync> Recover(ServiceMaps maps, uint32_t table_size);

  SyncReport Apply(const model::DesiredState& desired);

  size_t service_count() const { return applied_.size(); }
  uint64_t orphans_removed() const { return orphans_removed_; }
  uint64_t conn_counts_pruned() const { return conn_counts_pruned_; }

 private:
  // A service as it is in the kernel now.
  struct Applied {
    uint32_t svc_id = 0;
    sm_svc value{};
    std::map<uint32_t, sm_backend> backends;  // backend_id -> backend
    std::vector<uint32_t> lut;                // slot -> backend_id
  };
  // A service as it should be, in kernel terms.
  struct Wanted {
    sm_svc header{};  // svc_id and rev not yet assigned
    std::map<uint32_t, sm_backend> backends;
    std::vector<uint32_t> lut;
  };

  MapSync(ServiceMaps maps, uint32_t table_size) : maps_(maps), table_size_(table_size) {}

  absl::Status RecoverState();
  absl::StatusOr<Wanted> Plan(const model::ServiceEntry& entry);
  uint32_t BackendId(const sm_backend& be);
  absl::Status Add(const model::Frontend& frontend, Wanted wanted, SyncReport& report);
  absl::Status Update(const model::Frontend& frontend, Applied& applied, Wanted wanted,
                      SyncReport& report);
  absl::Status Remove(const model::Frontend& frontend, SyncReport& report);
  absl::Status WriteRevision(uint32_t svc_id, uint32_t rev, const Wanted& wanted,
                             SyncReport& report);
  void DeleteRevision(uint32_t svc_id, uint32_t rev, const std::map<uint32_t, sm_backend>& backends,
                      size_t lut_size, SyncReport& report);
  void PruneBackendIds();
  void PruneConnCounts();
  // Writes or deletes the outlier configuration of every applied service; drops failure state of
  // services and (service, backend) pairs that are gone.
  void SyncOutliers(const model::DesiredState& desired, SyncReport& report);
  absl::Status RecoverOutliers();
  std::set<std::pair<uint32_t, uint32_t>> LivePairs() const;

  ServiceMaps maps_;
  uint32_t table_size_;
  std::map<model::Frontend, Applied> applied_;
  std::map<uint32_t, sm_outlier_cfg> outlier_applied_;  // svc_id -> config in the kernel
  // Backend ids are per (address, port, family) and stable, so affinity entries survive updates.
  std::map<std::vector<uint8_t>, uint32_t> backend_ids_;
  uint32_t next_backend_id_ = 1;
  uint32_t next_svc_id_ = 1;
  uint64_t orphans_removed_ = 0;
  uint64_t conn_counts_pruned_ = 0;
};

}  // namespace sockmesh::agent

#endif  // SOCKMESH_USERSPACE_AGENT_MAP_SYNC_H_
