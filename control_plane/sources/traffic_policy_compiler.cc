// SPDX-License-Identifier: Apache-2.0
#include "control_plane/sources/traffic_policy_compiler.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace sockmesh::sources {
namespace {

using model::Backend;
using model::IpAddress;
using model::Labels;
using model::ServiceEntry;

PolicyCondition Condition(std::string type, bool status, std::string reason, std::string message) {
  return PolicyCondition{.type = std::move(type),
                         .status = status,
                         .reason = std::move(reason),
                         .message = std::move(message)};
}

bool Selects(const Labels& selector, const Labels& labels) {
  for (const auto& [key, value] : selector) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  return true;
}

std::map<IpAddress, const Labels*> LabelsByAddress(const model::WorkloadState& workloads) {
  std::map<IpAddress, const Labels*> out;
  for (const auto& [key, w] : workloads.workloads) {
    for (const IpAddress& ip : w.ips) out.emplace(ip, &w.labels);
  }
  return out;
}

// The subset (index into policy.split) of each backend; -1 for a backend in none of them. A
// backend that two subsets select belongs to the first in split order.
std::vector<int> SubsetOf(const TrafficPolicyManifest& policy, const std::vector<Backend>& backends,
                          const std::map<IpAddress, const Labels*>& labels) {
  std::vector<int> out(backends.size(), -1);
  for (size_t b = 0; b < backends.size(); ++b) {
    auto found = labels.find(backends[b].address);
    if (found == labels.end()) continue;
    for (size_t s = 0; s < policy.split.size() && out[b] < 0; ++s) {
      for (const TrafficPolicySubset& subset : policy.subsets) {
        if (subset.name == policy.split[s].subset && Selects(subset.labels, *found->second)) {
          out[b] = static_cast<int>(s);
        }
      }
    }
  }
  return out;
}

// Rewrites the backends' weights for the split. Returns the subsets of the split (with a
// non-zero weight) that selected no backend; when none selected any, the backends stay as they
// were.
std::set<std::string> ApplySplit(const TrafficPolicyManifest& policy,
                                 const std::map<IpAddress, const Labels*>& labels,
                                 ServiceEntry& entry) {
  std::set<std::string> empty;
  if (policy.split.empty()) return empty;
  const std::vector<int> subset_of = SubsetOf(policy, entry.backends, labels);
  std::vector<uint32_t> members(policy.split.size(), 0);
  for (int s : subset_of) {
    if (s >= 0) ++members[static_cast<size_t>(s)];
  }
  std::vector<Backend> kept;
  for (size_t b = 0; b < entry.backends.size(); ++b) {
    if (subset_of[b] < 0) continue;
    const size_t s = static_cast<size_t>(subset_of[b]);
    const uint32_t percent = policy.split[s].weight;
    if (percent == 0) continue;
    Backend be = entry.backends[b];
    be.weight = std::max<uint32_t>(1, (percent * kSplitWeightScale + members[s] / 2) / members[s]);
    kept.push_back(be);
  }
  for (size_t s = 0; s < policy.split.size(); ++s) {
    if (policy.split[s].weight != 0 && members[s] == 0) empty.insert(policy.split[s].subset);
  }
  if (!kept.empty()) entry.backends = std::move(kept);
  return empty;
}

void ApplySettings(const TrafficPolicyManifest& policy, ServiceEntry& entry) {
  if (policy.algorithm.has_value()) entry.algorithm = *policy.algorithm;
  if (policy.max_connections.has_value()) {
    entry.max_connections_per_backend = *policy.max_connections;
  }
  if (policy.outlier.has_value()) entry.outlier = *policy.outlier;
  entry.traffic_policy = policy.Key();
}

}  // namespace

absl::StatusOr<std::vector<TrafficPolicyStatus>> ApplyTrafficPolicies(
    const std::vector<TrafficPolicyManifest>& policies, model::DesiredState& state) {
  std::map<std::string, const TrafficPolicyManifest*> by_key;
  for (const TrafficPolicyManifest& p : policies) {
    auto [it, inserted] = by_key.emplace(p.Key(), &p);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat("TrafficPolicy ", p.Key(),
                                                     " is defined twice: in ", it->second->source,
                                                     " and in ", p.source));
    }
  }
  const std::map<IpAddress, const Labels*> labels = LabelsByAddress(state.workloads);
  std::map<std::pair<std::string, std::string>, std::string> governed;  // Service -> policy key
  std::vector<TrafficPolicyStatus> out;
  for (const auto& [key, policy] : by_key) {
    TrafficPolicyStatus status{
        .namespace_name = policy->namespace_name, .name = policy->name, .source = policy->source};
    const std::pair<std::string, std::string> host{policy->host_namespace, policy->host_service};
    auto [owner, first] = governed.emplace(host, key);
    if (!first) {
      status.conditions.push_back(
          Condition("Accepted", false, "Conflicted",
                    absl::StrCat("Service ", host.first, "/", host.second,
                                 " is already governed by TrafficPolicy ", owner->second)));
      out.push_back(std::move(status));
      continue;
    }
    status.conditions.push_back(Condition("Accepted", true, "Accepted", "in force"));
    size_t entries = 0;
    std::set<std::string> empty_subsets;
    for (auto& [frontend, entry] : state) {
      if (entry.namespace_name != host.first || entry.service_name != host.second) continue;
      ++entries;
      ApplySettings(*policy, entry);
      std::set<std::string> empty = ApplySplit(*policy, labels, entry);
      empty_subsets.insert(empty.begin(), empty.end());
    }
    if (entries == 0) {
      status.conditions.push_back(
          Condition("ResolvedRefs", false, "HostNotFound",
                    absl::StrCat("spec.host ", policy->host, ": no Service ", host.first, "/",
                                 host.second, " with a cluster IP")));
    } else if (!empty_subsets.empty()) {
      std::string names;
      for (const std::string& n : empty_subsets)
        absl::StrAppend(&names, names.empty() ? "" : ", ", n);
      status.conditions.push_back(Condition(
          "ResolvedRefs", false, "SubsetEmpty",
          absl::StrCat("spec.split: subset ", names,
                       " selects no ready backend; the other subsets share its weight (all the "
                       "Service's backends when no subset selects one)")));
    } else {
      status.conditions.push_back(Condition(
          "ResolvedRefs", true, "ResolvedRefs",
          absl::StrCat("Service ", host.first, "/", host.second, ": ", entries, " frontends")));
    }
    out.push_back(std::move(status));
  }
  return out;
}

}  // namespace sockmesh::sources
