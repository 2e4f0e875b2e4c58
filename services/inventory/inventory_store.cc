// SPDX-License-Identifier: Apache-2.0
#include "services/inventory/inventory_store.h"

#include "absl/strings/str_cat.h"

namespace sockmesh::shop {

absl::Status OutOfStockError(const std::string& product_id, int64_t available, int64_t quantity) {
  return absl::ResourceExhaustedError(absl::StrCat("out of stock: product ", product_id, " has ",
                                                   available, " available, ", quantity,
                                                   " requested"));
}

absl::Status NoCounterError(const std::string& product_id) {
  return absl::NotFoundError(absl::StrCat("product ", product_id, " has no stock counter"));
}

absl::Status UnknownReservationError(const std::string& reservation_id) {
  return absl::NotFoundError(absl::StrCat("reservation ", reservation_id, " not found"));
}

absl::StatusOr<v1::Reservation> MemoryInventoryStore::Reserve(const std::string& product_id,
                                                              int64_t quantity) {
  if (quantity < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantity: invalid value ", quantity, ": must be at least 1"));
  }
  absl::MutexLock lock(&mu_);
  auto it = available_.find(product_id);
  if (it == available_.end()) return NoCounterError(product_id);
  if (it->second < quantity) return OutOfStockError(product_id, it->second, quantity);
  it->second -= quantity;
  v1::Reservation reservation;
  reservation.set_reservation_id(absl::StrCat("r-", next_id_++));
  reservation.set_product_id(product_id);
  reservation.set_quantity(quantity);
  reservations_[reservation.reservation_id()] = reservation;
  return reservation;
}

absl::Status MemoryInventoryStore::Release(const std::string& reservation_id) {
  absl::MutexLock lock(&mu_);
  auto it = reservations_.find(reservation_id);
  if (it == reservations_.end()) return UnknownReservationError(reservation_id);
  available_[it->second.product_id()] += it->second.quantity();
  reservations_.erase(it);
  return absl::OkStatus();
}

absl::Status MemoryInventoryStore::Commit(const std::string& reservation_id) {
  absl::MutexLock lock(&mu_);
  if (reservations_.erase(reservation_id) == 0) return UnknownReservationError(reservation_id);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> MemoryInventoryStore::Available(const std::string& product_id) {
  absl::MutexLock lock(&mu_);
  auto it = available_.find(product_id);
  if (it == available_.end()) return NoCounterError(product_id);
  return it->second;
}

absl::Status MemoryInventoryStore::SetAvailable(const std::string& product_id, int64_t available) {
  absl::MutexLock lock(&mu_);
  available_[product_id] = available;
  return absl::OkStatus();
}

absl::Status MemoryInventoryStore::EnsureCounter(const std::string& product_id, int64_t available) {
  absl::MutexLock lock(&mu_);
  available_.try_emplace(product_id, available);
  return absl::OkStatus();
}

size_t MemoryInventoryStore::open_reservations() {
  absl::MutexLock lock(&mu_);
  return reservations_.size();
}

}  // namespace sockmesh::shop
