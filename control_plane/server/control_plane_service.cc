// SPDX-License-Identifier: Apache-2.0
#include "control_plane/server/control_plane_service.h"

#include <grpcpp/impl/codegen/proto_utils.h>

#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "control_plane/model/policy_conversion.h"
#include "control_plane/server/agent_session.h"
#include "userspace/log/log.h"

namespace sockmesh::cp {
namespace {

constexpr char kLog[] = "control";

// How long the fan-out thread waits for a change before it looks at a stop request again.
constexpr absl::Duration kWaitSlice = absl::Milliseconds(200);

}  // namespace

// One agent's stream. Every event (the Hello, an answer, a write completing, a new version, a free
// snapshot slot, shutdown) takes `mu_`, updates the AgentSession and starts at most one operation;
// gRPC never runs a reaction inline in StartWrite/StartRead/Finish, so starting them under `mu_`
// cannot deadlock. The stream keeps itself alive (self_) until gRPC calls OnDone; the service and
// the fan-out thread hold it too, and treat it as ended after that.
class ControlPlaneService::AgentStream final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  AgentStream(ControlPlaneService* service, grpc::CallbackServerContext* context)
      : service_(service), context_(context) {}

  static AgentStream* Start(ControlPlaneService* service, grpc::CallbackServerContext* context) {
    auto stream = std::make_shared<AgentStream>(service, context);
    absl::MutexLock lock(&stream->mu_);
    stream->self_ = stream;
    stream->StartRead(&stream->in_);
    return stream.get();
  }

  // The current version, written if this stream is ready for it (nothing in flight, not sent yet).
  void Offer() {
    absl::MutexLock lock(&mu_);
    PushLocked();
  }

  // A snapshot slot is this stream's now. False if it no longer needs it (it ended, or got its
  // snapshot some other way): the caller passes the slot on.
  bool TakeSnapshotSlot() {
    absl::MutexLock lock(&mu_);
    waiting_for_slot_ = false;
    if (ending_ || !session_.has_value() || !session_->NextIsSnapshot() ||
        !session_->HasNext(service_->state_->Current())) {
      return false;
    }
    holding_slot_ = true;
    PushLocked();
    return true;
  }

  void Stop(const char* reason) {
    absl::MutexLock lock(&mu_);
    EndLocked(grpc::Status::OK, reason);
  }

  // Null before the Hello.
  std::optional<v1::AgentStatus> Status() {
    absl::MutexLock lock(&mu_);
    if (!session_.has_value()) return std::nullopt;
    return session_->status();
  }

  void OnReadDone(bool ok) override {
    bool release_slot = false;
    {
      absl::MutexLock lock(&mu_);
      if (!ok) {
        EndLocked(grpc::Status::OK, "stream closed by the agent");
        return;
      }
      v1::AgentMessage msg;
      if (!grpc::SerializationTraits<v1::AgentMessage>::Deserialize(&in_, &msg).ok()) {
        EndLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "unparseable AgentMessage"),
                  "unparseable message from the agent");
        return;
      }
      if (!session_.has_value()) {
        if (!OnHelloLocked(msg)) return;
      } else {
        HandleAnswerLocked(msg);
        // The snapshot this stream sent has been answered: free its slot for the next stream.
        if (holding_slot_ && !session_->in_flight()) {
          holding_slot_ = false;
          release_slot = true;
        }
      }
      if (!ending_) {
        StartRead(&in_);
        PushLocked();
      }
    }
    // Outside mu_: the slot may go to another stream, which takes its own lock.
    if (release_slot) service_->ReleaseSnapshotSlot();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    out_.Clear();
    if (ending_) {
      Finish(finish_status_);  // deferred by EndLocked until this write completed
      return;
    }
    if (!ok) {
      EndLocked(grpc::Status::OK, "write failed");
      return;
    }
    if (service_->metrics_ != nullptr) service_->metrics_->RecordPush(write_is_snapshot_);
    log::Debug(kLog, "sent ", write_is_snapshot_ ? "snapshot" : "delta", " version ",
               write_version_, " to ", session_->status().node_name());
    // The answer may have come in before this completion; then the next version goes now.
    PushLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    EndLocked(grpc::Status::OK, "stream cancelled");
  }

  void OnDone() override {
    std::shared_ptr<AgentStream> last_reference;
    bool release_slot;
    const char* end_reason;
    {
      absl::MutexLock lock(&mu_);
      release_slot = holding_slot_;
      holding_slot_ = false;
      end_reason = end_reason_;
      last_reference = std::move(self_);
    }
    if (id_ != 0) {
      service_->Unregister(id_);
      if (service_->metrics_ != nullptr) service_->metrics_->AgentDisconnected();
      log::Info(kLog, "agent ", node_, " disconnected: ", end_reason);
    }
    if (release_slot) service_->ReleaseSnapshotSlot();
    // `last_reference` may be the last one: nothing may touch members after this scope.
  }

 private:
  // False if the stream ends instead (not a Hello, or the service is shutting down).
  bool OnHelloLocked(const v1::AgentMessage& msg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!msg.has_hello() || msg.hello().node_name().empty()) {
      EndLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             "the first message on a stream must be a Hello with a node name"),
                "no Hello");
      return false;
    }
    node_ = msg.hello().node_name();
    session_.emplace(node_, msg.hello().agent_version(), absl::Now());
    id_ = service_->Register(self_);
    if (id_ == 0) {
      EndLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down"), "shutting down");
      return false;
    }
    if (service_->metrics_ != nullptr) service_->metrics_->AgentConnected();
    log::Info(kLog, "agent ", node_, " connected from ", context_->peer(), " (agent version ",
              msg.hello().agent_version(), ")");
    return true;
  }

  void HandleAnswerLocked(const v1::AgentMessage& msg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::Time now = absl::Now();
    if (msg.has_ack()) {
      absl::StatusOr<absl::Duration> took = session_->OnAck(msg.ack().version(), now);
      if (!took.ok()) {
        log::Warn(kLog, "agent ", node_, ": ", took.status().message(), "; ignored");
        return;
      }
      if (service_->metrics_ != nullptr) service_->metrics_->RecordAnswer(true, *took);
      // Debug, not Info: a thousand agents answer every change, and the push latency metric
      // already tells how long they took.
      log::Debug(kLog, "agent ", node_, " ACKed version ", msg.ack().version(), " in ",
                 absl::FormatDuration(*took));
    } else if (msg.has_nack()) {
      absl::StatusOr<absl::Duration> took =
          session_->OnNack(msg.nack().version(), msg.nack().error_detail(), now);
      if (!took.ok()) {
        log::Warn(kLog, "agent ", node_, ": ", took.status().message(), "; ignored");
        return;
      }
      if (service_->metrics_ != nullptr) service_->metrics_->RecordAnswer(false, *took);
      // The same version is not sent again: the agent keeps its last good state until the
      // desired state changes (an operator fixes the source, or the agent gets a bigger map).
      log::Warn(kLog, "agent ", node_, " NACKed version ", msg.nack().version(),
                " (it keeps version ", session_->acked_version(), "): ", msg.nack().error_detail());
    } else {
      session_->Touch(now);
      log::Warn(kLog, "agent ", node_, ": unexpected message after Hello; ignored");
    }
  }

  // Starts writing the message for the current version, if there is one to send now. Reads the
  // current version itself (under mu_, after any answer was recorded), so a version published
  // while an answer was on its way is never missed and never sent backwards.
  void PushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (ending_ || writing_ || !session_.has_value()) return;
    StateVersion current = service_->state_->Current();
    if (!session_->HasNext(current)) return;
    if (session_->NextIsSnapshot() && !holding_slot_) {
      if (waiting_for_slot_) return;
      if (!service_->snapshot_slots_.AcquireOrQueue(self_)) {
        waiting_for_slot_ = true;  // TakeSnapshotSlot continues
        return;
      }
      holding_slot_ = true;
    }
    std::shared_ptr<const v1::ServerMessage> msg = session_->Next(current, absl::Now());
    out_ = service_->serialized_.Get(msg);
    write_is_snapshot_ = msg->has_snapshot();
    write_version_ = current.version;
    writing_ = true;
    StartWrite(&out_);
  }

  // Finishes the stream once, after the write in flight (if any) completes.
  void EndLocked(grpc::Status status, const char* reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (ending_) return;
    ending_ = true;
    end_reason_ = reason;
    finish_status_ = std::move(status);
    if (!writing_) Finish(finish_status_);
  }

  ControlPlaneService* const service_;
  grpc::CallbackServerContext* const context_;
  // Set once, in OnHelloLocked, before the stream is registered; OnDone reads them after every
  // other reaction has run.
  uint64_t id_ = 0;  // 0: not registered
  std::string node_;

  absl::Mutex mu_;
  const char* end_reason_ ABSL_GUARDED_BY(mu_) = "";
  std::shared_ptr<AgentStream> self_ ABSL_GUARDED_BY(mu_);
  std::optional<AgentSession> session_ ABSL_GUARDED_BY(mu_);  // from the Hello on
  grpc::ByteBuffer in_ ABSL_GUARDED_BY(mu_);
  grpc::ByteBuffer out_ ABSL_GUARDED_BY(mu_);  // the write in flight: shares the version's bytes
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool write_is_snapshot_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t write_version_ ABSL_GUARDED_BY(mu_) = 0;
  bool holding_slot_ ABSL_GUARDED_BY(mu_) = false;
  bool waiting_for_slot_ ABSL_GUARDED_BY(mu_) = false;
  bool ending_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status finish_status_ ABSL_GUARDED_BY(mu_);
};

ControlPlaneService::ControlPlaneService(const VersionedState* state, ControlMetrics* metrics,
                                         int max_concurrent_snapshots)
    : state_(state), metrics_(metrics), snapshot_slots_(max_concurrent_snapshots) {
  fan_out_ = std::thread([this] { FanOut(); });
}

ControlPlaneService::~ControlPlaneService() {
  stopping_ = true;
  if (fan_out_.joinable()) fan_out_.join();
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* ControlPlaneService::Stream(
    grpc::CallbackServerContext* context) {
  return AgentStream::Start(this, context);
}

grpc::ServerUnaryReactor* ControlPlaneService::ListAgents(grpc::CallbackServerContext* context,
                                                          const v1::ListAgentsRequest* /*request*/,
                                                          v1::ListAgentsResponse* response) {
  *response = Agents();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

v1::ListAgentsResponse ControlPlaneService::Agents() {
  v1::ListAgentsResponse out;
  out.set_current_version(state_->Current().version);
  for (const std::shared_ptr<AgentStream>& s : OpenStreams()) {
    if (std::optional<v1::AgentStatus> status = s->Status()) *out.add_agents() = *status;
  }
  return out;
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
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
  }
  for (const std::shared_ptr<AgentStream>& s : OpenStreams()) {
    s->Stop("control plane shutting down");
  }
  if (fan_out_.joinable()) fan_out_.join();
}

uint64_t ControlPlaneService::Register(const std::shared_ptr<AgentStream>& stream) {
  absl::MutexLock lock(&mu_);
  if (shutting_down_) return 0;
  uint64_t id = next_id_++;
  streams_[id] = stream;
  return id;
}

void ControlPlaneService::Unregister(uint64_t id) {
  std::shared_ptr<AgentStream> removed;  // released outside mu_
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  removed = std::move(it->second);
  streams_.erase(it);
}

// A copy, so that no stream's lock is ever taken under mu_ (streams take mu_ under theirs when
// they register).
std::vector<std::shared_ptr<ControlPlaneService::AgentStream>> ControlPlaneService::OpenStreams() {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<AgentStream>> out;
  out.reserve(streams_.size());
  for (const auto& [id, s] : streams_) out.push_back(s);
  return out;
}

void ControlPlaneService::FanOut() {
  uint64_t seen = state_->Current().version;
  while (!stopping_.load()) {
    uint64_t version = state_->WaitForChange(seen, kWaitSlice).version;
    if (version == seen) continue;
    seen = version;
    // A stream that registers after this copy reads the current version itself once registered.
    for (const std::shared_ptr<AgentStream>& s : OpenStreams()) s->Offer();
  }
}

void ControlPlaneService::ReleaseSnapshotSlot() {
  for (std::shared_ptr<AgentStream> next = snapshot_slots_.Release(); next != nullptr;
       next = snapshot_slots_.Release()) {
    if (next->TakeSnapshotSlot()) return;
  }
}

}  // namespace sockmesh::cp
