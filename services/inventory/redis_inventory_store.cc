// SPDX-License-Identifier: Apache-2.0
#include "services/inventory/redis_inventory_store.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sockmesh::shop {
namespace {

constexpr char kStockPrefix[] = "sockmesh:stock:";
constexpr char kReservationPrefix[] = "sockmesh:reservation:";
constexpr char kReservationSeq[] = "sockmesh:reservation-seq";

// KEYS: stock counter, reservation sequence. ARGV: quantity, reservation key prefix, product.
// Returns {reservation number, units left}, or {-1, 0} without a counter, or {-2, available}
// when short. The reservation key is built in the script from the new number, which a
// single-instance Redis allows.
constexpr char kReserveScript[] = R"lua(
local available = redis.call('GET', KEYS[1])
if not available then return {-1, 0} end
available = tonumber(available)
local quantity = tonumber(ARGV[1])
if available < quantity then return {-2, available} end
redis.call('DECRBY', KEYS[1], quantity)
local id = redis.call('INCR', KEYS[2])
redis.call('HSET', ARGV[2] .. id, 'product', ARGV[3], 'quantity', quantity)
return {id, available - quantity}
)lua";

// KEYS: the reservation. ARGV: stock key prefix. Returns 1, or 0 for an unknown reservation.
constexpr char kReleaseScript[] = R"lua(
local product = redis.call('HGET', KEYS[1], 'product')
if not product then return 0 end
redis.call('INCRBY', ARGV[1] .. product, redis.call('HGET', KEYS[1], 'quantity'))
redis.call('DEL', KEYS[1])
return 1
)lua";

constexpr char kReservationIdPrefix[] = "r-";

std::string ReservationKey(const std::string& reservation_id) {
  // "r-12" -> "sockmesh:reservation:12"; anything else cannot name a reservation.
  if (reservation_id.rfind(kReservationIdPrefix, 0) != 0) return "";
  return absl::StrCat(kReservationPrefix, reservation_id.substr(2));
}

}  // namespace

absl::StatusOr<std::unique_ptr<RedisInventoryStore>> RedisInventoryStore::Connect(
    const std::string& host, int port) {
  absl::StatusOr<std::unique_ptr<platform::RedisConnection>> redis =
      platform::RedisConnection::Connect(host, port);
  if (!redis.ok()) return redis.status();
  return std::unique_ptr<RedisInventoryStore>(new RedisInventoryStore(std::move(*redis)));
}

absl::StatusOr<v1::Reservation> RedisInventoryStore::Reserve(const std::string& product_id,
                                                             int64_t quantity) {
  if (quantity < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantity: invalid value ", quantity, ": must be at least 1"));
  }
  absl::StatusOr<platform::RedisReply> reply =
      redis_->Command({"EVAL", kReserveScript, "2", absl::StrCat(kStockPrefix, product_id),
                       kReservationSeq, absl::StrCat(quantity), kReservationPrefix, product_id});
  if (!reply.ok()) return reply.status();
  int64_t id = 0, available = 0;
  if (reply->elements.size() != 2 || !absl::SimpleAtoi(reply->elements[0], &id) ||
      !absl::SimpleAtoi(reply->elements[1], &available)) {
    return absl::InternalError("Redis: reserve script returned an unexpected reply");
  }
  if (id == -1) return NoCounterError(product_id);
  if (id == -2) return OutOfStockError(product_id, available, quantity);
  v1::Reservation reservation;
  reservation.set_reservation_id(absl::StrCat(kReservationIdPrefix, id));
  reservation.set_product_id(product_id);
  reservation.set_quantity(quantity);
  return reservation;
}

absl::Status RedisInventoryStore::Release(const std::string& reservation_id) {
  const std::string key = ReservationKey(reservation_id);
  if (key.empty()) return UnknownReservationError(reservation_id);
  absl::StatusOr<platform::RedisReply> reply =
      redis_->Command({"EVAL", kReleaseScript, "1", key, kStockPrefix});
  if (!reply.ok()) return reply.status();
  if (reply->integer == 0) return UnknownReservationError(reservation_id);
  return absl::OkStatus();
}

absl::Status RedisInventoryStore::Commit(const std::string& reservation_id) {
  const std::string key = ReservationKey(reservation_id);
  if (key.empty()) return UnknownReservationError(reservation_id);
  absl::StatusOr<platform::RedisReply> reply = redis_->Command({"DEL", key});
  if (!reply.ok()) return reply.status();
  if (reply->integer == 0) return UnknownReservationError(reservation_id);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> RedisInventoryStore::Available(const std::string& product_id) {
  absl::StatusOr<platform::RedisReply> reply =
      redis_->Command({"GET", absl::StrCat(kStockPrefix, product_id)});
  if (!reply.ok()) return reply.status();
  int64_t available = 0;
  if (reply->nil) return NoCounterError(product_id);
  if (!absl::SimpleAtoi(reply->text, &available)) {
    return absl::InternalError(
        absl::StrCat("Redis: stock of ", product_id, " is not a number: \"", reply->text, "\""));
  }
  return available;
}

absl::Status RedisInventoryStore::SetAvailable(const std::string& product_id, int64_t available) {
  return redis_->Command({"SET", absl::StrCat(kStockPrefix, product_id), absl::StrCat(available)})
      .status();
}

absl::Status RedisInventoryStore::EnsureCounter(const std::string& product_id, int64_t available) {
  return redis_
      ->Command({"SET", absl::StrCat(kStockPrefix, product_id), absl::StrCat(available), "NX"})
      .status();
}

}  // namespace sockmesh::shop
