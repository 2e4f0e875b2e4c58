// SPDX-License-Identifier: Apache-2.0
// Stock counters and reservations: in memory, or in Redis (redis_inventory_store.h). A
// reservation takes units out of `available` at once, so two concurrent orders can never sell the
// same unit; Release puts them back, Commit makes them sold.
#ifndef SOCKMESH_SERVICES_INVENTORY_INVENTORY_STORE_H_
#define SOCKMESH_SERVICES_INVENTORY_INVENTORY_STORE_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "sockmesh/shop/v1/inventory.pb.h"

namespace sockmesh::shop {

class InventoryStore {
 public:
  virtual ~InventoryStore() = default;
  // NotFound for a product without a counter, ResourceExhausted when fewer than `quantity` are
  // available, InvalidArgument for quantity < 1.
  virtual absl::StatusOr<v1::Reservation> Reserve(const std::string& product_id,
                                                  int64_t quantity) = 0;
  // NotFound for an unknown (or already released/committed) reservation.
  virtual absl::Status Release(const std::string& reservation_id) = 0;
  virtual absl::Status Commit(const std::string& reservation_id) = 0;
  virtual absl::StatusOr<int64_t> Available(const std::string& product_id) = 0;
  virtual absl::Status SetAvailable(const std::string& product_id, int64_t available) = 0;
  // Creates the counter with `available` units unless it exists (a restart keeps the stock).
  virtual absl::Status EnsureCounter(const std::string& product_id, int64_t available) = 0;
};

// The messages the stores return, with the ids in them.
absl::Status OutOfStockError(const std::string& product_id, int64_t available, int64_t quantity);
absl::Status NoCounterError(const std::string& product_id);
absl::Status UnknownReservationError(const std::string& reservation_id);

class MemoryInventoryStore : public InventoryStore {
 public:
  absl::StatusOr<v1::Reservation> Reserve(const std::string& product_id, int64_t quantity) override;
  absl::Status Release(const std::string& reservation_id) override;
  absl::Status Commit(const std::string& reservation_id) override;
  absl::StatusOr<int64_t> Available(const std::string& product_id) override;
  absl::Status SetAvailable(const std::string& product_id, int64_t available) override;
  absl::Status EnsureCounter(const std::string& product_id, int64_t available) override;

  size_t open_reservations();

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, int64_t> available_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, v1::Reservation> reservations_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace sockmesh::shop

#endif  // SOCKMESH_SERVICES_INVENTORY_INVENTORY_STORE_H_
