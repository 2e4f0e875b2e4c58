// SPDX-License-Identifier: Apache-2.0
// The start-up check of the same-node short-circuit: real sockets in the mesh cgroup exchange a
// known pattern and must get it back byte for byte, through the redirect path.
#ifndef SOCKMESH_USERSPACE_AGENT_SHORT_CIRCUIT_PROBE_H_
#define SOCKMESH_USERSPACE_AGENT_SHORT_CIRCUIT_PROBE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sockmesh::agent {

struct ShortCircuitProbeOptions {
  std::string cgroup_path;  // the mesh cgroup (absolute)
  size_t bytes = 1 << 20;   // sent each way
  absl::Duration timeout = absl::Seconds(2);
  // Also require back-pressure: a peer that stops reading must make the sender see EAGAIN before
  // kBackPressureLimit bytes are queued. Some kernels (6.18 here) queue redirected data without
  // limit, so one slow reader could exhaust the node's TCP memory.
  bool check_back_pressure = true;
  // Reads SM_CNT_SC_REDIRECT; it must move during the exchange.
  std::function<absl::StatusOr<uint64_t>()> redirects;
};

// Forks a child that joins the mesh cgroup (the agent itself may be outside it), connects a
// loopback TCP client to its own listener and sends `bytes` of a position-dependent pattern each
// way at once, checking every byte received, then (with check_back_pressure) lets one side stop
// reading. OK when the data arrived intact, the redirect counter moved and the sender was held
// back; otherwise a status whose message says why in one line. The child is killed at the timeout.
// Call it before the process starts threads: the child runs after fork().
absl::Status ProbeShortCircuit(const ShortCircuitProbeOptions& options);

// Bytes a non-reading peer may have queued before the sender must see EAGAIN. Plain loopback TCP
// stops at the socket buffers (a few MiB).
inline constexpr size_t kBackPressureLimit = 32u << 20;

// The first words of the probe's message when back-pressure is missing.
inline constexpr char kNoBackPressure[] = "no back-pressure";

}  // namespace sockmesh::agent

#endif  // SOCKMESH_USERSPACE_AGENT_SHORT_CIRCUIT_PROBE_H_
