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
  // Reads SM_CNT_SC_REDIRECT; it must move during the exchange.
  std::function<absl::StatusOr<uint64_t>()> redirects;
};

// Forks a child that joins the mesh cgroup (the agent itself may be outside it), connects a
// loopback TCP client to its own listener and sends `bytes` of a position-dependent pattern each
// way at once, checking every byte received. OK when the data arrived intact and the redirect
// counter moved; otherwise a status whose message says why in one line. The child is killed at
// the timeout. Call it before the process starts threads: the child runs after fork().
absl::Status ProbeShortCircuit(const ShortCircuitProbeOptions& options);

}  // namespace sockmesh::agent

#endif  // SOCKMESH_USERSPACE_AGENT_SHORT_CIRCUIT_PROBE_H_
