// SPDX-License-Identifier: Apache-2.0
#ifndef SOCKMESH_SERVICES_INVENTORY_INVENTORY_SERVICE_H_
#define SOCKMESH_SERVICES_INVENTORY_INVENTORY_SERVICE_H_

#include "services/inventory/inventory_store.h"
#include "sockmesh/shop/v1/inventory.grpc.pb.h"

namespace sockmesh::shop {

class InventoryServiceImpl final : public v1::InventoryService::Service {
 public:
  explicit InventoryServiceImpl(InventoryStore& store) : store_(store) {}

  grpc::Status Reserve(grpc::ServerContext* context, const v1::ReserveRequest* request,
                       v1::Reservation* response) override;
  grpc::Status Release(grpc::ServerContext* context, const v1::ReservationRef* request,
                       v1::ReleaseResponse* response) override;
  grpc::Status Commit(grpc::ServerContext* context, const v1::ReservationRef* request,
                      v1::CommitResponse* response) override;
  grpc::Status GetStock(grpc::ServerContext* context, const v1::GetStockRequest* request,
                        v1::Stock* response) override;
  grpc::Status SetStock(grpc::ServerContext* context, const v1::SetStockRequest* request,
                        v1::Stock* response) override;

 private:
  InventoryStore& store_;
};

}  // namespace sockmesh::shop

#endif  // SOCKMESH_SERVICES_INVENTORY_INVENTORY_SERVICE_H_
