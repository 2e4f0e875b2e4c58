// SPDX-License-Identifier: Apache-2.0
// One unary call to sockmesh-control's gRPC API, for the sockmeshctl commands that ask it
// (status, policies): plaintext channel, deadline, and errors that name the address.
#ifndef SOCKMESH_USERSPACE_CTL_CONTROL_PLANE_CALL_H_
#define SOCKMESH_USERSPACE_CTL_CONTROL_PLANE_CALL_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "sockmesh/v1/control_plane.grpc.pb.h"

namespace sockmesh::ctl {

// `call(stub, context, response)` makes the RPC. DeadlineExceeded after `timeout`, Unavailable
// for every other failure, both naming `address`.
template <typename Response, typename Call>
absl::StatusOr<Response> CallControlPlane(const std::string& address, absl::Duration timeout,
                                          Call call) {
  auto stub =
      v1::ControlPlane::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
  Response response;
  grpc::Status s = call(*stub, context, response);
  if (!s.ok()) {
    auto code = s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED
                    ? absl::StatusCode::kDeadlineExceeded
                    : absl::StatusCode::kUnavailable;
    return absl::Status(code, absl::StrCat("control plane at ", address, ": ", s.error_message()));
  }
  return response;
}

}  // namespace sockmesh::ctl

#endif  // SOCKMESH_USERSPACE_CTL_CONTROL_PLANE_CALL_H_
