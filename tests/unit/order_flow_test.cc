// SPDX-License-Identifier: Apache-2.0
// PlaceOrder across the real user, product, inventory and payment services, in-process over gRPC,
// with in-memory stores: the happy path, each failure with its status, the undo steps (reservation
// released, charge refunded), and concurrent orders that must not oversell.
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "services/inventory/inventory_service.h"
#include "services/order/order_service.h"
#include "services/payment/payment_service.h"
#include "services/product/product_service.h"
#include "services/user/user_service.h"

namespace sockmesh::shop {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kDeclineAbove = 100'000;

// A store that fails every write, to exercise the undo after a failed record.
class FailingOrderStore : public OrderStore {
 public:
  absl::StatusOr<v1::Order> Record(const v1::Order&) override {
    return absl::UnavailableError("orders database is down");
  }
  absl::StatusOr<v1::Order> Get(const std::string& id) override { return absl::NotFoundError(id); }
};

platform::ChannelPool InProcessPool(grpc::Server& server, int size) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < size; ++i)
    channels.push_back(server.InProcessChannel(grpc::ChannelArguments()));
  return platform::ChannelPool(std::move(channels));
}

class OrderFlowTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(orders_); }

  // The four dependencies on one server, the order service on another that calls them.
  void Start(OrderStore& order_store) {
    ASSERT_TRUE(SeedUsers(users_, 10).ok());
    for (int i = 1; i <= 5; ++i) ASSERT_TRUE(stock_.SetAvailable(absl::StrCat("p-", i), 10).ok());
    grpc::ServerBuilder deps;
    deps.RegisterService(&user_service_);
    deps.RegisterService(&product_service_);
    deps.RegisterService(&inventory_service_);
    deps.RegisterService(&payment_service_);
    deps_server_ = deps.BuildAndStart();
    ASSERT_NE(deps_server_, nullptr);
    order_service_ = std::make_unique<OrderServiceImpl>(
        OrderDependencies{InProcessPool(*deps_server_, 2), InProcessPool(*deps_server_, 2),
                          InProcessPool(*deps_server_, 2), InProcessPool(*deps_server_, 2)},
        order_store, std::chrono::seconds(5));
    grpc::ServerBuilder order;
    order.RegisterService(order_service_.get());
    order_server_ = order.BuildAndStart();
    ASSERT_NE(order_server_, nullptr);
    client_ = v1::OrderService::NewStub(order_server_->InProcessChannel(grpc::ChannelArguments()));
  }

  void TearDown() override {
    if (order_server_) order_server_->Shutdown();
    if (deps_server_) deps_server_->Shutdown();
  }

  grpc::Status Place(const std::string& user, const std::string& product, int64_t quantity,
                     v1::Order* order, const std::string& card = "tok_visa") {
    v1::PlaceOrderRequest request;
    request.set_user_id(user);
    request.set_product_id(product);
    request.set_quantity(quantity);
    request.set_card_token(card);
    grpc::ClientContext context;
    return client_->PlaceOrder(&context, request, order);
  }

  int64_t Stock(const std::string& product) { return stock_.Available(product).value_or(-1); }

  // Nothing of a failed order may remain: stock back to 10, no reservation, no charge, no order.
  void ExpectNoTrace() {
    EXPECT_EQ(Stock("p-1"), 10);
    EXPECT_EQ(stock_.open_reservations(), 0u);
    EXPECT_EQ(payment_service_.open_payments(), 0u);
    EXPECT_EQ(orders_.size(), 0u);
  }

  MemoryUserStore users_;
  const ProductCatalog catalog_ = ProductCatalog::Seeded(5);
  MemoryInventoryStore stock_;
  MemoryOrderStore orders_;
  UserServiceImpl user_service_{users_};
  ProductServiceImpl product_service_{catalog_};
  InventoryServiceImpl inventory_service_{stock_};
  PaymentServiceImpl payment_service_{kDeclineAbove};
  std::unique_ptr<OrderServiceImpl> order_service_;
  std::unique_ptr<grpc::Server> deps_server_;
  std::unique_ptr<grpc::Server> order_server_;
  std::unique_ptr<v1::OrderService::Stub> client_;
};

TEST_F(OrderFlowTest, PlacesAnOrderAndRecordsIt) {
  v1::Order order;
  grpc::Status status = Place("u-3", "p-2", 3, &order);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(order.order_id().empty());
  EXPECT_EQ(order.user_id(), "u-3");
  EXPECT_EQ(order.product_id(), "p-2");
  EXPECT_EQ(order.quantity(), 3);
  EXPECT_EQ(order.total_cents(), 3 * SeedProduct(2).price_cents());
  EXPECT_FALSE(order.payment_id().empty());
  EXPECT_EQ(Stock("p-2"), 7);
  EXPECT_EQ(stock_.open_reservations(), 0u) << "the reservation is committed";
  EXPECT_EQ(payment_service_.open_payments(), 1u);

  v1::GetOrderRequest get;
  get.set_order_id(order.order_id());
  v1::Order read;
  grpc::ClientContext context;
  ASSERT_TRUE(client_->GetOrder(&context, get, &read).ok());
  EXPECT_EQ(read.SerializeAsString(), order.SerializeAsString());
}

TEST_F(OrderFlowTest, UnknownUserIsNotFound) {
  v1::Order order;
  grpc::Status status = Place("u-999", "p-1", 1, &order);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "check user: user u-999 not found");
  ExpectNoTrace();
}

TEST_F(OrderFlowTest, UnknownProductIsNotFound) {
  v1::Order order;
  grpc::Status status = Place("u-1", "p-999", 1, &order);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "read product: product p-999 not found");
  ExpectNoTrace();
}

TEST_F(OrderFlowTest, OutOfStockIsResourceExhausted) {
  v1::Order order;
  grpc::Status status = Place("u-1", "p-1", 11, &order);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(status.error_message(),
            "reserve stock: out of stock: product p-1 has 10 available, 11 requested");
  ExpectNoTrace();
}

TEST_F(OrderFlowTest, DeclinedCardReleasesTheReservation) {
  v1::Order order;
  grpc::Status status = Place("u-1", "p-1", 4, &order, kDeclineCardToken);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("charge payment: payment declined"));
  ExpectNoTrace();
}

TEST_F(OrderFlowTest, AmountOverTheLimitIsDeclinedAndReleased) {
  ASSERT_TRUE(stock_.SetAvailable("p-1", 10'000).ok());
  const int64_t quantity = kDeclineAbove / SeedProduct(1).price_cents() + 1;
  v1::Order order;
  grpc::Status status = Place("u-1", "p-1", quantity, &order);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("over the limit"));
  EXPECT_EQ(Stock("p-1"), 10'000);
  EXPECT_EQ(stock_.open_reservations(), 0u);
}

TEST_F(OrderFlowTest, InvalidQuantityIsRefusedBeforeAnyCall) {
  v1::Order order;
  grpc::Status status = Place("u-1", "p-1", 0, &order);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "quantity: invalid value 0: must be at least 1");
  ExpectNoTrace();
}

TEST_F(OrderFlowTest, ConcurrentOrdersNeverOversell) {
  constexpr int kThreads = 8;
  constexpr int kOrdersEach = 10;  // 80 orders of one unit for 10 units.
  std::atomic<int> placed{0}, out_of_stock{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kOrdersEach; ++i) {
        v1::Order order;
        grpc::Status status = Place(absl::StrCat("u-", 1 + t), "p-1", 1, &order);
        if (status.ok()) {
          ++placed;
        } else if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
          ++out_of_stock;
        } else {
          ++other;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(placed.load(), 10);
  EXPECT_EQ(out_of_stock.load(), kThreads * kOrdersEach - 10);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(Stock("p-1"), 0);
  EXPECT_EQ(orders_.size(), 10u);
  EXPECT_EQ(stock_.open_reservations(), 0u);
}

class OrderRecordFailureTest : public OrderFlowTest {
 protected:
  void SetUp() override { Start(failing_); }
  FailingOrderStore failing_;
};

TEST_F(OrderRecordFailureTest, FailedRecordRefundsAndReleases) {
  v1::Order order;
  grpc::Status status = Place("u-1", "p-1", 2, &order);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "record order: orders database is down");
  ExpectNoTrace();
}

TEST(OrderDependencyTest, UnreachableServiceIsUnavailableWithTheStepNamed) {
  // Port 1 on loopback: nothing listens, so the connect is refused at once.
  MemoryOrderStore orders;
  OrderServiceImpl service(OrderDependencies{platform::ChannelPool::Dial("127.0.0.1:1", 1),
                                             platform::ChannelPool::Dial("127.0.0.1:1", 1),
                                             platform::ChannelPool::Dial("127.0.0.1:1", 1),
                                             platform::ChannelPool::Dial("127.0.0.1:1", 1)},
                           orders, std::chrono::seconds(2));
  grpc::ServerBuilder builder;
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  auto client = v1::OrderService::NewStub(server->InProcessChannel(grpc::ChannelArguments()));
  v1::PlaceOrderRequest request;
  request.set_user_id("u-1");
  request.set_product_id("p-1");
  request.set_quantity(1);
  v1::Order order;
  grpc::ClientContext context;
  grpc::Status status = client->PlaceOrder(&context, request, &order);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("check user: "));
  server->Shutdown();
}

}  // namespace
}  // namespace sockmesh::shop
