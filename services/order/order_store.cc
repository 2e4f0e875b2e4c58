// SPDX-License-Identifier: Apache-2.0
#include "services/order/order_store.h"

#include "absl/strings/str_cat.h"

namespace sockmesh::shop {

absl::StatusOr<v1::Order> MemoryOrderStore::Record(const v1::Order& order) {
  absl::MutexLock lock(&mu_);
  v1::Order stored = order;
  stored.set_order_id(absl::StrCat("o-", next_id_++));
  orders_[stored.order_id()] = stored;
  return stored;
}

absl::StatusOr<v1::Order> MemoryOrderStore::Get(const std::string& order_id) {
  absl::MutexLock lock(&mu_);
  auto it = orders_.find(order_id);
  if (it == orders_.end()) {
    return absl::NotFoundError(absl::StrCat("order ", order_id, " not found"));
  }
  return it->second;
}

size_t MemoryOrderStore::size() {
  absl::MutexLock lock(&mu_);
  return orders_.size();
}

}  // namespace sockmesh::shop
