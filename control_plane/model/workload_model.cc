// SPDX-License-Identifier: Apache-2.0
#include "control_plane/model/workload_model.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace sockmesh::model {

std::string Principal(std::string_view namespace_name, std::string_view service_account) {
  // absl::StrCat takes absl::string_view, which Debian's Abseil does not convert from std's.
  auto a = [](std::string_view s) { return absl::string_view(s.data(), s.size()); };
  return absl::StrCat(a(kTrustDomain), "/ns/", a(namespace_name), "/sa/", a(service_account));
}

std::string_view WorkloadKindName(WorkloadKind kind) {
  return kind == WorkloadKind::kPod ? "Pod" : "WorkloadEntry";
}

}  // namespace sockmesh::model
