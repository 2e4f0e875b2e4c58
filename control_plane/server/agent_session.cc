// SPDX-License-Identifier: Apache-2.0
#include "control_plane/server/agent_session.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "control_plane/server/version_messages.h"

namespace sockmesh::cp {

AgentSession::AgentSession(std::string node_name, std::string agent_version, absl::Time now)
    : connected_(now) {
  status_.set_node_name(std::move(node_name));
  status_.set_agent_version(std::move(agent_version));
  status_.set_connected_since_unix_ms(absl::ToUnixMillis(now));
  status_.set_last_contact_unix_ms(absl::ToUnixMillis(now));
}

std::shared_ptr<const v1::ServerMessage> AgentSession::Next(const StateVersion& current,
                                                            absl::Time /*now*/) {
  if (!HasNext(current)) return nullptr;
  std::shared_ptr<const v1::ServerMessage> msg = NextIsSnapshot()
                                                     ? current.messages->Snapshot(current)
                                                     : current.messages->Delta(acked_, current);
  in_flight_ = InFlight{.sent = current};
  status_.set_last_sent_version(current.version);
  return msg;
}

absl::Duration AgentSession::PushLatency(absl::Time now) const {
  return now - std::max(in_flight_->sent.created, connected_);
}

absl::StatusOr<absl::Duration> AgentSession::OnAck(uint64_t version, absl::Time now) {
  Touch(now);
  if (!in_flight_.has_value() || in_flight_->sent.version != version) {
    return absl::FailedPreconditionError(
        absl::StrCat("ACK for version ", version, ", which is not the one in flight"));
  }
  absl::Duration took = PushLatency(now);
  acked_ = std::move(in_flight_->sent);
  in_flight_.reset();
  status_.set_last_acked_version(version);
  return took;
}

absl::StatusOr<absl::Duration> AgentSession::OnNack(uint64_t version, std::string error,
                                                    absl::Time now) {
  Touch(now);
  if (!in_flight_.has_value() || in_flight_->sent.version != version) {
    return absl::FailedPreconditionError(
        absl::StrCat("NACK for version ", version, ", which is not the one in flight"));
  }
  absl::Duration took = PushLatency(now);
  in_flight_.reset();
  status_.set_last_nacked_version(version);
  status_.set_last_nack_error(std::move(error));
  return took;
}

}  // namespace sockmesh::cp
