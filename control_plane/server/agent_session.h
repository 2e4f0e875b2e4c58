// SPDX-License-Identifier: Apache-2.0
// What the control plane knows about one agent's stream, and which message it sends next. Pure
// bookkeeping without gRPC, so the protocol's rules are unit-tested:
//  - the first message is a full Snapshot; after that, Deltas against the last ACKed version;
//  - one version in flight at a time, so every Delta's base is a state the agent really has;
//  - a NACKed version is never sent again: the next message waits for the next version.
#ifndef SOCKMESH_CONTROL_PLANE_SERVER_AGENT_SESSION_H_
#define SOCKMESH_CONTROL_PLANE_SERVER_AGENT_SESSION_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "control_plane/model/service_model.h"
#include "control_plane/server/versioned_state.h"
#include "sockmesh/v1/control_plane.pb.h"

namespace sockmesh::cp {

class AgentSession {
 public:
  AgentSession(std::string node_name, std::string agent_version, absl::Time now);

  // The message to send for `current`, or null when a version is in flight or `current` was
  // already sent (ACKed or NACKed). The message is shared with every other stream that sends the
  // same one (see version_messages.h).
  std::shared_ptr<const v1::ServerMessage> Next(const StateVersion& current, absl::Time now);

  // The agent's answer to the version in flight. FailedPrecondition for an answer to any other
  // version (a confused or stale peer); the bookkeeping is then unchanged. On success, returns the
  // push latency: from the version's creation (or, for a version older than this stream, from
  // the stream's start) to the answer.
  absl::StatusOr<absl::Duration> OnAck(uint64_t version, absl::Time now);
  absl::StatusOr<absl::Duration> OnNack(uint64_t version, std::string error, absl::Time now);

  // Whether Next(current) would return a message, and whether that message is a full snapshot
  // (nothing ACKed yet on this stream), without building it.
  bool HasNext(const StateVersion& current) const {
    return !in_flight_.has_value() && current.version != status_.last_sent_version();
  }
  bool NextIsSnapshot() const { return acked_.state == nullptr; }

  void Touch(absl::Time now) { status_.set_last_contact_unix_ms(absl::ToUnixMillis(now)); }

  uint64_t acked_version() const { return status_.last_acked_version(); }
  bool in_flight() const { return in_flight_.has_value(); }
  const v1::AgentStatus& status() const { return status_; }

 private:
  struct InFlight {
    StateVersion sent;
  };
  absl::Duration PushLatency(absl::Time now) const;

  const absl::Time connected_;
  v1::AgentStatus status_;
  std::optional<InFlight> in_flight_;
  StateVersion acked_;  // state == nullptr until the first ACK
};

}  // namespace sockmesh::cp

#endif  // SOCKMESH_CONTROL_PLANE_SERVER_AGENT_SESSION_H_
