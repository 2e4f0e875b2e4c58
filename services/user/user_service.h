// SPDX-License-Identifier: Apache-2.0
#ifndef SOCKMESH_SERVICES_USER_USER_SERVICE_H_
#define SOCKMESH_SERVICES_USER_USER_SERVICE_H_

#include "services/user/user_store.h"
#include "sockmesh/shop/v1/user.grpc.pb.h"

namespace sockmesh::shop {

class UserServiceImpl final : public v1::UserService::Service {
 public:
  explicit UserServiceImpl(UserStore& store) : store_(store) {}

  grpc::Status GetUser(grpc::ServerContext* context, const v1::GetUserRequest* request,
                       v1::User* response) override;
  grpc::Status CreateUser(grpc::ServerContext* context, const v1::CreateUserRequest* request,
                          v1::User* response) override;

 private:
  UserStore& store_;
};

}  // namespace sockmesh::shop

#endif  // SOCKMESH_SERVICES_USER_USER_SERVICE_H_
