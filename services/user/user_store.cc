// SPDX-License-Identifier: Apache-2.0
#include "services/user/user_store.h"

#include "absl/strings/str_cat.h"

namespace sockmesh::shop {

v1::User SeedUser(int index) {
  v1::User user;
  user.set_user_id(absl::StrCat("u-", index));
  user.set_name(absl::StrCat("User ", index));
  user.set_email(absl::StrCat("user", index, "@shop.example"));
  return user;
}

absl::Status SeedUsers(UserStore& store, int count) {
  for (int i = 1; i <= count; ++i) {
    absl::Status status = store.Create(SeedUser(i));
    if (!status.ok() && !absl::IsAlreadyExists(status)) return status;
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::User> MemoryUserStore::Get(const std::string& user_id) {
  absl::MutexLock lock(&mu_);
  auto it = users_.find(user_id);
  if (it == users_.end()) return absl::NotFoundError(absl::StrCat("user ", user_id, " not found"));
  return it->second;
}

absl::Status MemoryUserStore::Create(const v1::User& user) {
  absl::MutexLock lock(&mu_);
  if (!users_.emplace(user.user_id(), user).second) {
    return absl::AlreadyExistsError(absl::StrCat("user ", user.user_id(), " already exists"));
  }
  return absl::OkStatus();
}

}  // namespace sockmesh::shop
