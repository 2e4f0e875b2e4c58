// SPDX-License-Identifier: Apache-2.0
// Load-only verifier tests, one per BPF object: every program must pass the verifier of the kernel
// the tests run on. Nothing is attached, so a verifier regression (a new branch, a clang upgrade
// that reorders context accesses) fails here with the verifier's log instead of deep inside a
// privileged socket test.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sm_lb_test.skel.h"
#include "sm_short_circuit.skel.h"
#include "sm_sock_lb.skel.h"

namespace sockmesh::testing {
namespace {

// Collects libbpf's messages while alive. On a failed load libbpf prints the verifier log at
// warning level; without this it would go to stderr, unattached to the failing assertion. libbpf's
// print hook is process-global with no user pointer, hence the static buffer.
class LibbpfLog {
 public:
  LibbpfLog() {
    text().clear();
    previous_ = libbpf_set_print(&LibbpfLog::Print);
  }
  ~LibbpfLog() { libbpf_set_print(previous_); }
  LibbpfLog(const LibbpfLog&) = delete;
  LibbpfLog& operator=(const LibbpfLog&) = delete;

  static const std::string& Text() { return text(); }

 private:
  static std::string& text() {
    static std::string buffer;
    return buffer;
  }
  static int Print(enum libbpf_print_level level, const char* format, va_list args) {
    if (level == LIBBPF_DEBUG) return 0;  // per-relocation chatter, not the verifier's verdict
    va_list copy;
    va_copy(copy, args);
    int n = std::vsnprintf(nullptr, 0, format, copy);
    va_end(copy);
    if (n <= 0) return 0;
    std::string line(static_cast<size_t>(n), '\0');
    std::vsnprintf(line.data(), line.size() + 1, format, args);
    text() += line;
    return n;
  }

  libbpf_print_fn_t previous_ = nullptr;
};

// BPF_COMPLEXITY_LIMIT_INSNS: the verifier gives up on a program after this many instructions.
constexpr uint32_t kVerifierInsnBudget = 1'000'000;

// A program an object must contain, with the kernel program type and attach type it must load as
// (a mistyped SEC() name loads fine but as the wrong hook).
struct ExpectedProgram {
  const char* name;
  bpf_prog_type type;
  std::optional<bpf_attach_type> attach;  // nullopt: the type has no attach type
};

// Checks a loaded (or failed) object: every program has an fd, and the expected ones are there
// with the right type. Records each program's verified instruction count as a test property, so
// that verifier complexity can be followed over time.
void ExpectVerified(const bpf_object* obj, int load_err,
                    const std::vector<ExpectedProgram>& expected) {
  ASSERT_EQ(load_err, 0) << "load " << bpf_object__name(obj) << ": " << std::strerror(-load_err)
                         << "\nlibbpf log:\n"
                         << LibbpfLog::Text();
  bpf_program* prog = nullptr;
  int count = 0;
  bpf_object__for_each_program(prog, obj) {
    ++count;
    const char* name = bpf_program__name(prog);
    int fd = bpf_program__fd(prog);
    EXPECT_GE(fd, 0) << name << " did not load\nlibbpf log:\n" << LibbpfLog::Text();
    if (fd < 0) continue;
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) {
      ::testing::Test::RecordProperty(std::string(name) + "_verified_insns",
                                      static_cast<int>(info.verified_insns));
      // Another kernel's verifier may explore more states (6.18 took sm_connect4 from under the
      // budget to over it): keep half the budget in reserve so such a change shows up here first.
      EXPECT_LE(info.verified_insns, kVerifierInsnBudget / 2)
          << name << " uses " << info.verified_insns << " of the verifier's " << kVerifierInsnBudget
          << "-instruction budget";
    }
  }
  EXPECT_GT(count, 0) << bpf_object__name(obj) << " has no programs";

  for (const ExpectedProgram& want : expected) {
    SCOPED_TRACE(want.name);
    const bpf_program* p = bpf_object__find_program_by_name(obj, want.name);
    ASSERT_NE(p, nullptr) << bpf_object__name(obj) << " lacks program " << want.name;
    EXPECT_GE(bpf_program__fd(p), 0);
    EXPECT_EQ(bpf_program__type(p), want.type);
    if (want.attach) {
      EXPECT_EQ(bpf_program__expected_attach_type(p), *want.attach);
    }
  }
}

TEST(VerifierLoadTest, SockLbLoads) {
  struct Deleter {
    void operator()(sm_sock_lb* skel) const { sm_sock_lb__destroy(skel); }
  };
  LibbpfLog log;
  std::unique_ptr<sm_sock_lb, Deleter> skel(sm_sock_lb__open());
  ASSERT_TRUE(skel) << "open sm_sock_lb: " << std::strerror(errno) << "\n" << LibbpfLog::Text();
  int err = sm_sock_lb__load(skel.get());

  constexpr bpf_prog_type kSockAddr = BPF_PROG_TYPE_CGROUP_SOCK_ADDR;
  ExpectVerified(skel->obj, err,
                 {
                     {"sm_connect4", kSockAddr, BPF_CGROUP_INET4_CONNECT},
                     {"sm_connect6", kSockAddr, BPF_CGROUP_INET6_CONNECT},
                     {"sm_sendmsg4", kSockAddr, BPF_CGROUP_UDP4_SENDMSG},
                     {"sm_sendmsg6", kSockAddr, BPF_CGROUP_UDP6_SENDMSG},
                     {"sm_recvmsg4", kSockAddr, BPF_CGROUP_UDP4_RECVMSG},
                     {"sm_recvmsg6", kSockAddr, BPF_CGROUP_UDP6_RECVMSG},
                     {"sm_getpeername4", kSockAddr, BPF_CGROUP_INET4_GETPEERNAME},
                     {"sm_getpeername6", kSockAddr, BPF_CGROUP_INET6_GETPEERNAME},
                     {"sm_sock_release", BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET_SOCK_RELEASE},
                     {"sm_conn_sockops", BPF_PROG_TYPE_SOCK_OPS, BPF_CGROUP_SOCK_OPS},
                     {"sm_skb_egress", BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_EGRESS},
                     {"sm_skb_ingress", BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_INGRESS},
                 });
}

TEST(VerifierLoadTest, ShortCircuitLoads) {
  struct Deleter {
    void operator()(sm_short_circuit* skel) const { sm_short_circuit__destroy(skel); }
  };
  LibbpfLog log;
  std::unique_ptr<sm_short_circuit, Deleter> skel(sm_short_circuit__open());
  ASSERT_TRUE(skel) << "open sm_short_circuit: " << std::strerror(errno) << "\n"
                    << LibbpfLog::Text();
  int err = sm_short_circuit__load(skel.get());
  ExpectVerified(skel->obj, err,
                 {
                     {"sm_sockops", BPF_PROG_TYPE_SOCK_OPS, BPF_CGROUP_SOCK_OPS},
                     {"sm_skmsg", BPF_PROG_TYPE_SK_MSG, BPF_SK_MSG_VERDICT},
                 });
}

// The test program is an object too: if it stopped loading, lb_select_test would fail in SetUp
// without saying why.
TEST(VerifierLoadTest, LbSelectTestProgramLoads) {
  struct Deleter {
    void operator()(sm_lb_test* skel) const { sm_lb_test__destroy(skel); }
  };
  LibbpfLog log;
  std::unique_ptr<sm_lb_test, Deleter> skel(sm_lb_test__open());
  ASSERT_TRUE(skel) << "open sm_lb_test: " << std::strerror(errno) << "\n" << LibbpfLog::Text();
  int err = sm_lb_test__load(skel.get());
  ExpectVerified(skel->obj, err, {{"sm_test_select", BPF_PROG_TYPE_SYSCALL, std::nullopt}});
}

}  // namespace
}  // namespace sockmesh::testing
