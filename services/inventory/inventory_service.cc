// SPDX-License-Identifier: Apache-2.0
#include "services/inventory/inventory_service.h"

#include "services/platform/grpc_status.h"

namespace sockmesh::shop {

using platform::ToGrpcStatus;

grpc::Status InventoryServiceImpl::Reserve(grpc::ServerContext*, const v1::ReserveRequest* request,
                                           v1::Reservation* response) {
  absl::StatusOr<v1::Reservation> reservation =
      store_.Reserve(request->product_id(), request->quantity());
  if (!reservation.ok()) return ToGrpcStatus(reservation.status());
  *response = *std::move(reservation);
  return grpc::Status::OK;
}

grpc::Status InventoryServiceImpl::Release(grpc::ServerContext*, const v1::ReservationRef* request,
                                           v1::ReleaseResponse*) {
  return ToGrpcStatus(store_.Release(request->reservation_id()));
}

grpc::Status InventoryServiceImpl::Commit(grpc::ServerContext*, const v1::ReservationRef* request,
                                          v1::CommitResponse*) {
  return ToGrpcStatus(store_.Commit(request->reservation_id()));
}

grpc::Status InventoryServiceImpl::GetStock(grpc::ServerContext*,
                                            const v1::GetStockRequest* request,
                                            v1::Stock* response) {
  absl::StatusOr<int64_t> available = store_.Available(request->product_id());
  if (!available.ok()) return ToGrpcStatus(available.status());
  response->set_product_id(request->product_id());
  response->set_available(*available);
  return grpc::Status::OK;
}

grpc::Status InventoryServiceImpl::SetStock(grpc::ServerContext*,
                                            const v1::SetStockRequest* request,
                                            v1::Stock* response) {
  if (request->available() < 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "available: must not be negative");
  }
  absl::Status status = store_.SetAvailable(request->product_id(), request->available());
  if (!status.ok()) return ToGrpcStatus(status);
  response->set_product_id(request->product_id());
  response->set_available(request->available());
  return grpc::Status::OK;
}

}  // namespace sockmesh::shop
