// SPDX-License-Identifier: Apache-2.0
#include "control_plane/model/policy_compiler.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "control_plane/model/identity_allocator.h"

namespace sockmesh::model {
namespace {

// The IPv4-mapped IPv6 block ::ffff:0:0/96. The kernel keys IPv4 sources as mapped IPv6, so an
// IPv6 row covering this block would also match IPv4 sources; IPv6 blocks are cut around it.
IpPrefix MappedV4Block() {
  IpPrefix p;
  p.addr.family = 6;
  p.addr.bytes[10] = 0xFF;
  p.addr.bytes[11] = 0xFF;
  p.len = 96;
  return p;
}

IpPrefix WholeSpace(uint8_t family) {
  IpPrefix p;
  p.addr.family = family;
  return p;
}

bool Overlap(const IpPrefix& a, const IpPrefix& b) { return a.Covers(b) || b.Covers(a); }

// `p` with its first host bit (bit number p.len) set to `bit`, one bit longer.
IpPrefix Half(const IpPrefix& p, bool bit) {
  IpPrefix half = p;
  half.len = static_cast<uint8_t>(p.len + 1);
  if (bit) half.addr.bytes[p.len / 8] |= static_cast<uint8_t>(0x80 >> (p.len % 8));
  return half;
}

std::vector<IpPrefix> Subtract(const IpPrefix& from, const IpPrefix& minus) {
  if (!Overlap(from, minus)) return {from};
  if (minus.Covers(from)) return {};
  // `from` strictly covers `minus`: keep the half that does not hold it, split the other.
  std::vector<IpPrefix> out;
  for (bool bit : {false, true}) {
    std::vector<IpPrefix> part = Subtract(Half(from, bit), minus);
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

// IPv4-mapped IPv6 blocks become IPv4 blocks, and IPv6 blocks lose the mapped range, so every
// address has one family in the rows (see MappedV4Block).
std::vector<IpPrefix> Normalize(const std::vector<IpPrefix>& blocks) {
  const IpPrefix mapped = MappedV4Block();
  std::vector<IpPrefix> out;
  for (const IpPrefix& b : blocks) {
    if (b.addr.is_v6() && mapped.Covers(b)) {
      IpPrefix v4;
      v4.addr.family = 4;
      std::copy(b.addr.bytes.begin() + 12, b.addr.bytes.end(), v4.addr.bytes.begin());
      v4.len = static_cast<uint8_t>(b.len - 96);
      out.push_back(v4);
    } else if (b.addr.is_v6()) {
      std::vector<IpPrefix> cut = Subtract(b, mapped);
      out.insert(out.end(), cut.begin(), cut.end());
    } else {
      out.push_back(b);
    }
  }
  return out;
}

// "cluster.local/ns/<ns>/sa/<sa>" -> "<ns>"; "" for any other form.
std::string_view NamespaceOf(std::string_view principal) {
  constexpr std::string_view kNs = "/ns/";
  const size_t start = principal.find(kNs);
  if (start == std::string_view::npos) return "";
  const size_t from = start + kNs.size();
  const size_t end = principal.find("/sa/", from);
  return end == std::string_view::npos ? "" : principal.substr(from, end - from);
}

bool AnyMatches(const std::vector<std::string>& patterns, std::string_view value) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return MatchesPattern(p, value); });
}

bool IsExact(const std::string& pattern) { return pattern.find('*') == std::string::npos; }

using IdentityTable = std::map<std::string, uint32_t>;  // principal -> number

// The identities a source's principal/namespace fields admit; nullopt = any source.
std::optional<std::set<uint32_t>> SourceIdentities(const PolicySource& s,
                                                   const IdentityTable& table) {
  std::optional<std::set<uint32_t>> ids;
  auto restrict = [&ids](std::set<uint32_t> allowed) {
    if (!ids.has_value()) {
      ids = std::move(allowed);
      return;
    }
    std::erase_if(*ids, [&](uint32_t id) { return !allowed.contains(id); });
  };
  // `positive`: principals/namespaces, which never match the unknown identity 0. Otherwise the
  // not-form: everything the patterns do not match, identity 0 included.
  auto field = [&](const std::vector<std::string>& patterns, bool by_namespace, bool positive) {
    if (patterns.empty()) return;
    std::set<uint32_t> allowed;
    if (!positive) allowed.insert(kIdentityUnknown);
    for (const auto& [principal, id] : table) {
      const std::string_view value = by_namespace ? NamespaceOf(principal) : principal;
      if (AnyMatches(patterns, value) == positive) allowed.insert(id);
    }
    restrict(std::move(allowed));
  };
  field(s.principals, false, true);
  field(s.not_principals, false, false);
  field(s.namespaces, true, true);
  field(s.not_namespaces, true, false);
  return ids;
}

// The source addresses a source admits; nullopt = any address.
std::optional<std::vector<IpPrefix>> SourcePrefixes(const PolicySource& s) {
  if (s.ip_blocks.empty() && s.not_ip_blocks.empty()) return std::nullopt;
  std::vector<IpPrefix> base =
      s.ip_blocks.empty() ? Normalize({WholeSpace(4), WholeSpace(6)}) : Normalize(s.ip_blocks);
  return SubtractPrefixes(std::move(base), Normalize(s.not_ip_blocks));
}

std::vector<uint16_t> RulePorts(const PolicyRule& rule) {
  std::set<uint16_t> ports;
  for (const PolicyOperation& op : rule.to) {
    if (op.ports.empty()) return {kAnyPort};
    ports.insert(op.ports.begin(), op.ports.end());
  }
  if (rule.to.empty()) return {kAnyPort};
  return {ports.begin(), ports.end()};
}

using RowKey = std::tuple<uint32_t, uint16_t, std::optional<IpPrefix>>;

struct RowIds {
  uint32_t deny = 0, allow = 0, audit = 0;
};

void MergeId(uint32_t& into, uint32_t id) {
  if (id != 0 && (into == 0 || id < into)) into = id;
}
void MergeIds(RowIds& into, const RowIds& from) {
  MergeId(into.deny, from.deny);
  MergeId(into.allow, from.allow);
  MergeId(into.audit, from.audit);
}

RowIds IdsFor(PolicyAction action, uint32_t policy_id) {
  RowIds ids;
  (action == PolicyAction::kDeny    ? ids.deny
   : action == PolicyAction::kAllow ? ids.allow
                                    : ids.audit) = policy_id;
  return ids;
}

void AddRuleRows(const PolicyRule& rule, const RowIds& ids, const IdentityTable& table,
                 std::map<RowKey, RowIds>& rows) {
  const std::vector<uint16_t> ports = RulePorts(rule);
  static const PolicySource kAnySource;
  std::vector<const PolicySource*> sources;
  for (const PolicySource& s : rule.from) sources.push_back(&s);
  if (sources.empty()) sources.push_back(&kAnySource);
  for (const PolicySource* s : sources) {
    std::optional<std::set<uint32_t>> identities = SourceIdentities(*s, table);
    if (!identities.has_value()) identities = std::set<uint32_t>{kAnySourceIdentity};
    std::optional<std::vector<IpPrefix>> prefixes = SourcePrefixes(*s);
    std::vector<std::optional<IpPrefix>> keys;
    if (prefixes.has_value()) {
      keys.assign(prefixes->begin(), prefixes->end());
    } else {
      keys.push_back(std::nullopt);
    }
    for (uint32_t id : *identities) {
      for (uint16_t port : ports) {
        for (const std::optional<IpPrefix>& prefix : keys) {
          MergeIds(rows[RowKey{id, port, prefix}], ids);
        }
      }
    }
  }
}

// The LPM lookup returns only the longest prefix of a (source, port), so each row also carries the
// ids of every shorter prefix (and of the prefix-less row) containing it.
void FoldShorterPrefixes(std::map<RowKey, RowIds>& rows) {
  std::map<std::pair<uint32_t, uint16_t>, std::vector<std::map<RowKey, RowIds>::iterator>> groups;
  for (auto it = rows.begin(); it != rows.end(); ++it) {
    groups[{std::get<0>(it->first), std::get<1>(it->first)}].push_back(it);
  }
  for (auto& [key, members] : groups) {
    // Shortest first (nullopt sorts first), so ids flow from short to long in one pass.
    std::sort(members.begin(), members.end(), [](const auto& a, const auto& b) {
      const auto& pa = std::get<2>(a->first);
      const auto& pb = std::get<2>(b->first);
      const int la = pa.has_value() ? pa->len : -1;
      const int lb = pb.has_value() ? pb->len : -1;
      return la < lb;
    });
    for (size_t i = 0; i < members.size(); ++i) {
      const auto& longer = std::get<2>(members[i]->first);
      if (!longer.has_value()) continue;
      for (size_t j = 0; j < i; ++j) {
        const auto& shorter = std::get<2>(members[j]->first);
        if (!shorter.has_value() || shorter->Covers(*longer)) {
          MergeIds(members[i]->second, members[j]->second);
        }
      }
    }
  }
}

bool Selects(const AuthorizationPolicy& p, const Workload& w, std::string_view root_namespace) {
  const bool root = p.namespace_name == root_namespace;
  if (!root && p.namespace_name != w.namespace_name) return false;
  if (!p.selector.has_value()) return true;
  for (const auto& [key, value] : *p.selector) {
    auto it = w.labels.find(key);
    if (it == w.labels.end() || it->second != value) return false;
  }
  return true;
}

// Every principal the table knows plus the exact ones the policies name: a principal without a
// workload still has its number, so its rows are in place when its first workload appears.
IdentityTable ExtendedIdentities(const std::vector<AuthorizationPolicy>& policies,
                                 const WorkloadState& workloads) {
  std::set<std::string> principals;
  for (const auto& [principal, id] : workloads.identities) principals.insert(principal);
  for (const AuthorizationPolicy& p : policies) {
    for (const PolicyRule& r : p.rules) {
      for (const PolicySource& s : r.from) {
        for (const auto* list : {&s.principals, &s.not_principals}) {
          for (const std::string& principal : *list) {
            if (IsExact(principal)) principals.insert(principal);
          }
        }
      }
    }
  }
  return AllocateIdentities(principals, workloads.identities);
}

PolicyResolution Resolve(const AuthorizationPolicy& p, const WorkloadState& workloads,
                         std::vector<WorkloadKey> selected) {
  PolicyResolution out;
  out.selected_workloads = std::move(selected);
  std::set<std::string> known_namespaces;
  for (const auto& [ns, labels] : workloads.namespaces) known_namespaces.insert(ns);
  for (const auto& [key, w] : workloads.workloads) known_namespaces.insert(key.namespace_name);
  std::set<std::string> principals, namespaces;
  for (const PolicyRule& r : p.rules) {
    for (const PolicySource& s : r.from) {
      for (const auto* list : {&s.principals, &s.not_principals}) {
        for (const std::string& v : *list) {
          if (IsExact(v) && !workloads.identities.contains(v)) principals.insert(v);
        }
      }
      for (const auto* list : {&s.namespaces, &s.not_namespaces}) {
        for (const std::string& v : *list) {
          if (IsExact(v) && !known_namespaces.contains(v)) namespaces.insert(v);
        }
      }
    }
  }
  out.unknown_principals.assign(principals.begin(), principals.end());
  out.unknown_namespaces.assign(namespaces.begin(), namespaces.end());
  return out;
}

// Endpoint ids: a workload keeps the one `previous` gave it; new workloads take the lowest free.
std::map<WorkloadKey, uint32_t> EndpointIds(const std::set<WorkloadKey>& selected,
                                            const CompiledPolicy& previous) {
  std::map<WorkloadKey, uint32_t> ids;
  std::set<uint32_t> used;
  for (const PolicyEndpoint& e : previous.endpoints) {
    if (selected.contains(e.workload) && used.insert(e.endpoint_id).second) {
      ids[e.workload] = e.endpoint_id;
    }
  }
  uint32_t next = 1;
  for (const WorkloadKey& key : selected) {
    if (ids.contains(key)) continue;
    while (used.contains(next)) ++next;
    ids[key] = next;
    used.insert(next);
  }
  return ids;
}

PolicySet BuildSet(uint32_t set_id, const std::vector<uint32_t>& policy_ids,
                   const std::vector<const AuthorizationPolicy*>& by_id,
                   const IdentityTable& table) {
  PolicySet set;
  set.policy_set_id = set_id;
  std::map<RowKey, RowIds> rows;
  for (uint32_t id : policy_ids) {
    const AuthorizationPolicy& p = *by_id[id - 1];
    if (p.action == PolicyAction::kAllow) set.has_allow = true;
    const RowIds ids = IdsFor(p.action, id);
    for (const PolicyRule& rule : p.rules) AddRuleRows(rule, ids, table, rows);
  }
  FoldShorterPrefixes(rows);
  for (const auto& [key, ids] : rows) {
    PolicyRow row{.source_identity = std::get<0>(key),
                  .port = std::get<1>(key),
                  .source_prefix = std::get<2>(key),
                  .deny_policy_id = ids.deny,
                  .allow_policy_id = ids.allow,
                  .audit_policy_id = ids.audit};
    if (row.source_prefix.has_value()) set.source_address_dependent = true;
    set.rows.push_back(std::move(row));
  }
  return set;
}

}  // namespace

std::vector<IpPrefix> SubtractPrefixes(std::vector<IpPrefix> from,
                                       const std::vector<IpPrefix>& minus) {
  for (const IpPrefix& m : minus) {
    std::vector<IpPrefix> next;
    for (const IpPrefix& f : from) {
      std::vector<IpPrefix> part = Subtract(f, m);
      next.insert(next.end(), part.begin(), part.end());
    }
    from = std::move(next);
  }
  std::sort(from.begin(), from.end());
  from.erase(std::unique(from.begin(), from.end()), from.end());
  return from;
}

PolicyCompilation CompilePolicies(const std::vector<AuthorizationPolicy>& policies,
                                  const WorkloadState& workloads, const CompiledPolicy& previous,
                                  std::string_view root_namespace) {
  PolicyCompilation out;
  // Ids in (namespace, name) order, so they do not depend on file or event order.
  std::vector<size_t> order(policies.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::tie(policies[a].namespace_name, policies[a].name) <
           std::tie(policies[b].namespace_name, policies[b].name);
  });
  std::vector<const AuthorizationPolicy*> by_id;
  for (size_t i : order) {
    const AuthorizationPolicy& p = policies[i];
    by_id.push_back(&p);
    out.compiled.policies.push_back(PolicyRef{.policy_id = static_cast<uint32_t>(by_id.size()),
                                              .namespace_name = p.namespace_name,
                                              .name = p.name,
                                              .action = p.action});
  }

  // Which policies select each workload, and which workloads each policy selects.
  std::map<WorkloadKey, std::vector<uint32_t>> lists;
  std::vector<std::vector<WorkloadKey>> selected(policies.size());
  for (const auto& [key, w] : workloads.workloads) {
    for (uint32_t id = 1; id <= by_id.size(); ++id) {
      if (!Selects(*by_id[id - 1], w, root_namespace)) continue;
      lists[key].push_back(id);
      selected[order[id - 1]].push_back(key);
    }
  }
  for (size_t i = 0; i < policies.size(); ++i) {
    out.resolutions.push_back(Resolve(policies[i], workloads, std::move(selected[i])));
  }

  // One set per distinct list of policies, numbered in list order.
  std::map<std::vector<uint32_t>, uint32_t> set_ids;
  for (const auto& [key, list] : lists) set_ids.emplace(list, 0);
  const IdentityTable table = ExtendedIdentities(policies, workloads);
  for (auto& [list, set_id] : set_ids) {
    set_id = static_cast<uint32_t>(out.compiled.sets.size() + 1);
    out.compiled.sets.push_back(BuildSet(set_id, list, by_id, table));
  }

  std::set<WorkloadKey> keys;
  for (const auto& [key, list] : lists) keys.insert(key);
  const std::map<WorkloadKey, uint32_t> endpoint_ids = EndpointIds(keys, previous);
  for (const auto& [key, list] : lists) {
    out.compiled.endpoints.push_back(PolicyEndpoint{.endpoint_id = endpoint_ids.at(key),
                                                    .workload = key,
                                                    .ips = workloads.workloads.at(key).ips,
                                                    .policy_set_id = set_ids.at(list)});
  }
  return out;
}

}  // namespace sockmesh::model
