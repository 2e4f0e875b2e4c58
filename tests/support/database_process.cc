// SPDX-License-Identifier: Apache-2.0
#include "tests/support/database_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace sockmesh::testing {
namespace {

// Everything is prepared before fork(): the child only calls async-signal-safe functions.
absl::StatusOr<pid_t> Spawn(const std::string& binary, const std::vector<std::string>& args,
                            const std::string& log_path, const RunAs* run_as) {
  std::vector<std::string> words{binary};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& word : words) argv.push_back(word.data());
  argv.push_back(nullptr);
  const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) return absl::ErrnoToStatus(errno, absl::StrCat("open ", log_path));
  if (run_as != nullptr && ::fchown(log, run_as->uid, run_as->gid) != 0) {
    ::close(log);
    return absl::ErrnoToStatus(errno, absl::StrCat("chown ", log_path));
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log);
    return absl::ErrnoToStatus(errno, "fork");
  }
  if (pid == 0) {
    // A test that crashes must not leave a database behind.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::dup2(log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    const int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, STDIN_FILENO);
    if (run_as != nullptr) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(run_as->gid) != 0 ||
          ::setuid(run_as->uid) != 0) {
        ::_exit(126);
      }
    }
    ::execv(binary.c_str(), argv.data());
    static constexpr char kMsg[] = "database_process: execv failed\n";
    (void)!::write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
    ::_exit(127);
  }
  ::close(log);
  return pid;
}

std::string Tail(const std::string& path) {
  std::ifstream in(path);
  std::stringstream all;
  all << in.rdbuf();
  std::string text = all.str();
  if (text.size() > 2000) text = "..." + text.substr(text.size() - 2000);
  return text;
}

}  // namespace

absl::StatusOr<RunAs> PostgresRunAs() {
  if (::geteuid() != 0) return RunAs{::geteuid(), ::getegid()};
  const passwd* account = ::getpwnam("postgres");
  if (account == nullptr) {
    return absl::NotFoundError(
        "no `postgres` account to run PostgreSQL as (root cannot): install the Debian package "
        "postgresql");
  }
  return RunAs{account->pw_uid, account->pw_gid};
}

absl::StatusOr<std::unique_ptr<DatabaseProcess>> DatabaseProcess::Start(
    const std::string& binary, const std::vector<std::string>& args, const std::string& log_path,
    const RunAs* run_as) {
  absl::StatusOr<pid_t> pid = Spawn(binary, args, log_path, run_as);
  if (!pid.ok()) return pid.status();
  return std::unique_ptr<DatabaseProcess>(new DatabaseProcess(*pid, log_path));
}

DatabaseProcess::~DatabaseProcess() {
  if (reaped_) return;
  // SIGINT is PostgreSQL's "fast" shutdown (SIGTERM would wait for clients); Redis exits on both.
  ::kill(pid_, SIGINT);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
}

bool DatabaseProcess::Running() {
  if (reaped_) return false;
  if (::waitpid(pid_, nullptr, WNOHANG) == pid_) reaped_ = true;
  return !reaped_;
}

std::string DatabaseProcess::LogTail() const { return Tail(log_path_); }

absl::Status RunToCompletion(const std::string& binary, const std::vector<std::string>& args,
                             const std::string& log_path, const RunAs* run_as) {
  absl::StatusOr<pid_t> pid = Spawn(binary, args, log_path, run_as);
  if (!pid.ok()) return pid.status();
  int status = 0;
  while (::waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat(binary, " failed (status ", status, "): ", Tail(log_path)));
}

absl::StatusOr<int> FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
    const int saved = errno;
    ::close(fd);
    return absl::ErrnoToStatus(saved, "bind 127.0.0.1:0");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace sockmesh::testing
