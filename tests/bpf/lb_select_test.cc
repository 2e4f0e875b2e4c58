// SPDX-License-Identifier: Apache-2.0
// lib/lb.h's backend selection, run in the kernel under BPF_PROG_TEST_RUN. The cgroup hooks that
// call sm_lb_select() cannot be test-run, so the sm_lb_test syscall program includes the same
// inline logic with the random draw and the clock taken from its context. Its maps are the
// production definitions, programmed by the agent's own MapSync: these tests check the agent/kernel
// contract (revisions, table layout, affinity) with everything real except the hook around it.
#include "bpf/tests/lb_select_test.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sm_lb_test.skel.h"
#include "tests/support/test_datapath.h"
#include "userspace/agent/abi_conversion.h"
#include "userspace/agent/map_sync.h"
#include "userspace/bpf/abi.h"
#include "userspace/bpf/typed_map.h"

namespace sockmesh::testing {
namespace {

// The BPF side asserts the size; these catch a C++ layout that differs from clang's.
static_assert(bpf::kAbiSafe<sm_lb_test_ctx> && sizeof(sm_lb_test_ctx) == 88);
static_assert(offsetof(sm_lb_test_ctx, netns_cookie) == 24 &&
              offsetof(sm_lb_test_ctx, flow_hash) == 32 && offsetof(sm_lb_test_ctx, rand) == 36 &&
              offsetof(sm_lb_test_ctx, now_ns) == 40 && offsetof(sm_lb_test_ctx, out) == 48 &&
              offsetof(sm_lb_test_ctx, result) == 72 && offsetof(sm_lb_test_ctx, track) == 80);

using model::LbAlgorithm;
using model::Protocol;

// Weighted tables have this many slots, Maglev tables too (the smallest supported prime): small
// enough that a test can draw every slot.
constexpr uint32_t kTableSize = 251;
constexpr uint64_t kSecond = 1'000'000'000;
// Far from 0, so that "now - last use" never wraps for the times the tests pick.
constexpr uint64_t kT0 = 1000 * kSecond;
constexpr uint64_t kClientA = 0x1111;
constexpr uint64_t kClientB = 0x2222;

const char* ResultName(int32_t result) {
  switch (result) {
    case SM_LB_TEST_NOT_SERVICE:
      return "NOT_SERVICE";
    case SM_LB_TEST_OK:
      return "OK";
    case SM_LB_TEST_NO_BACKEND:
      return "NO_BACKEND";
    case SM_LB_TEST_INCONSISTENT:
      return "INCONSISTENT";
    case SM_LB_TEST_OVER_LIMIT:
      return "OVER_LIMIT";
  }
  return "(test run failed)";
}

// "10.0.0.1:8080": a backend's identity (weight aside), so that mismatches read as addresses
// rather than bytes, and so that kernel entries and model backends compare.
std::string Name(const model::Backend& b) {
  return absl::StrCat(b.address.ToString(), ":", b.port);
}
std::string Name(const sm_backend& be) {
  absl::StatusOr<model::Backend> b = agent::FromAbiBackend(be);
  return b.ok() ? Name(*b) : "(none)";
}

model::Frontend Fe(const std::string& vip, uint16_t port = 80, Protocol proto = Protocol::kTcp) {
  return model::Frontend{.vip = *model::IpAddress::Parse(vip), .port = port, .protocol = proto};
}

model::ServiceEntry Svc(const model::Frontend& fe, std::vector<model::Backend> backends,
                        LbAlgorithm algo = LbAlgorithm::kRandom) {
  return MakeService(fe.vip.ToString(), fe.port, fe.protocol, std::move(backends), algo);
}

model::ServiceEntry WithAffinity(model::ServiceEntry e, uint32_t timeout_s) {
  e.affinity = model::SessionAffinity::kClientIP;
  e.affinity_timeout_seconds = timeout_s;
  return e;
}

// What the test program is called with besides the frontend.
struct Flow {
  uint32_t rand = 0;  // SM_GET_PRANDOM()
  uint32_t hash = 0;  // sm_flow.hash
  uint64_t client = kClientA;
  uint64_t now_ns = kT0;  // SM_KTIME_NS()
  bool track = false;     // sm_flow.track: a TCP connect that takes a connection count
};

struct SkeletonDeleter {
  void operator()(sm_lb_test* skel) const { sm_lb_test__destroy(skel); }
};
using SkeletonPtr = std::unique_ptr<sm_lb_test, SkeletonDeleter>;

class LbSelectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    skel_.reset(sm_lb_test__open());
    ASSERT_TRUE(skel_) << "open sm_lb_test: " << std::strerror(errno);
    // Unused here; at its production size this preallocated LRU map would only cost memory.
    ASSERT_EQ(bpf_map__set_max_entries(skel_->maps.sm_revnat_v1, 64), 0);
    int err = sm_lb_test__load(skel_.get());
    ASSERT_EQ(err, 0) << "load sm_lb_test (needs root and BPF_PROG_TYPE_SYSCALL): "
                      << std::strerror(-err);
    ASSERT_NO_FATAL_FAILURE(Wrap(skel_->maps.sm_svc_v1, services_));
    ASSERT_NO_FATAL_FAILURE(Wrap(skel_->maps.sm_be_v1, backends_));
    ASSERT_NO_FATAL_FAILURE(Wrap(skel_->maps.sm_lut_v1, lut_));
    ASSERT_NO_FATAL_FAILURE(Wrap(skel_->maps.sm_aff_v1, affinity_));
    ASSERT_NO_FATAL_FAILURE(Wrap(skel_->maps.sm_be_conns_v1, conns_));
    absl::StatusOr<agent::MapSync> sync = agent::MapSync::Recover(
        agent::ServiceMaps{.services = &*services_, .backends = &*backends_, .lut = &*lut_},
        kTableSize);
    ASSERT_TRUE(sync.ok()) << sync.status();
    sync_.emplace(*std::move(sync));
  }

  template <typename K, typename V>
  static void Wrap(const bpf_map* map, std::optional<bpf::TypedMap<K, V>>& out) {
    absl::StatusOr<bpf::TypedMap<K, V>> m = bpf::TypedMap<K, V>::FromSkeleton(map);
    ASSERT_TRUE(m.ok()) << m.status();
    out.emplace(*std::move(m));
  }

  void Apply(const std::vector<model::ServiceEntry>& services) {
    model::DesiredState state;
    for (const model::ServiceEntry& e : services) AddService(state, e);
    agent::SyncReport r = sync_->Apply(state);
    ASSERT_EQ(r.failed, 0) << r.Summary() << ": " << (r.errors.empty() ? "" : r.errors[0]);
  }

  // One sm_lb_select() call in the kernel. A failed test run is a test failure, reported with
  // result -1.
  sm_lb_test_ctx Run(const sm_svc_key& key, const Flow& flow) {
    sm_lb_test_ctx ctx{};
    ctx.key = key;
    ctx.netns_cookie = flow.client;
    ctx.flow_hash = flow.hash;
    ctx.rand = flow.rand;
    ctx.now_ns = flow.now_ns;
    ctx.track = flow.track ? 1 : 0;
    ctx.result = -1;
    bpf_test_run_opts opts{};
    opts.sz = sizeof(opts);
    // A syscall program's context is copied back into ctx_in; the kernel refuses ctx_out (EINVAL).
    opts.ctx_in = &ctx;
    opts.ctx_size_in = sizeof(ctx);
    int err = bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.sm_test_select), &opts);
    if (err != 0) {
      ADD_FAILURE() << "BPF_PROG_TEST_RUN: " << std::strerror(-err);
      ctx.result = -1;
    }
    return ctx;
  }
  sm_lb_test_ctx Run(const model::Frontend& fe, const Flow& flow) {
    return Run(agent::ToSvcKey(fe), flow);
  }

  sm_svc Service(const model::Frontend& fe) {
    absl::StatusOr<sm_svc> v = services_->Lookup(agent::ToSvcKey(fe));
    EXPECT_TRUE(v.ok()) << fe << ": " << v.status();
    return v.ok() ? *v : sm_svc{};
  }

  // The live revision's selection table, slot by slot, resolved to the backend entries the program
  // copies out. This is the expectation: the program must return table[draw % table.size()].
  std::vector<sm_backend> LiveTable(const model::Frontend& fe) {
    sm_svc svc = Service(fe);
    std::vector<sm_backend> table;
    for (uint32_t slot = 0; slot < svc.lut_size; ++slot) {
      absl::StatusOr<uint32_t> id =
          lut_->Lookup({.svc_id = svc.svc_id, .rev = svc.rev, .slot = slot});
      EXPECT_TRUE(id.ok()) << fe << " slot " << slot << ": " << id.status();
      if (!id.ok()) return {};
      absl::StatusOr<sm_backend> be =
          backends_->Lookup({.svc_id = svc.svc_id, .rev = svc.rev, .backend_id = *id});
      EXPECT_TRUE(be.ok()) << fe << " backend " << *id << ": " << be.status();
      if (!be.ok()) return {};
      table.push_back(*be);
    }
    return table;
  }

  uint64_t Counter(uint32_t index) {
    absl::StatusOr<std::vector<uint64_t>> c =
        bpf::ReadPerCpuCounters(bpf_map__fd(skel_->maps.sm_counters_v1), SM_CNT_MAX);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? (*c)[index] : ~0ULL;
  }
  std::vector<uint64_t> Counters() {
    absl::StatusOr<std::vector<uint64_t>> c =
        bpf::ReadPerCpuCounters(bpf_map__fd(skel_->maps.sm_counters_v1), SM_CNT_MAX);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : std::vector<uint64_t>{};
  }

  // Expects an OK result whose backend is `want`, byte for byte.
  static void ExpectBackend(const sm_lb_test_ctx& got, const sm_backend& want) {
    ASSERT_EQ(got.result, SM_LB_TEST_OK) << ResultName(got.result);
    EXPECT_TRUE(bpf::AbiEqual(got.out, want)) << "got " << Name(got.out) << ", want " << Name(want);
  }

  SkeletonPtr skel_;
  std::optional<bpf::TypedMap<sm_svc_key, sm_svc>> services_;
  std::optional<bpf::TypedMap<sm_be_key, sm_backend>> backends_;
  std::optional<bpf::TypedMap<sm_lut_key, uint32_t>> lut_;
  std::optional<bpf::TypedMap<sm_aff_key, sm_aff_val>> affinity_;
  std::optional<bpf::TypedMap<sm_be_conn_key, uint64_t>> conns_;
  std::optional<agent::MapSync> sync_;

  // The backend id of `b` in the live revision of `fe`.
  uint32_t IdOf(const model::Frontend& fe, const model::Backend& b) {
    sm_svc svc = Service(fe);
    auto entries = backends_->Dump();
    EXPECT_TRUE(entries.ok());
    for (const auto& [key, be] : *entries) {
      if (key.svc_id == svc.svc_id && key.rev == svc.rev && Name(be) == Name(b)) {
        return key.backend_id;
      }
    }
    ADD_FAILURE() << "no backend " << Name(b) << " in " << fe;
    return 0;
  }
  void SetConns(const model::Frontend& fe, const model::Backend& b, uint64_t count) {
    ASSERT_TRUE(
        conns_->Update({.svc_id = Service(fe).svc_id, .backend_id = IdOf(fe, b)}, count).ok());
  }
  uint64_t Conns(const model::Frontend& fe, const model::Backend& b) {
    absl::StatusOr<uint64_t> c =
        conns_->Lookup({.svc_id = Service(fe).svc_id, .backend_id = IdOf(fe, b)});
    return c.ok() ? *c : 0;
  }
};

std::vector<model::Backend> ThreeBackends() {
  return {MakeBackend("10.0.0.1", 8080), MakeBackend("10.0.0.2", 8080),
          MakeBackend("10.0.0.3", 8080)};
}

TEST_F(LbSelectTest, OnlyAProgrammedFrontendIsAService) {
  const model::Frontend fe = Fe("10.96.0.1", 80, Protocol::kTcp);
  ASSERT_NO_FATAL_FAILURE(Apply({Svc(fe, ThreeBackends())}));
  sm_svc_key v6_same_bytes = agent::ToSvcKey(fe);
  v6_same_bytes.family = SM_FAMILY_V6;

  struct Case {
    std::string name;
    sm_svc_key key;
    int32_t result;
  };
  const std::vector<Case> cases = {
      {"the frontend itself", agent::ToSvcKey(fe), SM_LB_TEST_OK},
      {"unknown VIP", agent::ToSvcKey(Fe("10.96.0.2", 80, Protocol::kTcp)), SM_LB_TEST_NOT_SERVICE},
      {"other port", agent::ToSvcKey(Fe("10.96.0.1", 81, Protocol::kTcp)), SM_LB_TEST_NOT_SERVICE},
      {"other protocol", agent::ToSvcKey(Fe("10.96.0.1", 80, Protocol::kUdp)),
       SM_LB_TEST_NOT_SERVICE},
      {"other family, same address bytes", v6_same_bytes, SM_LB_TEST_NOT_SERVICE},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<uint64_t> before = Counters();
    sm_lb_test_ctx got = Run(c.key, Flow{});
    EXPECT_EQ(got.result, c.result) << ResultName(got.result);
    if (c.result == SM_LB_TEST_NOT_SERVICE) {
      // Not ours: the caller is left alone, the backend untouched, and nothing is counted.
      EXPECT_TRUE(bpf::AbiEqual(got.out, sm_backend{})) << Name(got.out);
      EXPECT_EQ(Counters(), before);
    }
  }
}

TEST_F(LbSelectTest, EmptyBackendSetIsRefused) {
  const model::Frontend random = Fe("10.96.0.1");
  const model::Frontend maglev = Fe("10.96.0.2");
  const model::Frontend sticky = Fe("10.96.0.3");
  const model::Frontend drained = Fe("10.96.0.4");
  ASSERT_NO_FATAL_FAILURE(
      Apply({Svc(random, {}), Svc(maglev, {}, LbAlgorithm::kMaglev),
             WithAffinity(Svc(sticky, {}), 10), Svc(drained, ThreeBackends())}));
  // A service whose last backend went away: a new revision with an empty table.
  ASSERT_NO_FATAL_FAILURE(Apply({Svc(random, {}), Svc(maglev, {}, LbAlgorithm::kMaglev),
                                 WithAffinity(Svc(sticky, {}), 10), Svc(drained, {})}));
  ASSERT_EQ(Service(drained).rev, 2u);

  for (const model::Frontend& fe : {random, maglev, sticky, drained}) {
    SCOPED_TRACE(fe.ToString());
    for (uint32_t draw : {0u, 1u, 0xffffffffu}) {
      sm_lb_test_ctx got = Run(fe, Flow{.rand = draw, .hash = draw});
      EXPECT_EQ(got.result, SM_LB_TEST_NO_BACKEND) << ResultName(got.result);
      EXPECT_TRUE(bpf::AbiEqual(got.out, sm_backend{})) << Name(got.out);
    }
  }
  // Refusing is not a reason to remember the client.
  sm_aff_key key{.netns_cookie = kClientA, .svc_id = Service(sticky).svc_id, .pad = 0};
  EXPECT_TRUE(absl::IsNotFound(affinity_->Lookup(key).status()));
  EXPECT_EQ(Counter(SM_CNT_INCONSISTENT), 0u);
}

// The draws that exercise a table of `size` slots: every slot, once directly and once from far
// above the table, plus the top of the range.
std::vector<uint32_t> Draws(uint32_t size) {
  std::vector<uint32_t> draws;
  for (uint32_t slot = 0; slot < size; ++slot) {
    draws.push_back(slot);
    draws.push_back(slot + size * 1'000'003u);
  }
  draws.push_back(0xffffffffu);
  draws.push_back(0x80000000u);
  return draws;
}

TEST_F(LbSelectTest, RandomPicksTableSlotRandModSize) {
  struct Case {
    std::string name;
    model::ServiceEntry entry;
    uint32_t lut_size;                    // what the agent is expected to have written
    std::map<std::string, size_t> slots;  // backend -> slots it owns; empty = don't check
  };
  const std::vector<Case> cases = {
      {"uniform, 3 backends",
       Svc(Fe("10.96.0.1"), ThreeBackends()),
       3,
       {{"10.0.0.1:8080", 1}, {"10.0.0.2:8080", 1}, {"10.0.0.3:8080", 1}}},
      // 251 slots apportioned 1:3 by largest remainder: 62.75 -> 63, 188.25 -> 188.
      {"weighted 1:3",
       Svc(Fe("10.96.0.2"), {MakeBackend("10.0.0.1", 8080, 1), MakeBackend("10.0.0.2", 8080, 3)}),
       kTableSize,
       {{"10.0.0.1:8080", 63}, {"10.0.0.2:8080", 188}}},
  };
  std::vector<model::ServiceEntry> all;
  for (const Case& c : cases) all.push_back(c.entry);
  ASSERT_NO_FATAL_FAILURE(Apply(all));

  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const model::Frontend& fe = c.entry.frontend;
    std::vector<sm_backend> table = LiveTable(fe);
    ASSERT_EQ(table.size(), c.lut_size);
    std::map<std::string, size_t> owned;
    for (const sm_backend& be : table) owned[Name(be)]++;
    EXPECT_EQ(owned, c.slots);

    std::set<std::string> chosen;
    for (uint32_t r : Draws(c.lut_size)) {
      SCOPED_TRACE(::testing::Message() << "rand " << r);
      const sm_backend& want = table[r % table.size()];
      // The flow hash is Maglev's key; a random service must ignore it.
      for (uint32_t hash : {0u, r * 2654435761u}) {
        sm_lb_test_ctx got = Run(fe, Flow{.rand = r, .hash = hash});
        ASSERT_NO_FATAL_FAILURE(ExpectBackend(got, want));
        chosen.insert(Name(got.out));
      }
    }
    EXPECT_EQ(chosen.size(), c.entry.backends.size()) << "every backend is reachable";
  }
  EXPECT_EQ(Counter(SM_CNT_INCONSISTENT), 0u);
  EXPECT_EQ(Counter(SM_CNT_REV_RETRY), 0u);
}

TEST_F(LbSelectTest, MaglevFollowsTheFlowHashOnly) {
  const model::Frontend fe = Fe("10.96.0.1");
  ASSERT_NO_FATAL_FAILURE(Apply({Svc(fe, ThreeBackends(), LbAlgorithm::kMaglev)}));
  std::vector<sm_backend> table = LiveTable(fe);
  ASSERT_EQ(table.size(), kTableSize);

  std::set<std::string> chosen;
  for (uint32_t hash : Draws(kTableSize)) {
    SCOPED_TRACE(::testing::Message() << "hash " << hash);
    const sm_backend& want = table[hash % table.size()];
    // Same hash, different random draws: the same backend every time.
    for (uint32_t r : {0u, 1u, hash + 1, 0xdeadbeefu}) {
      sm_lb_test_ctx got = Run(fe, Flow{.rand = r, .hash = hash});
      ASSERT_NO_FATAL_FAILURE(ExpectBackend(got, want));
      chosen.insert(Name(got.out));
    }
  }
  EXPECT_EQ(chosen.size(), 3u) << "every backend owns some slots";
}

TEST_F(LbSelectTest, AffinityKeepsAClientOnItsBackendUntilStale) {
  const model::Frontend fe = Fe("10.96.0.1");
  const std::vector<model::Backend> three = ThreeBackends();
  ASSERT_NO_FATAL_FAILURE(Apply({WithAffinity(Svc(fe, three), 10)}));
  std::vector<sm_backend> table = LiveTable(fe);
  ASSERT_EQ(table.size(), 3u);  // uniform: one slot per backend, so rand 0 and 1 differ
  const sm_svc svc = Service(fe);
  const sm_aff_key client_a{.netns_cookie = kClientA, .svc_id = svc.svc_id, .pad = 0};
  auto hits = [&] { return Counter(SM_CNT_AFFINITY_HIT); };
  auto stale = [&] { return Counter(SM_CNT_AFFINITY_STALE); };

  // First connect: rand picks X, and the choice is recorded with its time.
  sm_lb_test_ctx got = Run(fe, Flow{.rand = 0, .now_ns = kT0});
  ASSERT_NO_FATAL_FAILURE(ExpectBackend(got, table[0]));
  const std::string x = Name(got.out);
  absl::StatusOr<sm_aff_val> entry = affinity_->Lookup(client_a);
  ASSERT_TRUE(entry.ok()) << entry.status();
  EXPECT_EQ(entry->last_used_ns, kT0);
  EXPECT_EQ(hits(), 0u);
  EXPECT_EQ(stale(), 0u);

  // One second later another draw would pick Y; the client stays on X and the entry is refreshed.
  uint64_t now = kT0 + kSecond;
  got = Run(fe, Flow{.rand = 1, .now_ns = now});
  ASSERT_NO_FATAL_FAILURE(ExpectBackend(got, table[0]));
  EXPECT_EQ(hits(), 1u);
  EXPECT_EQ(stale(), 0u);
  EXPECT_EQ(affinity_->Lookup(client_a)->last_used_ns, now);

  // Affinity is per client: another namespace follows its own draw.
  got = Run(fe, Flow{.rand = 1, .client = kClientB, .now_ns = now});
  ASSERT_NO_FATAL_FAILURE(ExpectBackend(got, table[1]));
  EXPECT_EQ(hits(), 1u);

  // 11 s after the last use (timeout 10 s) the entry is stale: the draw decides, and is recorded.
  now += 11 * kSecond;
  got = Run(fe, Flow{.rand = 1, .now_ns = now});
  ASSERT_NO_FATAL_FAILURE(ExpectBackend(got, table[1]));
  const std::string y = Name(got.out);
  ASSERT_NE(y, x);
  EXPECT_EQ(stale(), 1u);
  EXPECT_EQ(hits(), 1u);
  now += kSecond;
  got = Run(fe, Flow{.rand = 2, .now_ns = now});
  ASSERT_NO_FATAL_FAILURE(ExpectBackend(got, table[1]));
  EXPECT_EQ(hits(), 2u);

  // Y leaves the set. The entry is fresh but names a backend the new revision lacks: stale again,
  // and the client moves to whatever the new table says.
  std::vector<model::Backend> without_y;
  for (const model::Backend& b : three) {
    if (Name(b) != y) without_y.push_back(b);
  }
  ASSERT_EQ(without_y.size(), 2u);
  ASSERT_NO_FATAL_FAILURE(Apply({WithAffinity(Svc(fe, without_y), 10)}));
  std::vector<sm_backend> table2 = LiveTable(fe);
  ASSERT_EQ(table2.size(), 2u);
  now += kSecond;
  got = Run(fe, Flow{.rand = 1, .now_ns = now});
  ASSERT_EQ(got.result, SM_LB_TEST_OK) << ResultName(got.result);
  EXPECT_NE(Name(got.out), y);
  EXPECT_TRUE(bpf::AbiEqual(got.out, table2[1])) << Name(got.out) << " vs " << Name(table2[1]);
  EXPECT_EQ(stale(), 2u);
  EXPECT_EQ(hits(), 2u);
  // ... and sticks to it from then on.
  const sm_backend z = got.out;
  now += kSecond;
  got = Run(fe, Flow{.rand = 0, .now_ns = now});
  ASSERT_NO_FATAL_FAILURE(ExpectBackend(got, z));
  EXPECT_EQ(hits(), 3u);
  EXPECT_EQ(stale(), 2u);
}

// Backend ids are stable per address, so a new revision that keeps the client's backend keeps the
// client there, even when the new table would send its draw elsewhere.
TEST_F(LbSelectTest, AffinitySurvivesARevisionThatKeepsTheBackend) {
  const model::Frontend fe = Fe("10.96.0.1");
  std::vector<model::Backend> backends = ThreeBackends();
  ASSERT_NO_FATAL_FAILURE(Apply({WithAffinity(Svc(fe, backends), 10)}));
  std::vector<sm_backend> table = LiveTable(fe);
  sm_lb_test_ctx got = Run(fe, Flow{.rand = 2, .now_ns = kT0});
  ASSERT_NO_FATAL_FAILURE(ExpectBackend(got, table[2]));
  const sm_backend x = got.out;

  backends.push_back(MakeBackend("10.0.0.4", 8080));
  ASSERT_NO_FATAL_FAILURE(Apply({WithAffinity(Svc(fe, backends), 10)}));
  ASSERT_EQ(Service(fe).rev, 2u);
  std::vector<sm_backend> table2 = LiveTable(fe);
  ASSERT_EQ(table2.size(), 4u);
  for (uint32_t r = 0; r < 4; ++r) {
    SCOPED_TRACE(::testing::Message() << "rand " << r);
    got = Run(fe, Flow{.rand = r, .now_ns = kT0 + (r + 1) * kSecond});
    ASSERT_NO_FATAL_FAILURE(ExpectBackend(got, x));
  }
  EXPECT_EQ(Counter(SM_CNT_AFFINITY_HIT), 4u);
  EXPECT_EQ(Counter(SM_CNT_AFFINITY_STALE), 0u);
}

// An entry missing at a stable revision is not a swap in progress: the program gives up, counts
// it, and the hook fails open (the connect proceeds to the VIP untranslated).
TEST_F(LbSelectTest, InconsistentMapsFailOpenAndAreCounted) {
  struct Case {
    std::string name;
    model::Frontend frontend;
    // Removes what the draw rand = 1 needs from the live revision.
    std::function<absl::Status(const sm_svc&)> corrupt;
  };
  const std::vector<Case> cases = {
      {"LUT slot deleted", Fe("10.96.0.1"),
       [&](const sm_svc& svc) {
         return lut_->Delete({.svc_id = svc.svc_id, .rev = svc.rev, .slot = 1});
       }},
      {"backend entry deleted", Fe("10.96.0.2"),
       [&](const sm_svc& svc) -> absl::Status {
         absl::StatusOr<uint32_t> id =
             lut_->Lookup({.svc_id = svc.svc_id, .rev = svc.rev, .slot = 1});
         if (!id.ok()) return id.status();
         return backends_->Delete({.svc_id = svc.svc_id, .rev = svc.rev, .backend_id = *id});
       }},
  };
  std::vector<model::ServiceEntry> all;
  for (const Case& c : cases) all.push_back(Svc(c.frontend, ThreeBackends()));
  ASSERT_NO_FATAL_FAILURE(Apply(all));

  uint64_t inconsistent = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<sm_backend> table = LiveTable(c.frontend);
    ASSERT_EQ(table.size(), 3u);
    ASSERT_TRUE(c.corrupt(Service(c.frontend)).ok());

    sm_lb_test_ctx got = Run(c.frontend, Flow{.rand = 1});
    EXPECT_EQ(got.result, SM_LB_TEST_INCONSISTENT) << ResultName(got.result);
    EXPECT_TRUE(bpf::AbiEqual(got.out, sm_backend{})) << Name(got.out);
    EXPECT_EQ(Counter(SM_CNT_INCONSISTENT), ++inconsistent);
    // The revision did not change, so there was nothing to retry.
    EXPECT_EQ(Counter(SM_CNT_REV_RETRY), 0u);
    // Slots that are intact still work.
    got = Run(c.frontend, Flow{.rand = 0});
    ASSERT_NO_FATAL_FAILURE(ExpectBackend(got, table[0]));
    EXPECT_EQ(Counter(SM_CNT_INCONSISTENT), inconsistent);
  }
}

// MapSync publishes a new backend set as a new revision and retires the old one; the program
// follows the service entry to the new revision and never sees the old set again.
TEST_F(LbSelectTest, RevisionSwapIsSeen) {
  const model::Frontend fe = Fe("10.96.0.1");
  const std::vector<model::Backend> set_a = {MakeBackend("10.0.1.1", 8080),
                                             MakeBackend("10.0.1.2", 8080)};
  const std::vector<model::Backend> set_b = {
      MakeBackend("10.0.2.1", 9090), MakeBackend("10.0.2.2", 9090), MakeBackend("10.0.2.3", 9090)};
  ASSERT_NO_FATAL_FAILURE(Apply({Svc(fe, set_a)}));
  const sm_svc before = Service(fe);
  ASSERT_NO_FATAL_FAILURE(Apply({Svc(fe, set_b)}));
  const sm_svc after = Service(fe);
  EXPECT_EQ(after.svc_id, before.svc_id);
  EXPECT_EQ(after.rev, before.rev + 1);

  // The old revision is gone from both tables.
  absl::StatusOr<std::vector<std::pair<sm_lut_key, uint32_t>>> lut = lut_->Dump();
  ASSERT_TRUE(lut.ok()) << lut.status();
  for (const auto& [key, id] : *lut) EXPECT_NE(key.rev, before.rev) << "slot " << key.slot;
  absl::StatusOr<std::vector<std::pair<sm_be_key, sm_backend>>> bes = backends_->Dump();
  ASSERT_TRUE(bes.ok()) << bes.status();
  for (const auto& [key, be] : *bes) EXPECT_NE(key.rev, before.rev) << Name(be);

  std::set<std::string> in_a;
  for (const model::Backend& b : set_a) in_a.insert(Name(b));
  std::vector<sm_backend> table = LiveTable(fe);
  ASSERT_EQ(table.size(), set_b.size());
  std::set<std::string> chosen;
  for (uint32_t r : Draws(table.size())) {
    SCOPED_TRACE(::testing::Message() << "rand " << r);
    sm_lb_test_ctx got = Run(fe, Flow{.rand = r});
    ASSERT_NO_FATAL_FAILURE(ExpectBackend(got, table[r % table.size()]));
    EXPECT_FALSE(in_a.contains(Name(got.out))) << Name(got.out) << " is from the old set";
    chosen.insert(Name(got.out));
  }
  EXPECT_EQ(chosen.size(), set_b.size());
  // A clean swap between two runs needs no retry and is not an inconsistency.
  EXPECT_EQ(Counter(SM_CNT_REV_RETRY), 0u);
  EXPECT_EQ(Counter(SM_CNT_INCONSISTENT), 0u);
}

// Least-connections compares live counts per unit of weight: 3 connections on a weight-2 backend
// (1.5 each) are fewer than 2 on a weight-1 backend.
TEST_F(LbSelectTest, LeastConnectionsPicksFewestConnectionsPerWeight) {
  const model::Frontend fe = Fe("10.96.0.1");
  const std::vector<model::Backend> bes = {MakeBackend("10.0.0.1", 8080, 1),
                                           MakeBackend("10.0.0.2", 8080, 1),
                                           MakeBackend("10.0.0.3", 8080, 2)};
  ASSERT_NO_FATAL_FAILURE(Apply({Svc(fe, bes, LbAlgorithm::kLeastConnections)}));
  ASSERT_NO_FATAL_FAILURE(SetConns(fe, bes[0], 3));
  ASSERT_NO_FATAL_FAILURE(SetConns(fe, bes[1], 1));
  ASSERT_NO_FATAL_FAILURE(SetConns(fe, bes[2], 3));
  for (uint32_t rand : {0u, 1u, 7u, 0xffffffffu}) {
    sm_lb_test_ctx got = Run(fe, Flow{.rand = rand});
    ASSERT_EQ(got.result, SM_LB_TEST_OK) << ResultName(got.result);
    EXPECT_EQ(Name(got.out), Name(bes[1])) << "rand " << rand;
    EXPECT_EQ(got.held_backend_id, 0u) << "not a tracked call: no count taken";
  }
  ASSERT_NO_FATAL_FAILURE(SetConns(fe, bes[1], 2));
  sm_lb_test_ctx got = Run(fe, Flow{.rand = 0});
  ASSERT_EQ(got.result, SM_LB_TEST_OK);
  EXPECT_EQ(Name(got.out), Name(bes[2])) << "1.5 per unit of weight beats 2";
}

// Ties are drawn in proportion to weight: with no connections anywhere, every backend can win,
// and the weight-2 backend about twice as often.
TEST_F(LbSelectTest, LeastConnectionsBreaksTiesByWeightedRandomDraw) {
  const model::Frontend fe = Fe("10.96.0.1");
  const std::vector<model::Backend> bes = {MakeBackend("10.0.0.1", 8080, 1),
                                           MakeBackend("10.0.0.2", 8080, 1),
                                           MakeBackend("10.0.0.3", 8080, 2)};
  ASSERT_NO_FATAL_FAILURE(Apply({Svc(fe, bes, LbAlgorithm::kLeastConnections)}));
  std::map<std::string, int> seen;
  for (uint32_t rand = 0; rand < 400; ++rand) {
    sm_lb_test_ctx got = Run(fe, Flow{.rand = rand});
    ASSERT_EQ(got.result, SM_LB_TEST_OK) << ResultName(got.result);
    seen[Name(got.out)]++;
  }
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[Name(bes[2])], 200) << "weight 2 of 4: rand % tie_weight decides exactly";
}

// A tracked call (TCP connect) takes a count on the backend it returns; at the limit the breaker
// moves to the least-loaded backend under it, and with none left refuses without taking any.
TEST_F(LbSelectTest, ConnectionLimitFallsBackThenRefuses) {
  const model::Frontend fe = Fe("10.96.0.1");
  const std::vector<model::Backend> bes = ThreeBackends();
  model::ServiceEntry e = Svc(fe, bes);
  e.max_connections_per_backend = 2;
  ASSERT_NO_FATAL_FAILURE(Apply({e}));
  std::vector<sm_backend> table = LiveTable(fe);
  ASSERT_EQ(table.size(), 3u);
  ASSERT_NO_FATAL_FAILURE(SetConns(fe, bes[0], 2));
  ASSERT_NO_FATAL_FAILURE(SetConns(fe, bes[1], 1));
  ASSERT_NO_FATAL_FAILURE(SetConns(fe, bes[2], 0));

  // The draw that lands on the full bes[0] falls back to the least loaded backend, bes[2].
  uint32_t full_slot = 0;
  while (Name(table[full_slot]) != Name(bes[0])) ++full_slot;
  sm_lb_test_ctx got = Run(fe, Flow{.rand = full_slot, .track = true});
  ASSERT_EQ(got.result, SM_LB_TEST_OK) << ResultName(got.result);
  EXPECT_EQ(Name(got.out), Name(bes[2]));
  EXPECT_EQ(got.held_backend_id, IdOf(fe, bes[2]));
  EXPECT_EQ(Conns(fe, bes[2]), 1u);
  EXPECT_EQ(Conns(fe, bes[0]), 2u) << "the full backend's count is untouched";

  ASSERT_NO_FATAL_FAILURE(SetConns(fe, bes[1], 2));
  ASSERT_NO_FATAL_FAILURE(SetConns(fe, bes[2], 2));
  uint64_t refused = Counter(SM_CNT_CONN_LIMIT);
  for (uint32_t rand = 0; rand < 3; ++rand) {
    got = Run(fe, Flow{.rand = rand, .track = true});
    EXPECT_EQ(got.result, SM_LB_TEST_OVER_LIMIT) << ResultName(got.result);
    EXPECT_EQ(got.held_backend_id, 0u);
  }
  for (const model::Backend& b : bes) EXPECT_EQ(Conns(fe, b), 2u) << Name(b);
  EXPECT_EQ(Counter(SM_CNT_CONN_LIMIT), refused) << "the hook counts refusals, not selection";
  // An untracked call (UDP, sendmsg) never counts, so the limit does not apply to it.
  got = Run(fe, Flow{.rand = 0});
  EXPECT_EQ(got.result, SM_LB_TEST_OK) << ResultName(got.result);
}

}  // namespace
}  // namespace sockmesh::testing
