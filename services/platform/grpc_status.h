// SPDX-License-Identifier: Apache-2.0
// absl::Status <-> grpc::Status. Both use the canonical codes, so the code carries over as is.
#ifndef SOCKMESH_SERVICES_PLATFORM_GRPC_STATUS_H_
#define SOCKMESH_SERVICES_PLATFORM_GRPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace sockmesh::platform {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

inline absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace sockmesh::platform

#endif  // SOCKMESH_SERVICES_PLATFORM_GRPC_STATUS_H_
