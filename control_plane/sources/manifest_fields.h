// SPDX-License-Identifier: Apache-2.0
// The field readers of the manifest parser: shape checks that never throw, scalars with ranges,
// names, metadata, and the Reporter that formats every error as "<file>: <object>: <field path>:
// <detail>". Shared by the parsers of Kubernetes' kinds (manifest_parser.cc) and of sockmesh's
// own kinds (traffic_policy_parser.cc), so every kind reports errors the same way.
#ifndef SOCKMESH_CONTROL_PLANE_SOURCES_MANIFEST_FIELDS_H_
#define SOCKMESH_CONTROL_PLANE_SOURCES_MANIFEST_FIELDS_H_

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "control_plane/model/service_model.h"

namespace sockmesh::sources::fields {

// Long values are cut in messages so one bad field cannot flood a log line.
inline constexpr size_t kMaxShownValueChars = 80;

std::string Truncate(std::string text);
std::string Quote(absl::string_view text);
// Debian builds Abseil with its own string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0), which does not
// convert from std::string_view; the public API uses std::string_view like the model does.
absl::string_view ToAbsl(std::string_view s);

// yaml-cpp returns an "invalid" node for a missing key, and its IsMap()/IsScalar()/IsNull() throw
// on such a node; IsDefined() is the one safe question, so every shape test goes through these.
bool Absent(const YAML::Node& node);
bool IsMap(const YAML::Node& node);
bool IsList(const YAML::Node& node);
bool IsScalar(const YAML::Node& node);
// A value as the user wrote it: scalars quoted, maps and lists in flow style.
std::string Describe(const YAML::Node& node);
// A map field, never throwing (yaml-cpp throws when subscripting a scalar).
YAML::Node Child(const YAML::Node& map, absl::string_view key);
// Field paths: "spec.ports", "spec.ports[1]", "metadata.labels[app]".
std::string Field(absl::string_view path, absl::string_view key);
std::string Index(absl::string_view path, size_t i);
std::string Key(absl::string_view path, absl::string_view key);

// Formats errors as "<file>: <object>: <field path>: <detail>", the object being "Service ns/name"
// once known and "document N" before that.
class Reporter {
 public:
  Reporter(absl::string_view file, std::string object) : file_(file), object_(std::move(object)) {}

  void set_object(std::string object) { object_ = std::move(object); }

  absl::Status Error(absl::string_view path, absl::string_view detail) const {
    if (path.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(file_, ": ", object_, ": ", detail));
    }
    return absl::InvalidArgumentError(absl::StrCat(file_, ": ", object_, ": ", path, ": ", detail));
  }
  absl::Status Invalid(absl::string_view path, const YAML::Node& value,
                       absl::string_view expected) const {
    return Error(path, absl::StrCat("invalid value ", Describe(value), ": ", expected));
  }
  absl::Status InvalidText(absl::string_view path, absl::string_view value,
                           absl::string_view expected) const {
    return Error(path, absl::StrCat("invalid value ", Quote(value), ": ", expected));
  }
  absl::Status Missing(absl::string_view path, absl::string_view why = "") const {
    if (why.empty()) return Error(path, "required value missing");
    return Error(path, absl::StrCat("required value missing: ", why));
  }

 private:
  absl::string_view file_;
  std::string object_;
};

absl::Status ExpectMap(const Reporter& r, const YAML::Node& node, absl::string_view path,
                       absl::string_view expected = "must be a map");
absl::Status ExpectList(const Reporter& r, const YAML::Node& node, absl::string_view path);
absl::StatusOr<std::optional<std::string>> OptString(const Reporter& r, const YAML::Node& node,
                                                     absl::string_view path);
absl::StatusOr<std::string> ReqString(const Reporter& r, const YAML::Node& node,
                                      absl::string_view path);
std::optional<uint64_t> ParseDecimal(absl::string_view text);
absl::StatusOr<std::optional<uint32_t>> OptInt(const Reporter& r, const YAML::Node& node,
                                               absl::string_view path, uint32_t min, uint32_t max);
absl::StatusOr<uint32_t> ReqInt(const Reporter& r, const YAML::Node& node, absl::string_view path,
                                uint32_t min, uint32_t max);
absl::StatusOr<bool> OptBool(const Reporter& r, const YAML::Node& node, absl::string_view path,
                             bool default_value);
absl::StatusOr<model::Protocol> OptProtocol(const Reporter& r, const YAML::Node& node,
                                            absl::string_view path);
absl::StatusOr<model::IpAddress> ReqIp(const Reporter& r, const YAML::Node& node,
                                       absl::string_view path);

bool IsLowerAlnum(char c);
bool IsDnsLabel(absl::string_view s);
bool IsServiceName(absl::string_view s);
bool IsDnsSubdomain(absl::string_view s);
bool IsIanaServiceName(absl::string_view s);
inline constexpr absl::string_view kDnsLabelRule =
    "must be a DNS label (lowercase letters, digits and '-', at most 63 characters)";
inline constexpr absl::string_view kServiceNameRule =
    "must be a DNS label starting with a letter (lowercase letters, digits and '-', at most 63 "
    "characters)";
inline constexpr absl::string_view kSubdomainRule =
    "must be a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253 characters)";

struct Metadata {
  std::string namespace_name;
  std::string name;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
};

absl::StatusOr<std::map<std::string, std::string>> StringMap(const Reporter& r,
                                                             const YAML::Node& node,
                                                             absl::string_view path);
absl::StatusOr<Metadata> ParseMetadata(Reporter& r, const YAML::Node& object,
                                       absl::string_view kind,
                                       bool (*valid_name)(absl::string_view),
                                       absl::string_view name_rule);

}  // namespace sockmesh::sources::fields

#endif  // SOCKMESH_CONTROL_PLANE_SOURCES_MANIFEST_FIELDS_H_
