// SPDX-License-Identifier: Apache-2.0
// Where the user service keeps its users: in memory, or in PostgreSQL (postgres_user_store.h).
#ifndef SOCKMESH_SERVICES_USER_USER_STORE_H_
#define SOCKMESH_SERVICES_USER_USER_STORE_H_

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "sockmesh/shop/v1/user.pb.h"

namespace sockmesh::shop {

class UserStore {
 public:
  virtual ~UserStore() = default;
  // NotFound("user u-9 not found") when absent.
  virtual absl::StatusOr<v1::User> Get(const std::string& user_id) = 0;
  // AlreadyExists when the id is taken.
  virtual absl::Status Create(const v1::User& user) = 0;
};

// The demo users every store starts with: u-1 ... u-N, so a load generator can place orders
// without creating users first.
v1::User SeedUser(int index);
// Creates the seed users that are missing.
absl::Status SeedUsers(UserStore& store, int count);

class MemoryUserStore : public UserStore {
 public:
  absl::StatusOr<v1::User> Get(const std::string& user_id) override;
  absl::Status Create(const v1::User& user) override;

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, v1::User> users_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sockmesh::shop

#endif  // SOCKMESH_SERVICES_USER_USER_STORE_H_
