// SPDX-License-Identifier: Apache-2.0
#include "services/product/product_service.h"

#include "services/platform/grpc_status.h"

namespace sockmesh::shop {

grpc::Status ProductServiceImpl::GetProduct(grpc::ServerContext*,
                                            const v1::GetProductRequest* request,
                                            v1::Product* response) {
  absl::StatusOr<v1::Product> product = catalog_.Get(request->product_id());
  if (!product.ok()) return platform::ToGrpcStatus(product.status());
  *response = *std::move(product);
  return grpc::Status::OK;
}

grpc::Status ProductServiceImpl::ListProducts(grpc::ServerContext*, const v1::ListProductsRequest*,
                                              v1::ListProductsResponse* response) {
  for (v1::Product& product : catalog_.All()) *response->add_products() = std::move(product);
  return grpc::Status::OK;
}

}  // namespace sockmesh::shop
