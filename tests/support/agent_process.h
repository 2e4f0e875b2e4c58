// SPDX-License-Identifier: Apache-2.0
#ifndef SOCKMESH_TESTS_SUPPORT_AGENT_PROCESS_H_
#define SOCKMESH_TESTS_SUPPORT_AGENT_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace sockmesh::testing {

// A child process (in practice the sockmesh-agent binary) with stdout and stderr appended to a
// log file, so tests can wait for what it says. The destructor SIGKILLs and reaps this one PID if
// it still runs; nothing else is ever signalled.
//
// The child also gets PR_SET_PDEATHSIG(SIGKILL), so a test that crashes does not leave an agent
// running in (and pinning) its throwaway cgroup. That signal follows the *thread* that started
// the child: start agents from the test's main thread, not from a short-lived worker.
class AgentProcess {
 public:
  // Runs `binary` with `args` (argv[1..]); creates or truncates `log_path`. A non-empty `cgroup`
  // (a cgroup v2 directory) is where the child moves itself before exec: a test that has joined
  // the cgroup it balances can still run the agent outside it, as a real node would. A
  // non-negative `netns_fd` (an open network namespace) is the namespace the child enters before
  // exec, so its sockets (gRPC to the control plane, listeners) live on that "node" only.
  static absl::StatusOr<std::unique_ptr<AgentProcess>> Start(const std::string& binary,
                                                             const std::vector<std::string>& args,
                                                             const std::string& log_path,
                                                             const std::string& cgroup = "",
                                                             int netns_fd = -1);
  ~AgentProcess();
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

  // Everything the process wrote so far.
  std::string Log() const;
  // Polls the log until it contains `needle` at or after byte `from` (a previous Log().size(), to
  // wait for the *next* occurrence). NotFound when the process exited without writing it,
  // DeadlineExceeded after `timeout`; both messages end with the log's tail.
  absl::Status WaitForLog(absl::string_view needle, absl::Duration timeout, size_t from = 0);

  // Whether the process still runs (reaps it when it has exited).
  bool Running();
  // Waits for the process to exit by itself. Returns the exit code, or 128 + signal number when a
  // signal ended it; DeadlineExceeded when it still runs after `timeout` (it is left running).
  absl::StatusOr<int> Wait(absl::Duration timeout);
  // SIGTERM, then Wait(timeout).
  absl::StatusOr<int> Terminate(absl::Duration timeout = absl::Seconds(10));
  // SIGKILL, then waits until it is reaped.
  absl::StatusOr<int> Kill();

 private:
  AgentProcess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}
  // Non-blocking reap; true once the exit status is known.
  bool Reap();
  std::string Tail() const;

  pid_t pid_;
  std::string log_path_;
  std::optional<int> exit_code_;  // set once reaped; the PID may then belong to someone else
};

// What a run-to-completion invocation (`--cleanup`, a refused start) did.
struct AgentRun {
  int exit_code = -1;
  std::string log;
};
// Runs `binary` with `args` until it exits (killed after `timeout`), logging to `log_path`;
// `cgroup` and `netns_fd` as for AgentProcess::Start().
absl::StatusOr<AgentRun> RunAgentToCompletion(
    const std::string& binary, const std::vector<std::string>& args, const std::string& log_path,
    const std::string& cgroup = "", absl::Duration timeout = absl::Seconds(30), int netns_fd = -1);

}  // namespace sockmesh::testing

#endif  // SOCKMESH_TESTS_SUPPORT_AGENT_PROCESS_H_
