// SPDX-License-Identifier: Apache-2.0
// The kernel/user ABI as C++ sees it: bpf/include/sockmesh/abi.h plus the checks that the compiler
// laid the structs out exactly as the BPF side did (no hidden padding, same offsets).
#ifndef SOCKMESH_USERSPACE_BPF_ABI_H_
#define SOCKMESH_USERSPACE_BPF_ABI_H_

#include <cstddef>
#include <cstring>
#include <type_traits>

#include "sockmesh/abi.h"
#include "sockmesh/consts.h"

namespace sockmesh::bpf {

template <typename T>
constexpr bool kAbiSafe = std::has_unique_object_representations_v<T>&&
    std::is_trivially_copyable_v<T>&& std::is_standard_layout_v<T>;

static_assert(kAbiSafe<sm_svc_key> && sizeof(sm_svc_key) == 20);
static_assert(offsetof(sm_svc_key, port) == 16 && offsetof(sm_svc_key, family) == 19);
static_assert(kAbiSafe<sm_svc> && sizeof(sm_svc) == 24);
static_assert(offsetof(sm_svc, affinity_timeout_s) == 16 && offsetof(sm_svc, algo) == 20 &&
              offsetof(sm_svc, max_conns_per_backend) == 22);
static_assert(kAbiSafe<sm_lut_key> && sizeof(sm_lut_key) == 12);
static_assert(kAbiSafe<sm_be_key> && sizeof(sm_be_key) == 12);
static_assert(kAbiSafe<sm_backend> && sizeof(sm_backend) == 24);
static_assert(offsetof(sm_backend, port) == 16 && offsetof(sm_backend, weight) == 20);
static_assert(kAbiSafe<sm_aff_key> && sizeof(sm_aff_key) == 16);
static_assert(kAbiSafe<sm_aff_val> && sizeof(sm_aff_val) == 16);
static_assert(kAbiSafe<sm_revnat_key> && sizeof(sm_revnat_key) == 32);
static_assert(offsetof(sm_revnat_key, addr) == 8 && offsetof(sm_revnat_key, port) == 24);
static_assert(kAbiSafe<sm_revnat_val> && sizeof(sm_revnat_val) == 20);
static_assert(kAbiSafe<sm_sock_vip> && sizeof(sm_sock_vip) == 48);
static_assert(offsetof(sm_sock_vip, vip_port) == 32 && offsetof(sm_sock_vip, family) == 36 &&
              offsetof(sm_sock_vip, svc_id) == 40 && offsetof(sm_sock_vip, backend_id) == 44);
static_assert(kAbiSafe<sm_be_conn_key> && sizeof(sm_be_conn_key) == 8);
static_assert(kAbiSafe<sm_sock_key> && sizeof(sm_sock_key) == 40);
static_assert(offsetof(sm_sock_key, remote) == 16 && offsetof(sm_sock_key, local_port) == 32 &&
              offsetof(sm_sock_key, remote_port) == 34 && offsetof(sm_sock_key, family) == 36);
static_assert(kAbiSafe<sm_outlier_cfg> && sizeof(sm_outlier_cfg) == 16);
static_assert(offsetof(sm_outlier_cfg, consecutive_failures) == 8 &&
              offsetof(sm_outlier_cfg, max_ejection_percent) == 12);
static_assert(kAbiSafe<sm_be_outlier> && sizeof(sm_be_outlier) == 16);
static_assert(offsetof(sm_be_outlier, consecutive_failures) == 8 &&
              offsetof(sm_be_outlier, ejections) == 12);
static_assert(kAbiSafe<sm_svc_ejections> && sizeof(sm_svc_ejections) == 8 * SM_OUTLIER_MAX_EJECTED);
static_assert(kAbiSafe<sm_ip_identity_key> && sizeof(sm_ip_identity_key) == 20);
static_assert(offsetof(sm_ip_identity_key, family) == 16);
static_assert(kAbiSafe<sm_identity> && sizeof(sm_identity) == 8);
static_assert(offsetof(sm_identity, flags) == 4);
static_assert(kAbiSafe<sm_conn_stats_key> && sizeof(sm_conn_stats_key) == 16);
static_assert(offsetof(sm_conn_stats_key, svc_id) == 8);
static_assert(kAbiSafe<sm_hist> && sizeof(sm_hist) == 8 * (SM_HIST_BUCKETS + 1));
static_assert(kAbiSafe<sm_conn_stats> && offsetof(sm_conn_stats, connect_us) == 64 &&
              offsetof(sm_conn_stats, request_us) == 64 + 2 * sizeof(sm_hist));
static_assert(kAbiSafe<sm_policy_row_key> && sizeof(sm_policy_row_key) == 32);
static_assert(offsetof(sm_policy_row_key, port) == 12 &&
              offsetof(sm_policy_row_key, source_addr) == 16);
static_assert(kAbiSafe<sm_policy_row> && sizeof(sm_policy_row) == 16);
static_assert(kAbiSafe<sm_policy_endpoint> && sizeof(sm_policy_endpoint) == 12);
static_assert(offsetof(sm_policy_endpoint, flags) == 8);
static_assert(kAbiSafe<sm_policy_decision_key> && sizeof(sm_policy_decision_key) == 16);
static_assert(offsetof(sm_policy_decision_key, verdict) == 12 &&
              offsetof(sm_policy_decision_key, point) == 13);
static_assert(kAbiSafe<sm_flow_key> && sizeof(sm_flow_key) == 40);
static_assert(offsetof(sm_flow_key, sport) == 32 && offsetof(sm_flow_key, proto) == 36);
static_assert(kAbiSafe<sm_policy_denial> && sizeof(sm_policy_denial) == 64);
static_assert(offsetof(sm_policy_denial, source_identity) == 40 &&
              offsetof(sm_policy_denial, sport) == 52 && offsetof(sm_policy_denial, point) == 59);

// Value-initialised ABI structs compare by bytes: every byte is a field or explicit padding.
template <typename T>
bool AbiEqual(const T& a, const T& b) {
  static_assert(kAbiSafe<T>);
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

// Orders ABI structs by bytes, for std::set / std::map of kernel keys.
struct AbiLess {
  template <typename T>
  bool operator()(const T& a, const T& b) const {
    static_assert(kAbiSafe<T>);
    return std::memcmp(&a, &b, sizeof(T)) < 0;
  }
};

}  // namespace sockmesh::bpf

#endif  // SOCKMESH_USERSPACE_BPF_ABI_H_
