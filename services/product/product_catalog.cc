// SPDX-License-Identifier: Apache-2.0
#include "services/product/product_catalog.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace sockmesh::shop {

v1::Product SeedProduct(int index) {
  v1::Product product;
  product.set_product_id(absl::StrCat("p-", index));
  product.set_name(absl::StrCat("Product ", index));
  product.set_price_cents(199 + 100 * (index % 50));
  return product;
}

ProductCatalog ProductCatalog::Seeded(int count) {
  ProductCatalog catalog;
  for (int i = 1; i <= count; ++i) catalog.Add(SeedProduct(i));
  return catalog;
}

absl::StatusOr<v1::Product> ProductCatalog::Get(const std::string& product_id) const {
  auto it = products_.find(product_id);
  if (it == products_.end()) {
    return absl::NotFoundError(absl::StrCat("product ", product_id, " not found"));
  }
  return it->second;
}

std::vector<v1::Product> ProductCatalog::All() const {
  std::vector<v1::Product> all;
  for (const auto& [id, product] : products_) all.push_back(product);
  std::sort(all.begin(), all.end(), [](const v1::Product& a, const v1::Product& b) {
    return a.product_id() < b.product_id();
  });
  return all;
}

}  // namespace sockmesh::shop
