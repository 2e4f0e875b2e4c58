// SPDX-License-Identifier: Apache-2.0
#include "tests/support/agent_process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "userspace/sys/errno_status.h"
#include "userspace/sys/unique_fd.h"

namespace sockmesh::testing {
namespace {

constexpr absl::Duration kPoll = absl::Milliseconds(20);
constexpr size_t kTailBytes = 4000;

int ExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Only async-signal-safe calls from here on: the parent has other threads (backends, gtest), and
// a lock one of them held at fork() time would never be released in the child.
[[noreturn]] void ExecChild(pid_t parent, int log_fd, int null_fd, int procs_fd, int netns_fd,
                            const char* binary, char* const argv[]) {
  // Dies with the test: a crashed test must not leave an agent holding its cgroup.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(126);  // the parent died before prctl took effect
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (::dup2(null_fd, STDIN_FILENO) < 0 || ::dup2(log_fd, STDOUT_FILENO) < 0 ||
      ::dup2(log_fd, STDERR_FILENO) < 0) {
    ::_exit(126);
  }
  // "0" in cgroup.procs moves the writing process.
  if (procs_fd >= 0 && ::write(procs_fd, "0", 1) != 1) {
    static constexpr char kMsg[] = "agent_process: cannot move into the requested cgroup\n";
    (void)!::write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
    ::_exit(125);
  }
  if (netns_fd >= 0 && ::setns(netns_fd, CLONE_NEWNET) != 0) {
    static constexpr char kMsg[] = "agent_process: cannot enter the requested network namespace\n";
    (void)!::write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
    ::_exit(124);
  }
  ::execv(binary, argv);
  static constexpr char kMsg[] = "agent_process: execv failed\n";
  (void)!::write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
  ::_exit(127);
}

}  // namespace

absl::StatusOr<std::unique_ptr<AgentProcess>> AgentProcess::Start(
    const std::string& binary, const std::vector<std::string>& args, const std::string& log_path,
    const std::string& cgroup, int netns_fd) {
  // Everything the child needs is prepared before fork(), see ExecChild().
  sys::UniqueFd log_fd(
      ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644));
  if (!log_fd.valid()) return sys::ErrnoToStatus(errno, absl::StrCat("open ", log_path));
  sys::UniqueFd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null_fd.valid()) return sys::ErrnoToStatus(errno, "open /dev/null");
  sys::UniqueFd procs_fd;
  if (!cgroup.empty()) {
    std::string procs = cgroup + "/cgroup.procs";
    procs_fd.Reset(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
    if (!procs_fd.valid()) return sys::ErrnoToStatus(errno, absl::StrCat("open ", procs));
  }
  std::vector<std::string> argv_storage;
  argv_storage.push_back(binary);
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  // Written into the log first so a failing test shows exactly what ran.
  std::string header = absl::StrCat("$ ",
                                    absl::StrJoin(argv_storage, " ",
                                                  [](std::string* out, const std::string& a) {
                                                    absl::StrAppend(out, a.empty() ? "''" : a);
                                                  }),
                                    "\n");
  (void)!::write(log_fd.get(), header.data(), header.size());

  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return sys::ErrnoToStatus(errno, "fork");
  if (pid == 0) {
    ExecChild(parent, log_fd.get(), null_fd.get(), procs_fd.get(), netns_fd, binary.c_str(),
              argv.data());
  }
  return std::unique_ptr<AgentProcess>(new AgentProcess(pid, log_path));
}

AgentProcess::~AgentProcess() {
  if (exit_code_.has_value()) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
}

std::string AgentProcess::Log() const {
  std::ifstream in(log_path_, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string AgentProcess::Tail() const {
  std::string log = Log();
  if (log.size() > kTailBytes) log = "..." + log.substr(log.size() - kTailBytes);
  return absl::StrCat("\n--- log of pid ", pid_, " (", log_path_, ") ---\n", log, "--- end ---");
}

absl::Status AgentProcess::WaitForLog(absl::string_view needle, absl::Duration timeout,
                                      size_t from) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    // Reap first, read second: a line written just before exiting is still found.
    bool exited = !Running();
    std::string log = Log();
    if (log.size() > from && log.find(needle.data(), from, needle.size()) != std::string::npos) {
      return absl::OkStatus();
    }
    if (exited) {
      return absl::NotFoundError(absl::StrCat("process exited (code ", *exit_code_,
                                              ") without logging \"", needle, "\"", Tail()));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("no \"", needle, "\" in the log after ",
                                                      absl::FormatDuration(timeout), Tail()));
    }
    absl::SleepFor(kPoll);
  }
}

bool AgentProcess::Reap() {
  if (exit_code_.has_value()) return true;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) exit_code_ = ExitCode(status);
  return exit_code_.has_value();
}

bool AgentProcess::Running() { return !Reap(); }

absl::StatusOr<int> AgentProcess::Wait(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!Reap()) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("pid ", pid_, " still runs after ", absl::FormatDuration(timeout), Tail()));
    }
    absl::SleepFor(kPoll);
  }
  return *exit_code_;
}

absl::StatusOr<int> AgentProcess::Terminate(absl::Duration timeout) {
  if (!Reap() && ::kill(pid_, SIGTERM) != 0) return sys::ErrnoToStatus(errno, "kill SIGTERM");
  return Wait(timeout);
}

absl::StatusOr<int> AgentProcess::Kill() {
  if (!Reap() && ::kill(pid_, SIGKILL) != 0) return sys::ErrnoToStatus(errno, "kill SIGKILL");
  // SIGKILL cannot be caught; the wait only covers the kernel tearing the process down.
  return Wait(absl::Seconds(30));
}

absl::StatusOr<AgentRun> RunAgentToCompletion(const std::string& binary,
                                              const std::vector<std::string>& args,
                                              const std::string& log_path,
                                              const std::string& cgroup, absl::Duration timeout,
                                              int netns_fd) {
  absl::StatusOr<std::unique_ptr<AgentProcess>> p =
      AgentProcess::Start(binary, args, log_path, cgroup, netns_fd);
  if (!p.ok()) return p.status();
  absl::StatusOr<int> code = (*p)->Wait(timeout);
  if (!code.ok()) return code.status();  // the destructor kills it
  return AgentRun{.exit_code = *code, .log = (*p)->Log()};
}

}  // namespace sockmesh::testing
