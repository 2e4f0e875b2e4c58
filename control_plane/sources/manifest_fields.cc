// SPDX-License-Identifier: Apache-2.0
#include "control_plane/sources/manifest_fields.h"

#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace sockmesh::sources::fields {

using model::IpAddress;
using model::Protocol;

std::string Truncate(std::string text) {
  if (text.size() > kMaxShownValueChars) {
    text.resize(kMaxShownValueChars);
    text += "...";
  }
  return text;
}

std::string Quote(absl::string_view text) {
  if (text.size() <= kMaxShownValueChars) {
    return absl::StrCat("\"", absl::Utf8SafeCHexEscape(text), "\"");
  }
  // Cut before escaping, so the cut never splits an escape sequence.
  return absl::StrCat("\"", absl::Utf8SafeCHexEscape(text.substr(0, kMaxShownValueChars)), "...\"");
}

// Debian builds Abseil with its own string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0), which does not
// convert from std::string_view; the public API uses std::string_view like the model does.
absl::string_view ToAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// yaml-cpp returns an "invalid" node for a missing key, and its IsMap()/IsScalar()/IsNull() throw
// on such a node; IsDefined() is the one safe question, so every shape test goes through these.
bool Absent(const YAML::Node& node) { return !node.IsDefined() || node.IsNull(); }
bool IsMap(const YAML::Node& node) { return node.IsDefined() && node.IsMap(); }
bool IsList(const YAML::Node& node) { return node.IsDefined() && node.IsSequence(); }
bool IsScalar(const YAML::Node& node) { return node.IsDefined() && node.IsScalar(); }

// Scalars are quoted; maps and lists are shown in flow style ({a: 1}, [x, y]) so the user sees
// which shape they wrote where another was expected.
std::string Describe(const YAML::Node& node) {
  if (Absent(node)) return "null";
  if (IsScalar(node)) return Quote(node.Scalar());
  YAML::Emitter out;
  out.SetMapFormat(YAML::Flow);
  out.SetSeqFormat(YAML::Flow);
  out << node;
  return Truncate(out.c_str());
}

// Looks up a map field without ever throwing: yaml-cpp throws when subscripting a scalar.
YAML::Node Child(const YAML::Node& map, absl::string_view key) {
  if (!IsMap(map)) return YAML::Node(YAML::NodeType::Undefined);
  return map[std::string(key)];
}

std::string Field(absl::string_view path, absl::string_view key) {
  return path.empty() ? std::string(key) : absl::StrCat(path, ".", key);
}
std::string Index(absl::string_view path, size_t i) { return absl::StrCat(path, "[", i, "]"); }
// Kubernetes writes map keys in paths without quotes: metadata.labels[kubernetes.io/service-name].
std::string Key(absl::string_view path, absl::string_view key) {
  return absl::StrCat(path, "[", key, "]");
}

// ---- Shapes ---------------------------------------------------------------------------------

// A map whose keys are all distinct strings. yaml-cpp silently keeps the first of two equal keys;
// Kubernetes rejects them, and a repeated key is nearly always an editing mistake.
absl::Status ExpectMap(const Reporter& r, const YAML::Node& node, absl::string_view path,
                       absl::string_view expected) {
  if (!IsMap(node)) return r.Invalid(path, node, expected);
  std::set<std::string> seen;
  for (const auto& kv : node) {
    if (!IsScalar(kv.first)) return r.Invalid(path, kv.first, "map keys must be strings");
    if (!seen.insert(kv.first.Scalar()).second) {
      return r.Error(Field(path, kv.first.Scalar()), "duplicate key: a field may be set only once");
    }
  }
  return absl::OkStatus();
}

absl::Status ExpectList(const Reporter& r, const YAML::Node& node, absl::string_view path) {
  if (!IsList(node)) return r.Invalid(path, node, "must be a list");
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> OptString(const Reporter& r, const YAML::Node& node,
                                                     absl::string_view path) {
  if (Absent(node)) return std::nullopt;
  if (!IsScalar(node)) return r.Invalid(path, node, "must be a string");
  return node.Scalar();
}

// Required and non-empty, as Kubernetes treats "" in a required string as missing.
absl::StatusOr<std::string> ReqString(const Reporter& r, const YAML::Node& node,
                                      absl::string_view path) {
  absl::StatusOr<std::optional<std::string>> value = OptString(r, node, path);
  if (!value.ok()) return value.status();
  if (!value->has_value() || (*value)->empty()) return r.Missing(path);
  return **value;
}

// Plain decimal only: YAML 1.1 (what kubectl reads) takes "010" as octal and "0x50" as hex, and a
// port that means different numbers to different readers is worse than a rejected one.
std::optional<uint64_t> ParseDecimal(absl::string_view text) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  if (text.size() > 1 && text[0] == '0') return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value;
}

absl::StatusOr<std::optional<uint32_t>> OptInt(const Reporter& r, const YAML::Node& node,
                                               absl::string_view path, uint32_t min, uint32_t max) {
  if (Absent(node)) return std::nullopt;
  const std::string expected = absl::StrCat("must be an integer ", min, "-", max);
  if (!IsScalar(node)) return r.Invalid(path, node, expected);
  std::optional<uint64_t> value = ParseDecimal(node.Scalar());
  if (!value.has_value() || *value < min || *value > max) return r.Invalid(path, node, expected);
  return static_cast<uint32_t>(*value);
}

absl::StatusOr<uint32_t> ReqInt(const Reporter& r, const YAML::Node& node, absl::string_view path,
                                uint32_t min, uint32_t max) {
  absl::StatusOr<std::optional<uint32_t>> value = OptInt(r, node, path, min, max);
  if (!value.ok()) return value.status();
  if (!value->has_value()) return r.Missing(path);
  return **value;
}

absl::StatusOr<bool> OptBool(const Reporter& r, const YAML::Node& node, absl::string_view path,
                             bool default_value) {
  if (Absent(node)) return default_value;
  if (IsScalar(node)) {
    const std::string& s = node.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  return r.Invalid(path, node, "must be true or false");
}

absl::StatusOr<Protocol> OptProtocol(const Reporter& r, const YAML::Node& node,
                                     absl::string_view path) {
  absl::StatusOr<std::optional<std::string>> text = OptString(r, node, path);
  if (!text.ok()) return text.status();
  if (!text->has_value() || **text == "TCP") return Protocol::kTcp;
  if (**text == "UDP") return Protocol::kUdp;
  if (**text == "SCTP") {
    return r.Invalid(path, node, "SCTP is not supported: must be TCP or UDP");
  }
  return r.Invalid(path, node, "must be TCP or UDP");
}

// A cluster IP or endpoint address. The unspecified address (0.0.0.0, ::) would make the datapath
// match or dial "any", so it is refused along with text that is not an address.
absl::StatusOr<IpAddress> ReqIp(const Reporter& r, const YAML::Node& node, absl::string_view path) {
  absl::StatusOr<std::string> text = ReqString(r, node, path);
  if (!text.ok()) return text.status();
  absl::StatusOr<IpAddress> ip = IpAddress::Parse(*text);
  if (!ip.ok()) return r.Invalid(path, node, "must be an IPv4 or IPv6 address");
  if (ip->bytes == std::array<uint8_t, 16>{}) {
    return r.Invalid(path, node, "must not be the unspecified address");
  }
  return *ip;
}

// ---- Names ----------------------------------------------------------------------------------

bool IsLowerAlnum(char c) { return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'z'); }

// RFC 1123 label: what Kubernetes requires of namespaces and port names.
bool IsDnsLabel(absl::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  if (!IsLowerAlnum(s.front()) || !IsLowerAlnum(s.back())) return false;
  for (char c : s) {
    if (!IsLowerAlnum(c) && c != '-') return false;
  }
  return true;
}

// RFC 1035 label: a DNS label starting with a letter, what Kubernetes requires of Service names.
bool IsServiceName(absl::string_view s) {
  return IsDnsLabel(s) && absl::ascii_isalpha(static_cast<unsigned char>(s.front()));
}

// RFC 1123 subdomain: dot-separated labels, at most 253 characters; EndpointSlice names.
bool IsDnsSubdomain(absl::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (absl::string_view part : absl::StrSplit(s, '.')) {
    if (part.empty() || !IsLowerAlnum(part.front()) || !IsLowerAlnum(part.back())) return false;
    for (char c : part) {
      if (!IsLowerAlnum(c) && c != '-') return false;
    }
  }
  return true;
}

// IANA service name: the form of a named targetPort (a container port's name).
bool IsIanaServiceName(absl::string_view s) {
  if (s.empty() || s.size() > 15 || s.front() == '-' || s.back() == '-') return false;
  if (s.find("--") != absl::string_view::npos) return false;
  bool has_letter = false;
  for (char c : s) {
    if (!IsLowerAlnum(c) && c != '-') return false;
    has_letter |= (c >= 'a' && c <= 'z');
  }
  return has_letter;
}

// ---- metadata -------------------------------------------------------------------------------

absl::StatusOr<std::map<std::string, std::string>> StringMap(const Reporter& r,
                                                             const YAML::Node& node,
                                                             absl::string_view path) {
  std::map<std::string, std::string> out;
  if (Absent(node)) return out;
  if (absl::Status s = ExpectMap(r, node, path); !s.ok()) return s;
  for (const auto& kv : node) {
    const std::string& key = kv.first.Scalar();
    if (!Absent(kv.second) && !IsScalar(kv.second)) {
      return r.Invalid(Key(path, key), kv.second, "must be a string");
    }
    out[key] = Absent(kv.second) ? "" : kv.second.Scalar();
  }
  return out;
}

// Reads metadata and, once name and namespace are valid, renames the reported object from
// "document N (Kind)" to "Kind namespace/name" so later errors say which object is wrong.
absl::StatusOr<Metadata> ParseMetadata(Reporter& r, const YAML::Node& object,
                                       absl::string_view kind,
                                       bool (*valid_name)(absl::string_view),
                                       absl::string_view name_rule) {
  const YAML::Node meta = Child(object, "metadata");
  if (Absent(meta)) return r.Missing("metadata");
  if (absl::Status s = ExpectMap(r, meta, "metadata"); !s.ok()) return s;

  Metadata out;
  const YAML::Node name = Child(meta, "name");
  absl::StatusOr<std::string> name_text = ReqString(r, name, "metadata.name");
  if (!name_text.ok()) return name_text.status();
  if (!valid_name(*name_text)) return r.Invalid("metadata.name", name, name_rule);
  out.name = *name_text;
  r.set_object(absl::StrCat(kind, " ", out.name));

  const YAML::Node ns = Child(meta, "namespace");
  absl::StatusOr<std::optional<std::string>> ns_text = OptString(r, ns, "metadata.namespace");
  if (!ns_text.ok()) return ns_text.status();
  out.namespace_name = ns_text->value_or("");
  if (out.namespace_name.empty()) out.namespace_name = "default";
  if (!IsDnsLabel(out.namespace_name)) return r.Invalid("metadata.namespace", ns, kDnsLabelRule);
  r.set_object(absl::StrCat(kind, " ", out.namespace_name, "/", out.name));

  absl::StatusOr<std::map<std::string, std::string>> labels =
      StringMap(r, Child(meta, "labels"), "metadata.labels");
  if (!labels.ok()) return labels.status();
  out.labels = *std::move(labels);
  absl::StatusOr<std::map<std::string, std::string>> annotations =
      StringMap(r, Child(meta, "annotations"), "metadata.annotations");
  if (!annotations.ok()) return annotations.status();
  out.annotations = *std::move(annotations);
  return out;
}

}  // namespace sockmesh::sources::fields
