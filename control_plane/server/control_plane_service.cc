// SPDX-License-Identifier: Apache-2.0
#include "control_plane/server/control_plane_service.h"

#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "control_plane/model/policy_conversion.h"
#include "userspace/log/log.h"

namespace sockmesh::cp {
namespace {

constexpr char kLog[] = "control";

// How long a stream waits for a change or an answer before it looks at cancellation again.
constexpr absl::Duration kWaitSlice = absl::Milliseconds(200);

}  // namespace

struct ControlPlaneService::StreamState {
  explicit StreamState(AgentSession s) : session(std::move(s)) {}
  absl::Mutex mu;
  AgentSession session ABSL_GUARDED_BY(mu);
  bool reader_done ABSL_GUARDED_BY(mu) = false;
  bool stop ABSL_GUARDED_BY(mu) = false;
};

grpc::Status ControlPlaneService::Stream(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::ServerMessage, v1::AgentMessage>* stream) {
  v1::AgentMessage first;
  if (!stream->Read(&first)) return grpc::Status::OK;
  if (!first.has_hello() || first.hello().node_name().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "the first message on a stream must be a Hello with a node name");
  }
  const std::string node = first.hello().node_name();
  auto s =
      std::make_shared<StreamState>(AgentSession(node, first.hello().agent_version(), absl::Now()));
  uint64_t id;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down");
    id = next_id_++;
    streams_[id] = s;
  }
  if (metrics_ != nullptr) metrics_->AgentConnected();
  log::Info(kLog, "agent ", node, " connected from ", context->peer(), " (agent version ",
            first.hello().agent_version(), ")");

  // Answers arrive on their own thread so the writer below can wait for either an answer or a new
  // version. The sync API allows one concurrent reader and one writer per stream.
  std::thread reader([this, s, stream] {
    v1::AgentMessage msg;
    while (stream->Read(&msg)) HandleAnswer(*s, msg);
    absl::MutexLock lock(&s->mu);
    s->reader_done = true;
  });

  std::string end_reason = "stream closed by the agent";
  uint64_t seen = 0;
  bool holding_snapshot_slot = false;
  while (true) {
    if (context->IsCancelled()) {
      end_reason = "stream cancelled";
      break;
    }
    StateVersion current = state_->Current();
    std::shared_ptr<const v1::ServerMessage> msg;
    bool waiting_for_answer;
    {
      absl::MutexLock lock(&s->mu);
      if (s->reader_done || s->stop) {
        if (s->stop) end_reason = "control plane shutting down";
        break;
      }
      msg = s->session.Next(current, absl::Now());
      waiting_for_answer = s->session.in_flight();
    }
    // The snapshot this stream sent has been answered (or the stream moves on): free its slot.
    if (holding_snapshot_slot && (msg != nullptr || !waiting_for_answer)) {
      ReleaseSnapshotSlot();
      holding_snapshot_slot = false;
    }
    if (msg != nullptr) {
      bool snapshot = msg->has_snapshot();
      if (snapshot) {
        if (!AcquireSnapshotSlot(context)) {
          end_reason = "stream ended while waiting to send the snapshot";
          break;
        }
        holding_snapshot_slot = true;
      }
      if (!stream->Write(*msg)) {
        end_reason = "write failed";
        break;
      }
      if (metrics_ != nullptr) metrics_->RecordPush(snapshot);
      log::Debug(kLog, "sent ", snapshot ? "snapshot" : "delta", " version ", current.version,
                 " to ", node);
    }
    seen = current.version;
    if (waiting_for_answer) {
      absl::MutexLock lock(&s->mu);
      auto answered = [&s]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) {
        return !s->session.in_flight() || s->reader_done || s->stop;
      };
      s->mu.AwaitWithTimeout(absl::Condition(&answered), kWaitSlice);
    } else {
      state_->WaitForChange(seen, kWaitSlice);
    }
  }
  if (holding_snapshot_slot) ReleaseSnapshotSlot();
  // Unblocks the reader's Read() if the agent is still there (shutdown, write failure).
  context->TryCancel();
  reader.join();
  {
    absl::MutexLock lock(&mu_);
    streams_.erase(id);
  }
  if (metrics_ != nullptr) metrics_->AgentDisconnected();
  log::Info(kLog, "agent ", node, " disconnected: ", end_reason);
  return grpc::Status::OK;
}

bool ControlPlaneService::AcquireSnapshotSlot(grpc::ServerContext* context) {
  absl::MutexLock lock(&snapshot_mu_);
  while (snapshot_slots_ == 0) {
    if (stopping_.load() || context->IsCancelled()) return false;
    snapshot_slot_freed_.WaitWithTimeout(&snapshot_mu_, kWaitSlice);
  }
  --snapshot_slots_;
  return true;
}

void ControlPlaneService::ReleaseSnapshotSlot() {
  absl::MutexLock lock(&snapshot_mu_);
  ++snapshot_slots_;
  snapshot_slot_freed_.Signal();
}

void ControlPlaneService::HandleAnswer(StreamState& s, const v1::AgentMessage& msg) {
  absl::MutexLock lock(&s.mu);
  const std::string& node = s.session.status().node_name();
  absl::Time now = absl::Now();
  if (msg.has_ack()) {
    absl::StatusOr<absl::Duration> took = s.session.OnAck(msg.ack().version(), now);
    if (!took.ok()) {
      log::Warn(kLog, "agent ", node, ": ", took.status().message(), "; ignored");
      return;
    }
    if (metrics_ != nullptr) metrics_->RecordAnswer(true, *took);
    log::Info(kLog, "agent ", node, " ACKed version ", msg.ack().version(), " in ",
              absl::FormatDuration(*took));
  } else if (msg.has_nack()) {
    absl::StatusOr<absl::Duration> took =
        s.session.OnNack(msg.nack().version(), msg.nack().error_detail(), now);
    if (!took.ok()) {
      log::Warn(kLog, "agent ", node, ": ", took.status().message(), "; ignored");
      return;
    }
    if (metrics_ != nullptr) metrics_->RecordAnswer(false, *took);
    // The same version is not sent again: the agent keeps its last good state until the desired
    // state changes (an operator fixes the source, or the agent gets a bigger map).
    log::Warn(kLog, "agent ", node, " NACKed version ", msg.nack().version(), " (it keeps version ",
              s.session.acked_version(), "): ", msg.nack().error_detail());
  } else {
    s.session.Touch(now);
    log::Warn(kLog, "agent ", node, ": unexpected message after Hello; ignored");
  }
}

grpc::Status ControlPlaneService::ListAgents(grpc::ServerContext* context,
                                             const v1::ListAgentsRequest* request,
                                             v1::ListAgentsResponse* response) {
  response->set_current_version(state_->Current().version);
  absl::MutexLock lock(&mu_);
  for (const auto& [id, s] : streams_) {
    absl::MutexLock stream_lock(&s->mu);
    *response->add_agents() = s->session.status();
  }
  return grpc::Status::OK;
}

grpc::Status ControlPlaneService::ListPolicies(grpc::ServerContext* context,
                                               const v1::ListPoliciesRequest* request,
                                               v1::ListPoliciesResponse* response) {
  const StateVersion current = state_->Current();
  response->set_current_version(current.version);
  for (const model::PolicyStatus& status : current.state->policy_status) {
    *response->add_policies() = model::ToProto(status);
  }
  return grpc::Status::OK;
}

void ControlPlaneService::Shutdown() {
  stopping_ = true;
  absl::MutexLock lock(&mu_);
  shutting_down_ = true;
  for (const auto& [id, s] : streams_) {
    absl::MutexLock stream_lock(&s->mu);
    s->stop = true;
  }
}

}  // namespace sockmesh::cp
