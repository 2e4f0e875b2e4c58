// SPDX-License-Identifier: Apache-2.0
#include "control_plane/sources/authorization_policy_parser.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace sockmesh::sources {
namespace {

using model::IpPrefix;
using model::PolicyAction;

absl::string_view ToAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

constexpr size_t kMaxShownValueChars = 80;
constexpr std::string_view kL7Detail = "L7 field not supported (sockmesh enforces L4 only)";

bool Absent(const YAML::Node& n) { return !n.IsDefined() || n.IsNull(); }
bool IsMap(const YAML::Node& n) { return n.IsDefined() && n.IsMap(); }
bool IsList(const YAML::Node& n) { return n.IsDefined() && n.IsSequence(); }
bool IsScalar(const YAML::Node& n) { return n.IsDefined() && n.IsScalar(); }

YAML::Node Child(const YAML::Node& map, const std::string& key) {
  if (!IsMap(map)) return YAML::Node(YAML::NodeType::Undefined);
  return map[key];
}

// Scalars quoted, maps and lists in flow style, long values cut.
std::string Show(const YAML::Node& node) {
  std::string text;
  if (Absent(node)) {
    text = "null";
  } else if (IsScalar(node)) {
    text = absl::StrCat("\"", node.Scalar(), "\"");
  } else {
    YAML::Emitter out;
    out.SetMapFormat(YAML::Flow);
    out.SetSeqFormat(YAML::Flow);
    out << node;
    text = out.c_str();
  }
  if (text.size() > kMaxShownValueChars) text = text.substr(0, kMaxShownValueChars) + "...";
  return text;
}

// The first problem of a spec: which reason, and the message with the field path and value.
struct Refusal {
  std::string reason;
  std::string message;
};

Refusal Invalid(absl::string_view path, const YAML::Node& value, absl::string_view expected) {
  return {std::string(kReasonInvalid),
          absl::StrCat(path, ": invalid value ", Show(value), ": ", expected)};
}
Refusal Unsupported(absl::string_view path, const YAML::Node& value, absl::string_view detail) {
  return {std::string(kReasonUnsupportedField),
          absl::StrCat(path, ": ", detail, ": ", Show(value))};
}

// Fields of each object: those sockmesh reads, and those Istio has that sockmesh refuses with a
// reason. Anything else is a typo and Invalid, so a misspelt `principal:` never widens a rule.
struct FieldRules {
  std::set<std::string> supported;
  std::vector<std::pair<std::string, std::string>> refused;  // field -> detail
};

std::optional<Refusal> CheckFields(const YAML::Node& map, absl::string_view path,
                                   const FieldRules& rules) {
  if (!IsMap(map)) return Invalid(path, map, "must be a map");
  std::set<std::string> seen;
  for (const auto& kv : map) {
    if (!IsScalar(kv.first)) return Invalid(path, kv.first, "map keys must be strings");
    const std::string& key = kv.first.Scalar();
    const std::string field = path.empty() ? key : absl::StrCat(path, ".", key);
    if (!seen.insert(key).second) {
      return Refusal{std::string(kReasonInvalid),
                     absl::StrCat(field, ": duplicate key: a field may be set only once")};
    }
    for (const auto& [name, detail] : rules.refused) {
      if (key == name) return Unsupported(field, kv.second, detail);
    }
    if (!rules.supported.contains(key)) {
      return Invalid(
          field, kv.second,
          absl::StrCat("unknown field (one of: ", absl::StrJoin(rules.supported, ", "), ")"));
    }
  }
  return std::nullopt;
}

std::string Index(absl::string_view path, size_t i) { return absl::StrCat(path, "[", i, "]"); }

// A list of non-empty strings; absent = empty.
std::optional<Refusal> StringList(const YAML::Node& node, absl::string_view path,
                                  std::vector<std::string>& out) {
  if (Absent(node)) return std::nullopt;
  if (!IsList(node)) return Invalid(path, node, "must be a list of strings");
  for (size_t i = 0; i < node.size(); ++i) {
    if (!IsScalar(node[i]) || node[i].Scalar().empty()) {
      return Invalid(Index(path, i), node[i], "must be a non-empty string");
    }
    out.push_back(node[i].Scalar());
  }
  return std::nullopt;
}

// Istio's forms: "*", "prefix*", "*suffix" or exact; a '*' anywhere else matches nothing in Istio
// and is surely a mistake.
std::optional<Refusal> Patterns(const YAML::Node& node, absl::string_view path,
                                std::vector<std::string>& out) {
  if (std::optional<Refusal> r = StringList(node, path, out); r.has_value()) return r;
  for (size_t i = 0; i < out.size(); ++i) {
    const std::string& p = out[i];
    const size_t stars = std::count(p.begin(), p.end(), '*');
    const bool ok = stars == 0 || p == "*" || (stars == 1 && (p.front() == '*' || p.back() == '*'));
    if (!ok) {
      return Invalid(Index(path, i), node[i],
                     "'*' may only be the whole value, its first or its last character");
    }
  }
  return std::nullopt;
}

std::optional<IpPrefix> ParseBlock(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, absl::MaxSplits('/', 1));
  absl::StatusOr<model::IpAddress> ip =
      model::IpAddress::Parse(std::string_view(parts[0].data(), parts[0].size()));
  if (!ip.ok()) return std::nullopt;
  const uint32_t max = ip->is_v4() ? 32 : 128;
  uint32_t len = max;
  if (parts.size() == 2 && (!absl::SimpleAtoi(parts[1], &len) || len > max || parts[1].empty() ||
                            !absl::ascii_isdigit(parts[1][0]))) {
    return std::nullopt;
  }
  IpPrefix prefix{.addr = *ip, .len = static_cast<uint8_t>(len)};
  // Host bits are cleared, as Envoy's CidrRange does: 10.0.0.1/8 means 10.0.0.0/8.
  for (uint32_t bit = len; bit < max; ++bit) {
    prefix.addr.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  return prefix;
}

std::optional<Refusal> Blocks(const YAML::Node& node, absl::string_view path,
                              std::vector<IpPrefix>& out) {
  std::vector<std::string> texts;
  if (std::optional<Refusal> r = StringList(node, path, texts); r.has_value()) return r;
  for (size_t i = 0; i < texts.size(); ++i) {
    std::optional<IpPrefix> block = ParseBlock(texts[i]);
    if (!block.has_value()) {
      return Invalid(Index(path, i), node[i], "must be an IPv4 or IPv6 address or CIDR block");
    }
    out.push_back(*block);
  }
  return std::nullopt;
}

std::optional<Refusal> ParseSource(const YAML::Node& node, absl::string_view path,
                                   model::PolicySource& out) {
  static const FieldRules kRules{.supported = {"principals", "notPrincipals", "namespaces",
                                               "notNamespaces", "ipBlocks", "notIpBlocks"},
                                 .refused = {{"requestPrincipals", std::string(kL7Detail)},
                                             {"notRequestPrincipals", std::string(kL7Detail)},
                                             {"remoteIpBlocks", std::string(kL7Detail)},
                                             {"notRemoteIpBlocks", std::string(kL7Detail)}}};
  if (auto r = CheckFields(node, path, kRules)) return r;
  auto field = [&](const char* key) { return absl::StrCat(path, ".", key); };
  if (auto r = Patterns(Child(node, "principals"), field("principals"), out.principals)) return r;
  if (auto r = Patterns(Child(node, "notPrincipals"), field("notPrincipals"), out.not_principals)) {
    return r;
  }
  if (auto r = Patterns(Child(node, "namespaces"), field("namespaces"), out.namespaces)) return r;
  if (auto r = Patterns(Child(node, "notNamespaces"), field("notNamespaces"), out.not_namespaces)) {
    return r;
  }
  if (auto r = Blocks(Child(node, "ipBlocks"), field("ipBlocks"), out.ip_blocks)) return r;
  if (auto r = Blocks(Child(node, "notIpBlocks"), field("notIpBlocks"), out.not_ip_blocks)) {
    return r;
  }
  return std::nullopt;
}

std::optional<Refusal> ParseOperation(const YAML::Node& node, absl::string_view path,
                                      model::PolicyOperation& out) {
  static const FieldRules kRules{
      .supported = {"ports"},
      .refused = {{"hosts", std::string(kL7Detail)},
                  {"notHosts", std::string(kL7Detail)},
                  {"methods", std::string(kL7Detail)},
                  {"notMethods", std::string(kL7Detail)},
                  {"paths", std::string(kL7Detail)},
                  {"notPaths", std::string(kL7Detail)},
                  {"notPorts", "not supported: list the ports to match in ports instead"}}};
  if (auto r = CheckFields(node, path, kRules)) return r;
  const YAML::Node ports = Child(node, "ports");
  const std::string ports_path = absl::StrCat(path, ".ports");
  if (Absent(ports)) return std::nullopt;
  if (!IsList(ports)) return Invalid(ports_path, ports, "must be a list of ports");
  for (size_t i = 0; i < ports.size(); ++i) {
    uint32_t port = 0;
    const bool ok = IsScalar(ports[i]) && !ports[i].Scalar().empty() &&
                    absl::ascii_isdigit(ports[i].Scalar()[0]) &&
                    absl::SimpleAtoi(ports[i].Scalar(), &port) && port >= 1 && port <= 65535;
    if (!ok) return Invalid(Index(ports_path, i), ports[i], "must be a port number 1-65535");
    out.ports.push_back(static_cast<uint16_t>(port));
  }
  return std::nullopt;
}

// Reads the list at `key` of `node` (absent = empty), each entry through `parse_entry`.
template <typename T, typename Fn>
std::optional<Refusal> EachEntry(const YAML::Node& node, const char* key, absl::string_view path,
                                 std::vector<T>& out, Fn parse_entry) {
  const YAML::Node list = Child(node, key);
  const std::string list_path = absl::StrCat(path, ".", key);
  if (Absent(list)) return std::nullopt;
  if (!IsList(list)) return Invalid(list_path, list, "must be a list");
  for (size_t i = 0; i < list.size(); ++i) {
    out.emplace_back();
    if (auto r = parse_entry(list[i], Index(list_path, i), out.back())) return r;
  }
  return std::nullopt;
}

std::optional<Refusal> ParseRule(const YAML::Node& node, absl::string_view path,
                                 model::PolicyRule& out) {
  static const FieldRules kRules{
      .supported = {"from", "to"},
      .refused = {{"when", "L7 conditions not supported (sockmesh enforces L4 only)"}}};
  if (auto r = CheckFields(node, path, kRules)) return r;
  static const FieldRules kFromRules{.supported = {"source"}, .refused = {}};
  static const FieldRules kToRules{.supported = {"operation"}, .refused = {}};
  auto from = [](const YAML::Node& n, const std::string& p, model::PolicySource& s) {
    if (auto r = CheckFields(n, p, kFromRules)) return r;
    if (Absent(Child(n, "source"))) return std::optional<Refusal>();  // any source
    return ParseSource(Child(n, "source"), absl::StrCat(p, ".source"), s);
  };
  auto to = [](const YAML::Node& n, const std::string& p, model::PolicyOperation& op) {
    if (auto r = CheckFields(n, p, kToRules)) return r;
    if (Absent(Child(n, "operation"))) return std::optional<Refusal>();  // any port
    return ParseOperation(Child(n, "operation"), absl::StrCat(p, ".operation"), op);
  };
  if (auto r = EachEntry(node, "from", path, out.from, from)) return r;
  return EachEntry(node, "to", path, out.to, to);
}

std::optional<Refusal> ParseAction(const YAML::Node& node, PolicyAction& out) {
  if (Absent(node)) return std::nullopt;
  const std::string text = IsScalar(node) ? node.Scalar() : "";
  if (text == "ALLOW") {
    out = PolicyAction::kAllow;
  } else if (text == "DENY") {
    out = PolicyAction::kDeny;
  } else if (text == "AUDIT") {
    out = PolicyAction::kAudit;
  } else if (text == "CUSTOM") {
    return Unsupported("spec.action", node,
                       "CUSTOM (external authorization) not supported: must be ALLOW, DENY or "
                       "AUDIT");
  } else {
    return Invalid("spec.action", node, "must be ALLOW, DENY or AUDIT");
  }
  return std::nullopt;
}

std::optional<Refusal> ParseSelector(const YAML::Node& node, std::optional<model::Labels>& out) {
  if (Absent(node)) return std::nullopt;
  static const FieldRules kRules{.supported = {"matchLabels"}, .refused = {}};
  if (auto r = CheckFields(node, "spec.selector", kRules)) return r;
  model::Labels labels;
  const YAML::Node match = Child(node, "matchLabels");
  if (!Absent(match)) {
    if (!IsMap(match)) return Invalid("spec.selector.matchLabels", match, "must be a map");
    for (const auto& kv : match) {
      const std::string key = IsScalar(kv.first) ? kv.first.Scalar() : "";
      const std::string path = absl::StrCat("spec.selector.matchLabels[", key, "]");
      if (key.empty())
        return Invalid("spec.selector.matchLabels", kv.first, "keys must be strings");
      if (!IsScalar(kv.second)) return Invalid(path, kv.second, "must be a string");
      if (!labels.emplace(key, kv.second.Scalar()).second) {
        return Refusal{std::string(kReasonInvalid),
                       absl::StrCat(path, ": duplicate key: a field may be set only once")};
      }
    }
  }
  out = std::move(labels);
  return std::nullopt;
}

std::optional<Refusal> ParseSpec(const YAML::Node& spec, model::AuthorizationPolicy& out) {
  if (Absent(spec)) return std::nullopt;  // no spec at all is `spec: {}`
  static const FieldRules kRules{
      .supported = {"selector", "action", "rules"},
      .refused = {{"provider", "CUSTOM providers not supported"},
                  {"targetRef", "not supported: select workloads with spec.selector"},
                  {"targetRefs", "not supported: select workloads with spec.selector"}}};
  if (auto r = CheckFields(spec, "spec", kRules)) return r;
  if (auto r = ParseAction(Child(spec, "action"), out.action)) return r;
  if (auto r = ParseSelector(Child(spec, "selector"), out.selector)) return r;
  const YAML::Node rules = Child(spec, "rules");
  if (Absent(rules)) return std::nullopt;
  if (!IsList(rules)) return Invalid("spec.rules", rules, "must be a list");
  for (size_t i = 0; i < rules.size(); ++i) {
    out.rules.emplace_back();
    // An empty rule ({} or null) matches every connection, as in Istio.
    if (Absent(rules[i])) continue;
    if (auto r = ParseRule(rules[i], Index("spec.rules", i), out.rules.back())) return r;
  }
  return std::nullopt;
}

bool IsDnsLabel(absl::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  auto alnum = [](char c) { return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'z'); };
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return alnum(c) || c == '-'; });
}

bool IsDnsSubdomain(absl::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (absl::string_view label : absl::StrSplit(s, '.')) {
    if (!IsDnsLabel(label)) return false;
  }
  return true;
}

}  // namespace

std::string AuthorizationPolicyManifest::Describe() const {
  return absl::StrCat(ToAbsl(kAuthorizationPolicyKind), " ", namespace_name, "/", name);
}

absl::StatusOr<AuthorizationPolicyManifest> ParseAuthorizationPolicy(
    const YAML::Node& object, std::string_view file, std::string_view object_label) {
  std::string label(object_label);
  auto error = [&](absl::string_view path, absl::string_view detail) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(file), ": ", label, ": ", path, ": ", detail));
  };
  const YAML::Node meta = Child(object, "metadata");
  if (!IsMap(meta))
    return error("metadata", absl::StrCat("invalid value ", Show(meta), ": must be a map"));
  const YAML::Node name = Child(meta, "name");
  if (!IsScalar(name) || name.Scalar().empty()) {
    return error("metadata.name", "required value missing");
  }
  if (!IsDnsSubdomain(name.Scalar())) {
    return error("metadata.name",
                 absl::StrCat("invalid value ", Show(name),
                              ": must be a DNS subdomain (lower-case letters, digits, '-', '.')"));
  }
  AuthorizationPolicyManifest out;
  out.source = std::string(file);
  out.name = name.Scalar();
  label = absl::StrCat(ToAbsl(kAuthorizationPolicyKind), " ", out.name);
  const YAML::Node ns = Child(meta, "namespace");
  out.namespace_name = IsScalar(ns) && !ns.Scalar().empty() ? ns.Scalar() : "default";
  if (!Absent(ns) && (!IsScalar(ns) || !IsDnsLabel(out.namespace_name))) {
    return error("metadata.namespace",
                 absl::StrCat("invalid value ", Show(ns),
                              ": must be a DNS label (lower-case letters, digits, '-')"));
  }
  const YAML::Node generation = Child(meta, "generation");
  if (IsScalar(generation)) absl::SimpleAtoi(generation.Scalar(), &out.generation);

  model::AuthorizationPolicy policy;
  policy.namespace_name = out.namespace_name;
  policy.name = out.name;
  std::optional<Refusal> refusal = ParseSpec(Child(object, "spec"), policy);
  out.action = policy.action;
  if (refusal.has_value()) {
    out.reject_reason = std::move(refusal->reason);
    out.reject_message = std::move(refusal->message);
  } else {
    out.policy = std::move(policy);
  }
  return out;
}

}  // namespace sockmesh::sources
