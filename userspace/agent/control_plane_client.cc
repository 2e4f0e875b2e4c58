// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/control_plane_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "control_plane/model/delta_apply.h"
#include "control_plane/model/proto_conversion.h"
#include "control_plane/server/stream_transport.h"
#include "sockmesh/v1/control_plane.grpc.pb.h"
#include "userspace/log/log.h"

namespace sockmesh::agent {
namespace {

constexpr char kLog[] = "control-plane";
constexpr absl::Duration kStopPoll = absl::Milliseconds(50);

// Sleeps up to `d`, waking early when `stop` becomes true.
void SleepUnlessStopped(absl::Duration d, const std::atomic<bool>& stop) {
  absl::Time until = absl::Now() + d;
  while (!stop.load() && absl::Now() < until) {
    absl::SleepFor(std::min(kStopPoll, until - absl::Now()));
  }
}

}  // namespace

absl::Duration BackoffDelay(int attempt, absl::Duration min, absl::Duration max,
                            std::mt19937& rng) {
  absl::Duration delay = min;
  for (int i = 0; i < attempt && delay < max; ++i) delay *= 2;
  delay = std::min(delay, max);
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return delay * jitter(rng);
}

ControlPlaneClient::ControlPlaneClient(ControlPlaneClientOptions options, ApplyFunction apply)
    : options_(std::move(options)), apply_(std::move(apply)), rng_(std::random_device{}()) {}

void ControlPlaneClient::Run(const std::atomic<bool>& stop) {
  int attempt = 0;
  while (!stop.load()) {
    if (RunStream(stop)) attempt = 0;
    if (stop.load()) break;
    absl::Duration delay =
        BackoffDelay(attempt++, options_.min_backoff, options_.max_backoff, rng_);
    log::Info(kLog, "reconnecting to ", options_.address, " in ", absl::FormatDuration(delay),
              "; the datapath keeps version ", good_version_);
    SleepUnlessStopped(delay, stop);
  }
}

bool ControlPlaneClient::RunStream(const std::atomic<bool>& stop) {
  // A fresh channel per attempt, with a private subchannel pool: gRPC's own reconnect backoff
  // (1 s growing to 2 min, kept per subchannel) would otherwise delay the reconnect long after
  // the control plane is back. Run()'s backoff is the only one.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // A control plane that vanished without closing the connection (a partitioned node) is noticed.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  cp::ApplyStreamTransport(args);
  auto stub = v1::ControlPlane::NewStub(
      options_.make_channel
          ? options_.make_channel(args)
          : grpc::CreateCustomChannel(options_.address, grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext context;
  auto stream = stub->Stream(&context);
  // Read() blocks; cancelling the context is the only way to interrupt it on a stop request.
  absl::Notification done;
  std::thread canceller([&] {
    while (!done.HasBeenNotified()) {
      if (stop.load()) {
        context.TryCancel();
        return;
      }
      done.WaitForNotificationWithTimeout(kStopPoll);
    }
  });

  bool received = false;
  bool have_base = false;  // deltas apply only on top of a snapshot from this same stream
  v1::AgentMessage hello;
  hello.mutable_hello()->set_node_name(options_.node_name);
  hello.mutable_hello()->set_agent_version(options_.agent_version);
  if (stream->Write(hello)) {
    while (true) {
      // A fresh message per read: reusing one would keep a parsed snapshot (many times its wire
      // size) allocated for as long as the stream lives.
      v1::ServerMessage msg;
      if (!stream->Read(&msg)) break;
      if (!received) {
        log::Info(kLog, "connected to ", options_.address);
        if (options_.on_connection) options_.on_connection(true);
      }
      received = true;
      uint64_t version = 0;
      absl::Status result;
      if (msg.has_snapshot()) {
        version = msg.snapshot().version();
        result = ApplySnapshot(msg.snapshot());
      } else if (msg.has_delta()) {
        version = msg.delta().version();
        if (!have_base || msg.delta().base_version() != good_version_) {
          // Cannot happen with a correct server (it sends one version at a time, based on our
          // last ACK); start over with a fresh snapshot rather than guess.
          log::Error(kLog, "delta ", version, " is based on version ", msg.delta().base_version(),
                     " but this agent has ", have_base ? absl::StrCat(good_version_) : "none",
                     "; reconnecting for a snapshot");
          break;
        }
        result = ApplyDelta(msg.delta());
      } else {
        log::Warn(kLog, "ignoring an empty message from the control plane");
        continue;
      }
      v1::AgentMessage answer;
      if (result.ok()) {
        good_version_ = version;
        have_base = true;
        answer.mutable_ack()->set_version(version);
        log::Info(kLog, "applied ", msg.has_snapshot() ? "snapshot" : "delta", " version ", version,
                  " (", good_.size(), " services); ACK");
      } else {
        answer.mutable_nack()->set_version(version);
        answer.mutable_nack()->set_error_detail(std::string(result.message()));
        log::Error(kLog, "version ", version, " not applied, keeping version ", good_version_, ": ",
                   result.message(), "; NACK");
      }
      if (options_.on_answer) options_.on_answer(version, answer.has_ack());
      if (!stream->Write(answer)) break;
    }
  }
  context.TryCancel();
  grpc::Status status = stream->Finish();
  done.Notify();
  canceller.join();
  if (received && options_.on_connection) options_.on_connection(false);
  if (!stop.load()) {
    log::Warn(kLog, "stream to ", options_.address,
              " ended: ", status.ok() ? "closed by the server" : status.error_message());
  }
  return received;
}

absl::Status ControlPlaneClient::ApplySnapshot(const v1::Snapshot& snapshot) {
  absl::StatusOr<model::DesiredState> next = model::FromSnapshot(snapshot);
  if (!next.ok()) return next.status();
  if (absl::Status applied = apply_(*next, snapshot.policy()); !applied.ok()) return applied;
  good_ = *std::move(next);
  good_policy_ = snapshot.policy();
  return absl::OkStatus();
}

absl::Status ControlPlaneClient::ApplyDelta(const v1::Delta& delta) {
  absl::StatusOr<model::DecodedDelta> decoded = model::DecodeDelta(delta, good_);
  if (!decoded.ok()) return decoded.status();
  model::DeltaUndo undo = model::ApplyDecodedDelta(*std::move(decoded), good_);
  const v1::CompiledPolicy& policy = delta.has_policy() ? delta.policy() : good_policy_;
  absl::Status applied = apply_(good_, policy);
  if (!applied.ok()) {
    model::RevertDelta(std::move(undo), good_);
    return applied;
  }
  if (delta.has_policy()) good_policy_ = delta.policy();
  return applied;
}

}  // namespace sockmesh::agent
