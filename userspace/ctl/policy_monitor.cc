// SPDX-License-Identifier: Apache-2.0
#include "userspace/ctl/policy_monitor.h"

#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <netinet/in.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "userspace/agent/abi_conversion.h"
#include "userspace/agent/datapath.h"
#include "userspace/agent/workload_status_file.h"
#include "userspace/ctl/pinned_instance.h"
#include "userspace/sys/errno_status.h"

namespace sockmesh::ctl {
namespace {

std::string Address(const __be32 addr[4], uint8_t family, uint16_t port_be) {
  sm_ip_identity_key key{};
  std::memcpy(key.addr, addr, sizeof(key.addr));
  key.family = family;
  absl::StatusOr<model::IpAddress> ip = agent::FromIpIdentityKey(key);
  if (!ip.ok()) return "?";
  const uint16_t port = ntohs(port_be);
  bool zero = true;
  for (int i = 0; i < 4; ++i) zero &= addr[i] == 0;
  if (zero && port == 0) return "-";
  return ip->is_v6() ? absl::StrCat("[", ip->ToString(), "]:", port)
                     : absl::StrCat(ip->ToString(), ":", port);
}

// Wall time minus CLOCK_MONOTONIC now: added to bpf_ktime_get_ns() values.
absl::Duration MonotonicToWall() {
  timespec mono{};
  clock_gettime(CLOCK_MONOTONIC, &mono);
  return absl::Now() - absl::UnixEpoch() - absl::DurationFromTimespec(mono);
}

struct Consumer {
  const MonitorOptions* options;
  const std::function<void(const std::string&)>* out;
  agent::PolicyNames names;
  absl::Duration offset;
  int printed = 0;
};

int OnEvent(void* ctx, void* data, size_t size) {
  auto* c = static_cast<Consumer*>(ctx);
  if (size < sizeof(sm_policy_denial)) return 0;
  if (c->options->count > 0 && c->printed >= c->options->count) return 0;
  sm_policy_denial event;
  std::memcpy(&event, data, sizeof(event));
  DenialView view = ToDenialView(event, c->names, c->offset);
  (*c->out)(c->options->json ? FormatDenialJson(view) : FormatDenialLine(view));
  ++c->printed;
  return 0;
}

struct RingBufferDeleter {
  void operator()(ring_buffer* rb) const { ring_buffer__free(rb); }
};

}  // namespace

DenialView ToDenialView(const sm_policy_denial& e, const agent::PolicyNames& names,
                        absl::Duration boot_offset) {
  DenialView d;
  d.time = absl::UnixEpoch() + boot_offset + absl::Nanoseconds(e.time_ns);
  d.source_identity = e.source_identity;
  d.source = names.Identity(e.source_identity);
  d.source_address = Address(e.saddr, e.family, e.sport);
  d.endpoint_id = e.endpoint_id;
  d.destination = names.Endpoint(e.endpoint_id);
  d.destination_address = Address(e.daddr, e.family, e.dport);
  d.protocol = e.proto == IPPROTO_UDP ? "udp" : "tcp";
  d.policy = e.verdict == SM_POLICY_DENY ? names.Policy(e.policy_id) : "no ALLOW match";
  d.side = e.point == SM_POLICY_AT_CLIENT ? "client" : "destination";
  return d;
}

std::string FormatDenialLine(const DenialView& d) {
  return absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", d.time, absl::UTCTimeZone()),
                      " DENY ", d.source, " (identity ", d.source_identity, ", ", d.source_address,
                      ") -> ", d.destination, " (", d.destination_address, "/", d.protocol,
                      ") policy=", d.policy, " side=", d.side, "\n");
}

std::string FormatDenialJson(const DenialView& d) {
  nlohmann::json j = {
      {"time", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", d.time, absl::UTCTimeZone())},
      {"source_identity", d.source_identity},
      {"source", d.source},
      {"source_address", d.source_address},
      {"endpoint_id", d.endpoint_id},
      {"destination", d.destination},
      {"destination_address", d.destination_address},
      {"protocol", d.protocol},
      {"policy", d.policy},
      {"side", d.side}};
  return j.dump() + "\n";
}

absl::StatusOr<int> RunPolicyMonitor(const MonitorOptions& options,
                                     const std::function<void(const std::string&)>& out) {
  absl::StatusOr<sys::UniqueFd> fd =
      OpenPinnedMap(options.bpffs, options.instance, agent::kPolicyDenialsMap);
  if (!fd.ok()) return fd.status();
  Consumer consumer{.options = &options, .out = &out, .names = {}, .offset = MonotonicToWall()};
  const std::string status = agent::WorkloadStatusPath(options.run_dir, options.instance);
  absl::StatusOr<v1::CompiledPolicy> policy = agent::ReadPolicyStatus(status);
  absl::StatusOr<model::WorkloadState> workloads = agent::ReadWorkloadStatus(status);
  consumer.names = agent::NamePolicy(policy.ok() ? *policy : v1::CompiledPolicy(),
                                     workloads.ok() ? *workloads : model::WorkloadState());
  std::unique_ptr<ring_buffer, RingBufferDeleter> rb(
      ring_buffer__new(fd->get(), OnEvent, &consumer, nullptr));
  if (!rb) return sys::ErrnoToStatus(errno, "open ring buffer sm_policy_denials_v1");
  const absl::Time deadline = absl::Now() + options.timeout;
  while (options.count == 0 || consumer.printed < options.count) {
    if (options.stop && options.stop()) break;
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    int wait_ms = static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left), 200));
    int n = ring_buffer__poll(rb.get(), wait_ms);
    if (n < 0 && n != -EINTR) return sys::ErrnoToStatus(-n, "poll ring buffer");
  }
  return consumer.printed;
}

}  // namespace sockmesh::ctl
