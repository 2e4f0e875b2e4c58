// SPDX-License-Identifier: Apache-2.0
// The product catalog: read-only once built, so it needs no lock. The platform's stack keeps no
// product database; the catalog is generated at start, the same in every replica.
#ifndef SOCKMESH_SERVICES_PRODUCT_PRODUCT_CATALOG_H_
#define SOCKMESH_SERVICES_PRODUCT_PRODUCT_CATALOG_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "sockmesh/shop/v1/product.pb.h"

namespace sockmesh::shop {

// p-1 ... p-N, with prices every replica computes alike.
v1::Product SeedProduct(int index);

class ProductCatalog {
 public:
  static ProductCatalog Seeded(int count);
  void Add(const v1::Product& product) { products_[product.product_id()] = product; }

  // NotFound("product p-9 not found") when absent.
  absl::StatusOr<v1::Product> Get(const std::string& product_id) const;
  std::vector<v1::Product> All() const;

 private:
  absl::flat_hash_map<std::string, v1::Product> products_;
};

}  // namespace sockmesh::shop

#endif  // SOCKMESH_SERVICES_PRODUCT_PRODUCT_CATALOG_H_
