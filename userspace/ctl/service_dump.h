// SPDX-License-Identifier: Apache-2.0
// `sockmeshctl services`: the services as the kernel holds them, read back from the datapath's
// maps (never from the agent's desired state, so the tool shows what connect() really does), and
// printed as a table or as JSON.
#ifndef SOCKMESH_USERSPACE_CTL_SERVICE_DUMP_H_
#define SOCKMESH_USERSPACE_CTL_SERVICE_DUMP_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "control_plane/model/service_model.h"
#include "userspace/bpf/abi.h"
#include "userspace/bpf/map_interface.h"

namespace sockmesh::ctl {

// One backend of a service's live revision.
struct BackendView {
  model::IpAddress address;
  uint16_t port = 0;    // host byte order
  uint32_t weight = 0;  // as configured; informational, the slots decide
  uint32_t backend_id = 0;
  uint32_t slots = 0;               // selection-table slots that point at this backend
  uint64_t active_connections = 0;  // live TCP connections counted by the kernel (sm_be_conns_v1)
  // Outlier ejection (sm_be_outlier_v1): time left out of rotation (0 = in), failures in a row
  // since the last established connect, and the back-off multiplier.
  uint64_t ejected_remaining_ms = 0;
  uint32_t consecutive_failures = 0;
  uint32_t ejections = 0;
};

// One frontend and its live backend set (the entries under the service's current revision).
struct ServiceView {
  model::Frontend frontend;
  uint32_t svc_id = 0;
  uint32_t revision = 0;
  // "random", "maglev", "least-connections", or "unknown(N)" for a newer agent's value.
  std::string algorithm;
  uint32_t max_connections_per_backend = 0;  // 0 = unlimited
  uint32_t affinity_timeout_s = 0;           // 0 = no session affinity
  uint32_t lut_size = 0;                     // selection-table slots; 0 = connects are refused
  std::vector<BackendView> backends;         // sorted by address, then port
  // Inconsistencies found while reading (missing slots, unknown backends): what the kernel would
  // count as inconsistent_maps_failed_open.
  std::vector<std::string> warnings;

  // The backend's fraction of the selection table, 0..1 (0 when the table is empty).
  double ShareOf(const BackendView& backend) const;
};

struct ServiceDump {
  std::string instance;
  std::vector<ServiceView> services;  // sorted by frontend
  std::vector<std::string> warnings;  // entries that could not be attributed to a service
};

// The read-only views of the three service maps that ReadServices needs. Kernel maps in
// sockmeshctl, in-memory maps in unit tests.
struct ServiceMapsReader {
  const bpf::MapInterface<sm_svc_key, sm_svc>* services = nullptr;
  const bpf::MapInterface<sm_be_key, sm_backend>* backends = nullptr;
  const bpf::MapInterface<sm_lut_key, uint32_t>* lut = nullptr;
  // Live connection counts; optional (no ACTIVE figures without it).
  const bpf::MapInterface<sm_be_conn_key, uint64_t>* conns = nullptr;
  // Outlier state; optional (an agent older than outlier detection has no such map).
  const bpf::MapInterface<sm_be_conn_key, sm_be_outlier>* outliers = nullptr;
  // CLOCK_MONOTONIC now, the kernel's bpf_ktime_get_ns() clock; tests pass their own.
  uint64_t now_ns = 0;
};

// Reads every frontend with the backend set of its current revision. The agent may swap a
// service's revision while this runs; such a service is read again (see the .cc).
absl::StatusOr<ServiceDump> ReadServices(const ServiceMapsReader& maps, std::string instance);

// Table: one row per backend, the frontend's columns only on its first row (cilium's layout).
std::string FormatServicesTable(const ServiceDump& dump);
// JSON (pretty-printed, keys in a stable order):
// {"instance": ..., "services": [{"frontend": "127.10.0.10:80/TCP", "vip": ..., "port": ...,
//  "protocol": "TCP", "algorithm": ..., "max_connections_per_backend": ...,
//  "affinity_timeout_seconds": ..., "revision": ..., "backends": [{"address": ..., "port": ...,
//  "weight": ..., "share": 0.25, ..., "active_connections": ...}]}]}
std::string FormatServicesJson(const ServiceDump& dump);

}  // namespace sockmesh::ctl

#endif  // SOCKMESH_USERSPACE_CTL_SERVICE_DUMP_H_
