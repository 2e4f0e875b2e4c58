// SPDX-License-Identifier: Apache-2.0
// The platform's database stores against real servers: PostgreSQL (users, orders) and Redis
// (stock counters), each a throwaway instance this test starts on a free loopback port and
// removes afterwards.
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "services/inventory/redis_inventory_store.h"
#include "services/order/postgres_order_store.h"
#include "services/user/postgres_user_store.h"
#include "tests/support/throwaway_databases.h"

namespace sockmesh::shop {
namespace {

using testing::ThrowawayPostgres;
using testing::ThrowawayRedis;

class PostgresStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<ThrowawayPostgres>> started = ThrowawayPostgres::Start();
    if (started.ok()) {
      postgres_ = std::move(*started).release();
    } else {
      start_error_ = new std::string(started.status().ToString());
    }
  }
  static void TearDownTestSuite() {
    delete postgres_;
    postgres_ = nullptr;
    delete start_error_;
    start_error_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(postgres_, nullptr) << *start_error_; }

  static ThrowawayPostgres* postgres_;
  static std::string* start_error_;
};
ThrowawayPostgres* PostgresStoreTest::postgres_ = nullptr;
std::string* PostgresStoreTest::start_error_ = nullptr;

TEST_F(PostgresStoreTest, UsersAreCreatedReadAndUnique) {
  absl::StatusOr<std::unique_ptr<PostgresUserStore>> store =
      PostgresUserStore::Connect(postgres_->conninfo());
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE(SeedUsers(**store, 20).ok());
  ASSERT_TRUE(SeedUsers(**store, 20).ok()) << "seeding again finds them and is fine";
  absl::StatusOr<v1::User> user = (*store)->Get("u-7");
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(user->SerializeAsString(), SeedUser(7).SerializeAsString());
  EXPECT_EQ((*store)->Get("u-21").status(), absl::NotFoundError("user u-21 not found"));
  EXPECT_EQ((*store)->Create(SeedUser(3)), absl::AlreadyExistsError("user u-3 already exists"));
  // Text is passed as parameters, never spliced into SQL.
  v1::User odd;
  odd.set_user_id("u-'; DROP TABLE users; --");
  odd.set_name("O'Brien");
  ASSERT_TRUE((*store)->Create(odd).ok());
  EXPECT_EQ((*store)->Get(odd.user_id())->name(), "O'Brien");
}

TEST_F(PostgresStoreTest, ReplicasStartingTogetherBothCreateTheSchema) {
  // Two replicas connecting at once run CREATE TABLE IF NOT EXISTS concurrently; the advisory
  // lock keeps the second from failing on the catalog.
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      if (!PostgresOrderStore::Connect(postgres_->conninfo()).ok()) ++failures;
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(PostgresStoreTest, OrdersAreRecordedWithIncreasingIds) {
  absl::StatusOr<std::unique_ptr<PostgresOrderStore>> store =
      PostgresOrderStore::Connect(postgres_->conninfo());
  ASSERT_TRUE(store.ok()) << store.status();
  v1::Order order;
  order.set_user_id("u-1");
  order.set_product_id("p-2");
  order.set_quantity(3);
  order.set_total_cents(1497);
  order.set_payment_id("pay-9");
  absl::StatusOr<v1::Order> first = (*store)->Record(order);
  absl::StatusOr<v1::Order> second = (*store)->Record(order);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(first->order_id(), second->order_id());
  absl::StatusOr<v1::Order> read = (*store)->Get(first->order_id());
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->SerializeAsString(), first->SerializeAsString());
  EXPECT_EQ((*store)->Get("o-999999").status(), absl::NotFoundError("order o-999999 not found"));
  EXPECT_EQ((*store)->Get("x").status(), absl::NotFoundError("order x not found"));
}

TEST(PostgresStoreUnreachableTest, ConnectFailsWithUnavailable) {
  absl::StatusOr<int> port = testing::FreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  absl::StatusOr<std::unique_ptr<PostgresUserStore>> store = PostgresUserStore::Connect(
      absl::StrCat("host=127.0.0.1 port=", *port, " user=postgres connect_timeout=2"));
  EXPECT_TRUE(absl::IsUnavailable(store.status())) << store.status();
}

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<ThrowawayRedis>> started = ThrowawayRedis::Start();
    ASSERT_TRUE(started.ok()) << started.status();
    redis_ = std::move(*started);
  }
  std::unique_ptr<RedisInventoryStore> Connect() {
    absl::StatusOr<std::unique_ptr<RedisInventoryStore>> store =
        RedisInventoryStore::Connect("127.0.0.1", redis_->port());
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }
  std::unique_ptr<ThrowawayRedis> redis_;
};

TEST_F(RedisStoreTest, ReserveCommitAndRelease) {
  std::unique_ptr<RedisInventoryStore> store = Connect();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->EnsureCounter("p-1", 10).ok());
  ASSERT_TRUE(store->EnsureCounter("p-1", 999).ok());
  EXPECT_EQ(store->Available("p-1").value(), 10) << "an existing counter is kept";

  absl::StatusOr<v1::Reservation> kept = store->Reserve("p-1", 4);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->quantity(), 4);
  EXPECT_EQ(store->Available("p-1").value(), 6);
  absl::StatusOr<v1::Reservation> undone = store->Reserve("p-1", 5);
  ASSERT_TRUE(undone.ok()) << undone.status();
  EXPECT_NE(undone->reservation_id(), kept->reservation_id());
  EXPECT_EQ(store->Reserve("p-1", 2).status(),
            absl::ResourceExhaustedError("out of stock: product p-1 has 1 available, 2 requested"));

  ASSERT_TRUE(store->Release(undone->reservation_id()).ok());
  EXPECT_EQ(store->Available("p-1").value(), 6);
  EXPECT_TRUE(absl::IsNotFound(store->Release(undone->reservation_id())))
      << "a reservation is released once";
  ASSERT_TRUE(store->Commit(kept->reservation_id()).ok());
  EXPECT_EQ(store->Available("p-1").value(), 6) << "committed units stay sold";
  EXPECT_TRUE(absl::IsNotFound(store->Release(kept->reservation_id())));

  EXPECT_EQ(store->Reserve("p-404", 1).status(),
            absl::NotFoundError("product p-404 has no stock counter"));
  EXPECT_TRUE(absl::IsInvalidArgument(store->Reserve("p-1", 0).status()));
  EXPECT_TRUE(absl::IsNotFound(store->Release("bogus")));
  ASSERT_TRUE(store->SetAvailable("p-1", 42).ok());
  EXPECT_EQ(store->Available("p-1").value(), 42);
}

TEST_F(RedisStoreTest, ConcurrentReservationsFromTwoReplicasNeverOversell) {
  constexpr int kStock = 100;
  constexpr int kThreadsPerReplica = 4;
  constexpr int kAttemptsPerThread = 60;  // 480 attempts of one unit for 100 units.
  std::unique_ptr<RedisInventoryStore> replicas[2] = {Connect(), Connect()};
  ASSERT_NE(replicas[0], nullptr);
  ASSERT_NE(replicas[1], nullptr);
  ASSERT_TRUE(replicas[0]->SetAvailable("p-1", kStock).ok());
  std::atomic<int> reserved{0}, refused{0}, errors{0};
  std::vector<std::thread> threads;
  for (auto& replica : replicas) {
    for (int t = 0; t < kThreadsPerReplica; ++t) {
      threads.emplace_back([&, store = replica.get()] {
        for (int i = 0; i < kAttemptsPerThread; ++i) {
          absl::StatusOr<v1::Reservation> r = store->Reserve("p-1", 1);
          if (r.ok()) {
            ++reserved;
          } else if (absl::IsResourceExhausted(r.status())) {
            ++refused;
          } else {
            ++errors;
          }
        }
      });
    }
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(reserved.load(), kStock);
  EXPECT_EQ(refused.load(), 2 * kThreadsPerReplica * kAttemptsPerThread - kStock);
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(replicas[0]->Available("p-1").value(), 0);
}

TEST_F(RedisStoreTest, ServerGoneIsUnavailable) {
  std::unique_ptr<RedisInventoryStore> store = Connect();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->SetAvailable("p-1", 5).ok());
  redis_.reset();
  absl::StatusOr<v1::Reservation> reservation = store->Reserve("p-1", 1);
  EXPECT_TRUE(absl::IsUnavailable(reservation.status())) << reservation.status();
}

}  // namespace
}  // namespace sockmesh::shop
