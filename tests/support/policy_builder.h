// SPDX-License-Identifier: Apache-2.0
// Hand-built CompiledPolicy protos for tests and the policy benchmark, as the compiler (authz-cp)
// would emit them. Header-only.
#ifndef SOCKMESH_TESTS_SUPPORT_POLICY_BUILDER_H_
#define SOCKMESH_TESTS_SUPPORT_POLICY_BUILDER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "control_plane/model/ip_address.h"
#include "control_plane/model/proto_conversion.h"
#include "sockmesh/consts.h"
#include "sockmesh/v1/control_plane.pb.h"

namespace sockmesh::testing {

inline constexpr uint32_t kAnySource = SM_POLICY_ANY_SOURCE;
inline constexpr uint32_t kAnyPort = SM_POLICY_ANY_PORT;

// Row() and Endpoint() refer to the set added last by Set().
class CompiledPolicyBuilder {
 public:
  CompiledPolicyBuilder& Policy(uint32_t id, const std::string& ns, const std::string& name,
                                v1::PolicyAction action) {
    v1::PolicyRef* p = policy_.add_policies();
    p->set_policy_id(id);
    p->set_namespace_(ns);
    p->set_name(name);
    p->set_action(action);
    return *this;
  }
  CompiledPolicyBuilder& Set(uint32_t set_id, bool has_allow) {
    v1::PolicySet* set = policy_.add_sets();
    set->set_policy_set_id(set_id);
    set->set_has_allow(has_allow);
    return *this;
  }
  struct RowIds {
    uint32_t deny = 0;
    uint32_t allow = 0;
    uint32_t audit = 0;
  };
  // `prefix` "" = any source address; otherwise an address with `prefix_len`.
  CompiledPolicyBuilder& Row(uint32_t source_identity, uint32_t port, RowIds ids,
                             const std::string& prefix = "", uint32_t prefix_len = 0) {
    v1::PolicySet* set = policy_.mutable_sets(policy_.sets_size() - 1);
    v1::PolicyRow* r = set->add_rows();
    r->set_source_identity(source_identity);
    r->set_port(port);
    r->set_deny_policy_id(ids.deny);
    r->set_allow_policy_id(ids.allow);
    r->set_audit_policy_id(ids.audit);
    if (!prefix.empty()) {
      *r->mutable_source_prefix() = model::ToProto(*model::IpAddress::Parse(prefix));
      r->set_source_prefix_len(prefix_len);
      set->set_source_address_dependent(true);
    }
    return *this;
  }
  CompiledPolicyBuilder& Endpoint(uint32_t endpoint_id, const std::string& ns,
                                  const std::string& name, const std::vector<std::string>& ips,
                                  uint32_t set_id) {
    v1::PolicyEndpoint* e = policy_.add_endpoints();
    e->set_endpoint_id(endpoint_id);
    e->mutable_workload()->set_namespace_(ns);
    e->mutable_workload()->set_name(name);
    for (const std::string& ip : ips) *e->add_ips() = model::ToProto(*model::IpAddress::Parse(ip));
    e->set_policy_set_id(set_id);
    return *this;
  }
  v1::CompiledPolicy Build() const { return policy_; }

 private:
  v1::CompiledPolicy policy_;
};

}  // namespace sockmesh::testing

#endif  // SOCKMESH_TESTS_SUPPORT_POLICY_BUILDER_H_
