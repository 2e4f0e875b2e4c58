// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/abi_conversion.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "userspace/lb/maglev.h"
#include "userspace/lb/weighted_table.h"

namespace sockmesh::agent {
namespace {

uint8_t ToAbiFamily(const model::IpAddress& ip) { return ip.is_v4() ? SM_FAMILY_V4 : SM_FAMILY_V6; }

void CopyAddress(const model::IpAddress& ip, __be32 out[4]) {
  std::memset(out, 0, 16);
  std::memcpy(out, ip.bytes.data(), ip.is_v4() ? 4 : 16);
}

absl::StatusOr<model::IpAddress> AddressFromAbi(const __be32 addr[4], uint8_t family) {
  if (family != SM_FAMILY_V4 && family != SM_FAMILY_V6) {
    return absl::DataLossError(absl::StrCat("kernel entry has unknown address family ", family));
  }
  model::IpAddress ip;
  ip.family = family;
  std::memcpy(ip.bytes.data(), addr, family == SM_FAMILY_V4 ? 4 : 16);
  return ip;
}

}  // namespace

sm_svc_key ToSvcKey(const model::Frontend& frontend) {
  sm_svc_key key{};
  CopyAddress(frontend.vip, key.addr);
  key.port = htons(frontend.port);
  key.proto = frontend.protocol == model::Protocol::kTcp ? IPPROTO_TCP : IPPROTO_UDP;
  key.family = ToAbiFamily(frontend.vip);
  return key;
}

absl::StatusOr<model::Frontend> FromSvcKey(const sm_svc_key& key) {
  absl::StatusOr<model::IpAddress> vip = AddressFromAbi(key.addr, key.family);
  if (!vip.ok()) return vip.status();
  if (key.proto != IPPROTO_TCP && key.proto != IPPROTO_UDP) {
    return absl::DataLossError(absl::StrCat("kernel service entry has protocol ", key.proto));
  }
  return model::Frontend{
      .vip = *vip,
      .port = ntohs(key.port),
      .protocol = key.proto == IPPROTO_TCP ? model::Protocol::kTcp : model::Protocol::kUdp};
}

sm_backend ToAbiBackend(const model::Backend& backend) {
  sm_backend be{};
  CopyAddress(backend.address, be.addr);
  be.port = htons(backend.port);
  be.family = ToAbiFamily(backend.address);
  be.weight = static_cast<__u16>(std::min<uint32_t>(backend.weight, 0xffff));
  return be;
}

absl::StatusOr<model::Backend> FromAbiBackend(const sm_backend& be) {
  absl::StatusOr<model::IpAddress> ip = AddressFromAbi(be.addr, be.family);
  if (!ip.ok()) return ip.status();
  return model::Backend{.address = *ip, .port = ntohs(be.port), .weight = be.weight};
}

std::optional<sm_outlier_cfg> ToAbiOutlierConfig(const model::OutlierDetection& outlier) {
  if (!outlier.enabled()) return std::nullopt;
  sm_outlier_cfg cfg{};
  cfg.base_ejection_ns = static_cast<uint64_t>(outlier.base_ejection_ms) * 1000000;
  cfg.consecutive_failures = outlier.consecutive_connect_failures;
  cfg.max_ejection_percent = outlier.max_ejection_percent;
  return cfg;
}

uint8_t ToAbiAlgorithm(model::LbAlgorithm algorithm) {
  switch (algorithm) {
    case model::LbAlgorithm::kMaglev:
      return SM_LB_MAGLEV;
    case model::LbAlgorithm::kLeastConnections:
      return SM_LB_LEAST_CONN;
    case model::LbAlgorithm::kRandom:
      break;
  }
  return SM_LB_RANDOM;
}

// The model's reserved numbers are the kernel's: policy compares them in BPF.
static_assert(model::kIdentityUnknown == SM_IDENTITY_UNKNOWN);
static_assert(model::kIdentityHost == SM_IDENTITY_HOST);
static_assert(model::kFirstAllocatedIdentity == SM_IDENTITY_FIRST_ALLOCATED);

sm_ip_identity_key ToIpIdentityKey(const model::IpAddress& ip) {
  sm_ip_identity_key key{};
  CopyAddress(ip, key.addr);
  key.family = ToAbiFamily(ip);
  return key;
}

absl::StatusOr<model::IpAddress> FromIpIdentityKey(const sm_ip_identity_key& key) {
  return AddressFromAbi(key.addr, key.family);
}

sm_identity ToAbiIdentity(uint32_t identity, bool local) {
  sm_identity value{};
  value.identity = identity;
  value.flags = local ? SM_IDENTITY_F_LOCAL : 0;
  return value;
}

sm_policy_row_key ToPolicyRowKey(uint32_t set_id, uint32_t source_identity, uint16_t port,
                                 const model::IpAddress& prefix, uint32_t prefix_len) {
  sm_policy_row_key key{};
  key.prefixlen = SM_POLICY_ROW_FIXED_BITS;
  key.policy_set_id = set_id;
  key.source_identity = source_identity;
  key.port = htons(port);
  if (prefix.family == 0) return key;
  uint8_t mapped[16] = {};
  if (prefix.is_v4()) {
    mapped[10] = 0xff;
    mapped[11] = 0xff;
    std::memcpy(mapped + 12, prefix.bytes.data(), 4);
    prefix_len += 96;
  } else {
    std::memcpy(mapped, prefix.bytes.data(), 16);
  }
  // Bits past the prefix are zeroed so that equal rows have equal keys.
  for (uint32_t bit = prefix_len; bit < 128; ++bit) mapped[bit / 8] &= ~(0x80 >> (bit % 8));
  std::memcpy(key.source_addr, mapped, sizeof(mapped));
  key.prefixlen += prefix_len;
  return key;
}

sm_policy_row ToAbiPolicyRow(uint32_t deny_policy_id, uint32_t allow_policy_id,
                             uint32_t audit_policy_id) {
  sm_policy_row row{};
  row.deny_policy_id = deny_policy_id;
  row.allow_policy_id = allow_policy_id;
  row.audit_policy_id = audit_policy_id;
  return row;
}

sm_policy_endpoint ToAbiPolicyEndpoint(uint32_t endpoint_id, uint32_t set_id, bool has_allow,
                                       bool source_address_dependent) {
  sm_policy_endpoint ep{};
  ep.endpoint_id = endpoint_id;
  ep.policy_set_id = set_id;
  ep.flags = (has_allow ? SM_POLICY_F_HAS_ALLOW : 0) |
             (source_address_dependent ? SM_POLICY_F_SOURCE_ADDRESS_DEPENDENT : 0);
  return ep;
}

absl::StatusOr<model::LbAlgorithm> FromAbiAlgorithm(uint8_t algo) {
  switch (algo) {
    case SM_LB_RANDOM:
      return model::LbAlgorithm::kRandom;
    case SM_LB_MAGLEV:
      return model::LbAlgorithm::kMaglev;
    case SM_LB_LEAST_CONN:
      return model::LbAlgorithm::kLeastConnections;
  }
  return absl::DataLossError(absl::StrCat("kernel service entry has algorithm ", algo));
}

bool HasBackendList(const sm_svc& svc) {
  return svc.algo == SM_LB_LEAST_CONN || svc.max_conns_per_backend != 0;
}

uint32_t LutSlotsWritten(const sm_svc& svc) {
  if (svc.algo == SM_LB_LEAST_CONN || !HasBackendList(svc)) return svc.lut_size;
  return svc.lut_size + svc.backend_count;
}

absl::StatusOr<ServiceTables> BuildServiceTables(const model::ServiceEntry& entry,
                                                 uint32_t maglev_table_size) {
  ServiceTables t;
  t.algo = ToAbiAlgorithm(entry.algorithm);
  t.affinity_timeout_s =
      entry.affinity == model::SessionAffinity::kClientIP ? entry.affinity_timeout_seconds : 0;
  if (entry.max_connections_per_backend > model::kMaxConnectionsPerBackend) {
    return absl::InvalidArgumentError(absl::StrCat(
        entry.frontend.ToString(), ": max_connections_per_backend ",
        entry.max_connections_per_backend, " exceeds ", model::kMaxConnectionsPerBackend));
  }
  t.max_conns_per_backend = static_cast<uint16_t>(entry.max_connections_per_backend);
  t.backends = entry.backends;
  for (const model::Backend& b : t.backends) {
    if (b.address.family != entry.frontend.vip.family) {
      return absl::InvalidArgumentError(absl::StrCat("backend ", b.ToString(), " of ",
                                                     entry.frontend.ToString(),
                                                     ": address family differs from the VIP's"));
    }
  }
  if (t.backends.empty()) return t;
  const bool needs_list =
      entry.algorithm == model::LbAlgorithm::kLeastConnections || t.max_conns_per_backend != 0;
  if (needs_list && t.backends.size() > SM_LB_MAX_LIST_BACKENDS) {
    return absl::InvalidArgumentError(absl::StrCat(
        entry.frontend.ToString(), ": ", t.backends.size(), " backends; least-connections and ",
        "max-connections-per-backend support at most ", SM_LB_MAX_LIST_BACKENDS));
  }
  std::vector<uint32_t> list(t.backends.size());
  for (uint32_t i = 0; i < list.size(); ++i) list[i] = i;
  if (entry.algorithm == model::LbAlgorithm::kLeastConnections) {
    t.lut = list;  // the list is the whole table
  } else if (entry.algorithm == model::LbAlgorithm::kMaglev) {
    std::vector<lb::MaglevBackend> mb;
    mb.reserve(t.backends.size());
    for (const model::Backend& b : t.backends) mb.push_back({b.ToString(), b.weight});
    absl::StatusOr<std::vector<uint32_t>> table = lb::BuildMaglevTable(mb, maglev_table_size);
    if (!table.ok()) return table.status();
    t.lut = *std::move(table);
  } else {
    std::vector<uint32_t> weights;
    weights.reserve(t.backends.size());
    for (const model::Backend& b : t.backends) weights.push_back(b.weight);
    t.lut = lb::BuildWeightedTable(weights, maglev_table_size);
  }
  t.lut_size = static_cast<uint32_t>(t.lut.size());
  if (needs_list && entry.algorithm != model::LbAlgorithm::kLeastConnections) {
    t.lut.insert(t.lut.end(), list.begin(), list.end());
  }
  return t;
}

}  // namespace sockmesh::agent
