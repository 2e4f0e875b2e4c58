// SPDX-License-Identifier: Apache-2.0
#include "bench/simulated_agent.h"

#include <unistd.h>

#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
#include "control_plane/model/delta_apply.h"
#include "control_plane/model/proto_conversion.h"
#include "control_plane/server/stream_transport.h"

namespace sockmesh::bench {
namespace {

void Say(const std::string& line) {
  std::string l = line + "\n";
  (void)::write(2, l.data(), l.size());
}

}  // namespace

class SimulatedAgent::Stream final
    : public grpc::ClientBidiReactor<v1::AgentMessage, v1::ServerMessage> {
 public:
  explicit Stream(SimulatedAgent* agent) : agent_(agent) {}

  void Start(v1::ControlPlane::Stub& stub, bool wait_for_ready) {
    context_.set_wait_for_ready(wait_for_ready);
    stub.async()->Stream(&context_, this);
    v1::AgentMessage hello;
    hello.mutable_hello()->set_node_name(agent_->node_name_);
    hello.mutable_hello()->set_agent_version("bench");
    Send(std::move(hello));
    StartRead(&in_);
    StartCall();
  }
  void Cancel() { context_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended; OnDone follows
    v1::AgentMessage answer;
    if (!agent_->Apply(in_, answer)) {
      context_.TryCancel();
      return;
    }
    in_.Clear();
    Send(std::move(answer));
    StartRead(&in_);
  }
  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    outbox_.pop_front();
    writing_ = ok && !outbox_.empty();
    if (writing_) StartWrite(&outbox_.front());
  }
  void OnDone(const grpc::Status& status) override { agent_->OnStreamDone(status); }

 private:
  void Send(v1::AgentMessage msg) {
    absl::MutexLock lock(&mu_);
    outbox_.push_back(std::move(msg));
    if (writing_) return;  // OnWriteDone writes it
    writing_ = true;
    StartWrite(&outbox_.front());
  }

  SimulatedAgent* const agent_;
  grpc::ClientContext context_;
  v1::ServerMessage in_;  // reads complete one at a time
  // One write at a time: the Hello, then answers.
  absl::Mutex mu_;
  std::deque<v1::AgentMessage> outbox_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
};

SimulatedAgent::SimulatedAgent(const std::string& address, std::string node_name,
                               AnswerObserver on_answer)
    : node_name_(std::move(node_name)), on_answer_(std::move(on_answer)) {
  grpc::ChannelArguments args;
  // Channels with the same arguments would otherwise share one connection (gRPC's global
  // subchannel pool); agents on different nodes do not.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  cp::ApplyStreamTransport(args);  // as the agent's client does
  stub_ = v1::ControlPlane::NewStub(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
}

SimulatedAgent::~SimulatedAgent() = default;

void SimulatedAgent::Start() {
  absl::MutexLock lock(&mu_);
  stream_ = std::make_unique<Stream>(this);
  stream_->Start(*stub_, /*wait_for_ready=*/false);
}

void SimulatedAgent::Stop() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  if (stream_ != nullptr) stream_->Cancel();
  mu_.Await(absl::Condition(&done_));
}

void SimulatedAgent::OnStreamDone(const grpc::Status& status) {
  absl::MutexLock lock(&mu_);
  // Called from the stream's own OnDone: it is deleted later, not here.
  ended_ = std::move(stream_);
  if (stopping_) {
    done_ = true;
    return;
  }
  Say(absl::StrCat(node_name_, ": stream ended (", status.error_message(), "); opening a new one"));
  have_base_ = false;
  stream_ = std::make_unique<Stream>(this);
  stream_->Start(*stub_, /*wait_for_ready=*/true);
}

bool SimulatedAgent::Apply(const v1::ServerMessage& msg, v1::AgentMessage& answer) {
  uint64_t version = 0;
  absl::Status result;
  if (msg.has_snapshot()) {
    version = msg.snapshot().version();
    absl::StatusOr<model::DesiredState> next = model::FromSnapshot(msg.snapshot());
    result = next.status();
    if (next.ok()) good_ = *std::move(next);
  } else if (msg.has_delta()) {
    version = msg.delta().version();
    if (!have_base_ || msg.delta().base_version() != good_version_) {
      Say(absl::StrCat(node_name_, ": delta ", version, " on base ", msg.delta().base_version(),
                       ", but it has ", have_base_ ? absl::StrCat(good_version_) : "none"));
      return false;
    }
    absl::StatusOr<model::DecodedDelta> decoded = model::DecodeDelta(msg.delta(), good_);
    result = decoded.status();
    if (decoded.ok()) model::ApplyDecodedDelta(*std::move(decoded), good_);
  }
  if (result.ok()) {
    good_version_ = version;
    have_base_ = true;
    answer.mutable_ack()->set_version(version);
  } else {
    answer.mutable_nack()->set_version(version);
    answer.mutable_nack()->set_error_detail(std::string(result.message()));
  }
  if (on_answer_) on_answer_(version, result.ok());
  return true;
}

}  // namespace sockmesh::bench
