// SPDX-License-Identifier: Apache-2.0
#ifndef SOCKMESH_SERVICES_PRODUCT_PRODUCT_SERVICE_H_
#define SOCKMESH_SERVICES_PRODUCT_PRODUCT_SERVICE_H_

#include "services/product/product_catalog.h"
#include "sockmesh/shop/v1/product.grpc.pb.h"

namespace sockmesh::shop {

class ProductServiceImpl final : public v1::ProductService::Service {
 public:
  explicit ProductServiceImpl(const ProductCatalog& catalog) : catalog_(catalog) {}

  grpc::Status GetProduct(grpc::ServerContext* context, const v1::GetProductRequest* request,
                          v1::Product* response) override;
  grpc::Status ListProducts(grpc::ServerContext* context, const v1::ListProductsRequest* request,
                            v1::ListProductsResponse* response) override;

 private:
  const ProductCatalog& catalog_;
};

}  // namespace sockmesh::shop

#endif  // SOCKMESH_SERVICES_PRODUCT_PRODUCT_SERVICE_H_
