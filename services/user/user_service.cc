// SPDX-License-Identifier: Apache-2.0
#include "services/user/user_service.h"

#include "services/platform/grpc_status.h"

namespace sockmesh::shop {

using platform::ToGrpcStatus;

grpc::Status UserServiceImpl::GetUser(grpc::ServerContext*, const v1::GetUserRequest* request,
                                      v1::User* response) {
  absl::StatusOr<v1::User> user = store_.Get(request->user_id());
  if (!user.ok()) return ToGrpcStatus(user.status());
  *response = *std::move(user);
  return grpc::Status::OK;
}

grpc::Status UserServiceImpl::CreateUser(grpc::ServerContext*, const v1::CreateUserRequest* request,
                                         v1::User* response) {
  if (request->user().user_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "user.user_id: must not be empty");
  }
  absl::Status status = store_.Create(request->user());
  if (!status.ok()) return ToGrpcStatus(status);
  *response = request->user();
  return grpc::Status::OK;
}

}  // namespace sockmesh::shop
