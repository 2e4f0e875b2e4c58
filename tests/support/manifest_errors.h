// SPDX-License-Identifier: Apache-2.0
#ifndef SOCKMESH_TESTS_SUPPORT_MANIFEST_ERRORS_H_
#define SOCKMESH_TESTS_SUPPORT_MANIFEST_ERRORS_H_

#include <string>
#include <string_view>

#include "control_plane/sources/manifest_parser.h"
#include "gtest/gtest.h"

namespace sockmesh::testing {

// The InvalidArgument message ParseManifests gives for `yaml` labelled `file_label`. Parsing
// without an error, or another error code, is a test failure.
inline std::string ManifestErrorOf(std::string_view yaml, std::string_view file_label) {
  absl::StatusOr<sources::ParsedManifests> parsed = sources::ParseManifests(yaml, file_label);
  if (parsed.ok()) {
    ADD_FAILURE() << "parsed without error:\n" << yaml;
    return "";
  }
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << parsed.status();
  return std::string(parsed.status().message());
}

}  // namespace sockmesh::testing

#endif  // SOCKMESH_TESTS_SUPPORT_MANIFEST_ERRORS_H_
