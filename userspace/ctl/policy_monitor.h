// SPDX-License-Identifier: Apache-2.0
// `sockmeshctl monitor`: the stream of policy denials from the kernel's sm_policy_denials_v1 ring
// buffer, named with the agent's status file (principals, workloads, policies). The ring buffer
// has one reader position: two monitors at once share the events between them. While no monitor
// runs the buffer fills up and later denials are dropped (counted as policy_denial_events_lost),
// so a monitor first prints the backlog it finds, then follows.
#ifndef SOCKMESH_USERSPACE_CTL_POLICY_MONITOR_H_
#define SOCKMESH_USERSPACE_CTL_POLICY_MONITOR_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "userspace/agent/policy_metrics_source.h"
#include "userspace/bpf/abi.h"

namespace sockmesh::ctl {

struct DenialView {
  absl::Time time;
  uint32_t source_identity = 0;
  std::string source;          // workload or principal; "unknown" for the world
  std::string source_address;  // "ip:port"; "-" when connect() had no address yet
  uint32_t endpoint_id = 0;
  std::string destination;  // the endpoint's workload
  std::string destination_address;
  std::string protocol;  // "tcp" / "udp"
  std::string policy;    // "ns/name" of the DENY policy, or "no ALLOW match"
  std::string side;      // "client" (connect refused) or "destination" (dropped)
};

// `boot_offset` turns the event's CLOCK_MONOTONIC time into wall time.
DenialView ToDenialView(const sm_policy_denial& event, const agent::PolicyNames& names,
                        absl::Duration boot_offset);
// One line: TIME SOURCE(ADDR) -> DESTINATION(ADDR)/PROTO POLICY SIDE
std::string FormatDenialLine(const DenialView& d);
// One JSON object per line.
std::string FormatDenialJson(const DenialView& d);

struct MonitorOptions {
  std::string bpffs = "/sys/fs/bpf";
  std::string instance = "default";
  std::string run_dir;                                // where the agent's status file is (names)
  int count = 0;                                      // stop after this many denials; 0 = no limit
  absl::Duration timeout = absl::InfiniteDuration();  // stop after this long
  bool json = false;
  std::function<bool()> stop;  // also stops when this returns true (Ctrl-C)
};

// Prints denials to `out` until count, timeout or stop. Returns how many it printed.
absl::StatusOr<int> RunPolicyMonitor(const MonitorOptions& options,
                                     const std::function<void(const std::string&)>& out);

}  // namespace sockmesh::ctl

#endif  // SOCKMESH_USERSPACE_CTL_POLICY_MONITOR_H_
