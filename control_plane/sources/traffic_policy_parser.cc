// SPDX-License-Identifier: Apache-2.0
#include "control_plane/sources/traffic_policy_parser.h"

#include <initializer_list>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace sockmesh::sources {
namespace {

using fields::Absent;
using fields::Child;
using fields::ExpectList;
using fields::ExpectMap;
using fields::Field;
using fields::Index;
using fields::IsDnsLabel;
using fields::IsScalar;
using fields::OptInt;
using fields::OptString;
using fields::Reporter;
using fields::ReqInt;
using fields::ReqString;
using fields::StringMap;

constexpr uint32_t kDefaultBaseEjectionMs = 30000;
constexpr uint32_t kDefaultMaxEjectionPercent = 10;

// Refuses a key that is not in `known`; `unsupported` names keys that exist in Istio's
// DestinationRule but need what sockmesh does not have, with the reason.
absl::Status CheckKeys(
    const Reporter& r, const YAML::Node& map, absl::string_view path,
    std::initializer_list<absl::string_view> known,
    std::initializer_list<std::pair<absl::string_view, absl::string_view>> unsupported = {}) {
  for (const auto& kv : map) {
    const std::string key = kv.first.Scalar();
    bool ok = false;
    for (absl::string_view k : known) ok |= (k == key);
    if (ok) continue;
    for (const auto& [k, why] : unsupported) {
      if (k == key) return r.Error(Field(path, key), absl::StrCat("not supported: ", why));
    }
    return r.Error(Field(path, key),
                   absl::StrCat("unknown field; ", path, " takes ", absl::StrJoin(known, ", ")));
  }
  return absl::OkStatus();
}

// Optional map: absent is fine, anything else must be a map of known keys.
absl::StatusOr<bool> OptMap(const Reporter& r, const YAML::Node& node, absl::string_view path) {
  if (Absent(node)) return false;
  if (absl::Status s = ExpectMap(r, node, path); !s.ok()) return s;
  return true;
}

// spec.host: a Service of this namespace ("web") or of any ("web.shop",
// "web.shop.svc.cluster.local").
absl::Status ParseHost(const Reporter& r, const YAML::Node& spec, TrafficPolicyManifest& out) {
  const YAML::Node node = Child(spec, "host");
  absl::StatusOr<std::string> host = ReqString(r, node, "spec.host");
  if (!host.ok()) return host.status();
  std::vector<std::string> parts = absl::StrSplit(*host, '.');
  const bool suffix_ok =
      parts.size() <= 2 || (parts.size() == 3 && parts[2] == "svc") ||
      (parts.size() == 5 && parts[2] == "svc" && parts[3] == "cluster" && parts[4] == "local");
  if (!suffix_ok || !fields::IsServiceName(parts[0]) ||
      (parts.size() > 1 && !IsDnsLabel(parts[1]))) {
    return r.Invalid("spec.host", node,
                     "must name a Service: <name>, <name>.<namespace> or "
                     "<name>.<namespace>.svc.cluster.local");
  }
  out.host = *host;
  out.host_service = parts[0];
  out.host_namespace = parts.size() > 1 ? parts[1] : out.namespace_name;
  return absl::OkStatus();
}

// loadBalancer.simple, or loadBalancer.consistentHash with useSourceIp.
absl::Status ParseLoadBalancer(const Reporter& r, const YAML::Node& lb, absl::string_view path,
                               TrafficPolicyManifest& out) {
  absl::StatusOr<bool> present = OptMap(r, lb, path);
  if (!present.ok() || !*present) return present.status();
  if (absl::Status s = CheckKeys(r, lb, path, {"simple", "consistentHash"},
                                 {{"localityLbSetting", "sockmesh has no locality information"},
                                  {"warmupDurationSecs", "slow start needs a request balancer"}});
      !s.ok()) {
    return s;
  }
  const YAML::Node simple = Child(lb, "simple");
  const YAML::Node hash = Child(lb, "consistentHash");
  if (!Absent(simple) && !Absent(hash)) {
    return r.Error(path, "set either simple or consistentHash, not both");
  }
  if (!Absent(simple)) {
    const std::string p = Field(path, "simple");
    absl::StatusOr<std::string> text = ReqString(r, simple, p);
    if (!text.ok()) return text.status();
    // ROUND_ROBIN: each node's connect hook draws at random (there is no cursor shared by every
    // socket of a node), which gives every backend the same expected share.
    if (*text == "RANDOM" || *text == "ROUND_ROBIN" || *text == "UNSPECIFIED") {
      out.algorithm = model::LbAlgorithm::kRandom;
    } else if (*text == "LEAST_CONN" || *text == "LEAST_REQUEST") {
      // A connection is the unit of work at L4: fewest live connections is the closest analogue
      // of Envoy's fewest outstanding requests.
      out.algorithm = model::LbAlgorithm::kLeastConnections;
    } else if (*text == "PASSTHROUGH") {
      return r.Invalid(p, simple,
                       "PASSTHROUGH is not supported: the socket load balancer always "
                       "chooses a backend");
    } else {
      return r.Invalid(p, simple, "must be RANDOM, ROUND_ROBIN, LEAST_CONN or LEAST_REQUEST");
    }
    return absl::OkStatus();
  }
  const std::string p = Field(path, "consistentHash");
  if (absl::Status s = ExpectMap(r, hash, p); !s.ok()) return s;
  constexpr absl::string_view kL7 = "needs the request (L7); sockmesh hashes at connect()";
  if (absl::Status s = CheckKeys(r, hash, p, {"useSourceIp"},
                                 {{"httpHeaderName", kL7},
                                  {"httpCookie", kL7},
                                  {"httpQueryParameterName", kL7},
                                  {"ringHash", "sockmesh's consistent hash is Maglev"},
                                  {"maglev", "the Maglev table size is the agent's setting"},
                                  {"minimumRingSize", "sockmesh's consistent hash is Maglev"}});
      !s.ok()) {
    return s;
  }
  const YAML::Node use = Child(hash, "useSourceIp");
  if (!IsScalar(use) || use.Scalar() != "true") {
    return r.Invalid(Field(p, "useSourceIp"), use, "must be true (the only key sockmesh hashes)");
  }
  out.algorithm = model::LbAlgorithm::kMaglev;
  return absl::OkStatus();
}

absl::Status ParseConnectionPool(const Reporter& r, const YAML::Node& pool, absl::string_view path,
                                 TrafficPolicyManifest& out) {
  absl::StatusOr<bool> present = OptMap(r, pool, path);
  if (!present.ok() || !*present) return present.status();
  if (absl::Status s = CheckKeys(r, pool, path, {"tcp"},
                                 {{"http", "HTTP pool limits need a request proxy (L7)"}});
      !s.ok()) {
    return s;
  }
  const YAML::Node tcp = Child(pool, "tcp");
  const std::string p = Field(path, "tcp");
  absl::StatusOr<bool> has_tcp = OptMap(r, tcp, p);
  if (!has_tcp.ok() || !*has_tcp) return has_tcp.status();
  if (absl::Status s =
          CheckKeys(r, tcp, p, {"maxConnections"},
                    {{"connectTimeout", "the application's connect() timeout applies"},
                     {"tcpKeepalive", "keepalive is the application's socket option"},
                     {"maxConnectionDuration", "sockmesh does not end established connections"},
                     {"idleTimeout", "sockmesh does not end established connections"}});
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::optional<uint32_t>> max =
      OptInt(r, Child(tcp, "maxConnections"), Field(p, "maxConnections"), 1,
             model::kMaxConnectionsPerBackend);
  if (!max.ok()) return max.status();
  out.max_connections = *max;
  return absl::OkStatus();
}

absl::Status ParseOutlierDetection(const Reporter& r, const YAML::Node& od, absl::string_view path,
                                   TrafficPolicyManifest& out) {
  absl::StatusOr<bool> present = OptMap(r, od, path);
  if (!present.ok() || !*present) return present.status();
  constexpr absl::string_view kUseConnect =
      "sockmesh sees connects, not responses; use consecutiveConnectFailures";
  if (absl::Status s = CheckKeys(
          r, od, path, {"consecutiveConnectFailures", "baseEjectionTime", "maxEjectionPercent"},
          {{"consecutiveGatewayErrors", kUseConnect},
           {"consecutive5xxErrors", kUseConnect},
           {"consecutiveLocalOriginFailures", kUseConnect},
           {"splitExternalLocalOriginErrors", kUseConnect},
           {"interval", "sockmesh ejects at the failing connect, without a sweep"},
           {"minHealthPercent", "use maxEjectionPercent"}});
      !s.ok()) {
    return s;
  }
  model::OutlierDetection d{.base_ejection_ms = kDefaultBaseEjectionMs,
                            .max_ejection_percent = kDefaultMaxEjectionPercent};
  absl::StatusOr<uint32_t> n =
      ReqInt(r, Child(od, "consecutiveConnectFailures"), Field(path, "consecutiveConnectFailures"),
             1, model::kMaxConsecutiveConnectFailures);
  if (!n.ok()) return n.status();
  d.consecutive_connect_failures = *n;
  const std::string base_path = Field(path, "baseEjectionTime");
  const YAML::Node base = Child(od, "baseEjectionTime");
  absl::StatusOr<std::optional<std::string>> base_text = OptString(r, base, base_path);
  if (!base_text.ok()) return base_text.status();
  if (base_text->has_value()) {
    std::optional<uint64_t> ms = ParseDurationMs(**base_text);
    if (!ms.has_value() || *ms > model::kMaxBaseEjectionMs) {
      return r.Invalid(base_path, base, "must be a duration from 1ms to 1h, such as 30s or 500ms");
    }
    d.base_ejection_ms = static_cast<uint32_t>(*ms);
  }
  absl::StatusOr<std::optional<uint32_t>> pct =
      OptInt(r, Child(od, "maxEjectionPercent"), Field(path, "maxEjectionPercent"), 0, 100);
  if (!pct.ok()) return pct.status();
  if (pct->has_value()) d.max_ejection_percent = **pct;
  out.outlier = d;
  return absl::OkStatus();
}

absl::Status ParsePolicyBlock(const Reporter& r, const YAML::Node& tp, TrafficPolicyManifest& out) {
  constexpr absl::string_view kPath = "spec.trafficPolicy";
  absl::StatusOr<bool> present = OptMap(r, tp, kPath);
  if (!present.ok() || !*present) return present.status();
  if (absl::Status s =
          CheckKeys(r, tp, kPath, {"loadBalancer", "connectionPool", "outlierDetection"},
                    {{"tls", "sockmesh does not terminate TLS"},
                     {"portLevelSettings", "a TrafficPolicy applies to every port"},
                     {"tunnel", "sockmesh does not tunnel"},
                     {"proxyProtocol", "sockmesh adds no proxy header"}});
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          ParseLoadBalancer(r, Child(tp, "loadBalancer"), Field(kPath, "loadBalancer"), out);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          ParseConnectionPool(r, Child(tp, "connectionPool"), Field(kPath, "connectionPool"), out);
      !s.ok()) {
    return s;
  }
  return ParseOutlierDetection(r, Child(tp, "outlierDetection"), Field(kPath, "outlierDetection"),
                               out);
}

absl::Status ParseSubsets(const Reporter& r, const YAML::Node& list, TrafficPolicyManifest& out) {
  if (Absent(list)) return absl::OkStatus();
  if (absl::Status s = ExpectList(r, list, "spec.subsets"); !s.ok()) return s;
  std::set<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string path = Index("spec.subsets", i);
    const YAML::Node item = list[i];
    if (absl::Status s = ExpectMap(r, item, path); !s.ok()) return s;
    if (absl::Status s = CheckKeys(r, item, path, {"name", "labels"},
                                   {{"trafficPolicy",
                                     "a subset has no policy of its own; write "
                                     "another TrafficPolicy"}});
        !s.ok()) {
      return s;
    }
    TrafficPolicySubset subset;
    const YAML::Node name = Child(item, "name");
    absl::StatusOr<std::string> text = ReqString(r, name, Field(path, "name"));
    if (!text.ok()) return text.status();
    if (!IsDnsLabel(*text)) return r.Invalid(Field(path, "name"), name, fields::kDnsLabelRule);
    if (!names.insert(*text).second) {
      return r.Invalid(Field(path, "name"), name, "another subset has this name");
    }
    subset.name = *text;
    absl::StatusOr<std::map<std::string, std::string>> labels =
        StringMap(r, Child(item, "labels"), Field(path, "labels"));
    if (!labels.ok()) return labels.status();
    if (labels->empty()) return r.Missing(Field(path, "labels"), "a subset selects by labels");
    subset.labels = *std::move(labels);
    out.subsets.push_back(std::move(subset));
  }
  return absl::OkStatus();
}

absl::Status ParseSplit(const Reporter& r, const YAML::Node& list, TrafficPolicyManifest& out) {
  if (Absent(list)) return absl::OkStatus();
  if (absl::Status s = ExpectList(r, list, "spec.split"); !s.ok()) return s;
  if (list.size() == 0) return r.Invalid("spec.split", list, "must name at least one subset");
  uint32_t total = 0;
  std::set<std::string> seen;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string path = Index("spec.split", i);
    const YAML::Node item = list[i];
    if (absl::Status s = ExpectMap(r, item, path); !s.ok()) return s;
    if (absl::Status s = CheckKeys(r, item, path, {"subset", "weight"}); !s.ok()) return s;
    TrafficPolicySplit split;
    const YAML::Node subset = Child(item, "subset");
    absl::StatusOr<std::string> name = ReqString(r, subset, Field(path, "subset"));
    if (!name.ok()) return name.status();
    bool defined = false;
    for (const TrafficPolicySubset& s : out.subsets) defined |= (s.name == *name);
    if (!defined) {
      return r.Invalid(Field(path, "subset"), subset, "must name one of spec.subsets");
    }
    if (!seen.insert(*name).second) {
      return r.Invalid(Field(path, "subset"), subset, "this subset is already in the split");
    }
    split.subset = *name;
    absl::StatusOr<uint32_t> weight =
        ReqInt(r, Child(item, "weight"), Field(path, "weight"), 0, 100);
    if (!weight.ok()) return weight.status();
    split.weight = *weight;
    total += *weight;
    out.split.push_back(std::move(split));
  }
  if (total != 100) {
    return r.Error("spec.split", absl::StrCat("weights sum to ", total, ": they must sum to 100"));
  }
  return absl::OkStatus();
}

}  // namespace

std::optional<uint64_t> ParseDurationMs(absl::string_view text) {
  struct Unit {
    absl::string_view suffix;
    uint64_t ms;
  };
  // "ms" before "s" and "m", which are its suffix and prefix.
  constexpr Unit kUnits[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
  for (const Unit& unit : kUnits) {
    if (!absl::EndsWith(text, unit.suffix)) continue;
    absl::string_view number = text.substr(0, text.size() - unit.suffix.size());
    std::vector<absl::string_view> parts = absl::StrSplit(number, '.');
    if (parts.size() > 2 || parts[0].empty() || parts[0].size() > 7) return std::nullopt;
    uint64_t whole = 0;
    for (char c : parts[0]) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
      whole = whole * 10 + static_cast<uint64_t>(c - '0');
    }
    uint64_t ms = whole * unit.ms;
    if (parts.size() == 2) {
      if (parts[1].empty() || parts[1].size() > 3) return std::nullopt;
      uint64_t frac = 0;
      uint64_t scale = 1;
      for (char c : parts[1]) {
        if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
        frac = frac * 10 + static_cast<uint64_t>(c - '0');
        scale *= 10;
      }
      ms += frac * unit.ms / scale;
    }
    return ms >= 1 ? std::optional<uint64_t>(ms) : std::nullopt;
  }
  return std::nullopt;
}

absl::StatusOr<TrafficPolicyManifest> ParseTrafficPolicy(Reporter& r, const YAML::Node& object,
                                                         absl::string_view file) {
  absl::StatusOr<fields::Metadata> meta =
      fields::ParseMetadata(r, object, fields::ToAbsl(kTrafficPolicyKind), fields::IsDnsSubdomain,
                            fields::kSubdomainRule);
  if (!meta.ok()) return meta.status();
  TrafficPolicyManifest out;
  out.source = std::string(file);
  out.namespace_name = meta->namespace_name;
  out.name = meta->name;
  const YAML::Node spec = Child(object, "spec");
  if (Absent(spec)) return r.Missing("spec");
  if (absl::Status s = ExpectMap(r, spec, "spec"); !s.ok()) return s;
  if (absl::Status s = CheckKeys(r, spec, "spec", {"host", "trafficPolicy", "subsets", "split"},
                                 {{"exportTo", "TrafficPolicies apply in every namespace"},
                                  {"workloadSelector", "a TrafficPolicy applies to every client"}});
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ParseHost(r, spec, out); !s.ok()) return s;
  if (absl::Status s = ParsePolicyBlock(r, Child(spec, "trafficPolicy"), out); !s.ok()) return s;
  if (absl::Status s = ParseSubsets(r, Child(spec, "subsets"), out); !s.ok()) return s;
  if (absl::Status s = ParseSplit(r, Child(spec, "split"), out); !s.ok()) return s;
  return out;
}

}  // namespace sockmesh::sources
