// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/embedded_control_plane.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "control_plane/server/stream_transport.h"

namespace sockmesh::agent {
namespace {

// How long one wait for manifest changes lasts, so a stop request is seen promptly.
constexpr absl::Duration kWaitSlice = absl::Milliseconds(250);

}  // namespace

absl::StatusOr<std::unique_ptr<EmbeddedControlPlane>> EmbeddedControlPlane::Start(
    const std::string& manifests_dir, cp::ManifestDirectorySource::ReloadObserver on_reload) {
  std::unique_ptr<EmbeddedControlPlane> e(new EmbeddedControlPlane());
  absl::StatusOr<std::unique_ptr<cp::ControlMetrics>> metrics = cp::ControlMetrics::Create("");
  if (!metrics.ok()) return metrics.status();
  e->metrics_ = *std::move(metrics);
  auto source = cp::ManifestDirectorySource::Create(manifests_dir, std::move(on_reload));
  if (!source.ok()) {
    return absl::Status(source.status().code(), absl::StrCat("--manifests ", manifests_dir, ": ",
                                                             source.status().message()));
  }
  e->source_ = *std::move(source);
  e->source_->WaitAndPublish(absl::ZeroDuration(), e->state_, *e->metrics_);

  e->service_ = std::make_unique<cp::ControlPlaneService>(&e->state_, e->metrics_.get());
  grpc::ServerBuilder builder;  // no listening port: in-process channels only
  builder.RegisterService(e->service_.get());
  cp::ApplyStreamTransport(builder);
  e->server_ = builder.BuildAndStart();
  if (e->server_ == nullptr) return absl::InternalError("embedded control plane: gRPC server");
  EmbeddedControlPlane* raw = e.get();
  e->follower_ = std::thread([raw] {
    while (!raw->stop_.load())
      raw->source_->WaitAndPublish(kWaitSlice, raw->state_, *raw->metrics_);
  });
  return e;
}

EmbeddedControlPlane::~EmbeddedControlPlane() {
  stop_ = true;
  if (follower_.joinable()) follower_.join();
  if (server_ != nullptr) {
    service_->Shutdown();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
}

std::shared_ptr<grpc::Channel> EmbeddedControlPlane::Channel(const grpc::ChannelArguments& args) {
  grpc::ChannelArguments copy = args;
  return server_->InProcessChannel(copy);
}

}  // namespace sockmesh::agent
