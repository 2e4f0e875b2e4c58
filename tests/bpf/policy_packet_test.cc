// SPDX-License-Identifier: Apache-2.0
// The destination-side policy check and the flow identity record (sm_skb_ingress / sm_skb_egress)
// run on crafted packets with BPF_PROG_TEST_RUN: header chains no socket option can build (longer
// than the parser's bound, ESP, non-first fragments, truncated headers). Nothing is attached. A
// test run gives the packet a dummy socket of the calling process's cgroup, so the test joins a
// throwaway cgroup and makes that cgroup a policy endpoint (or a workload) in the maps.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "sm_sock_lb.skel.h"
#include "sockmesh/abi.h"
#include "sockmesh/consts.h"
#include "tests/support/scoped_cgroup.h"
#include "userspace/agent/cgroup.h"
#include "userspace/bpf/typed_map.h"

namespace sockmesh::testing {
namespace {

constexpr uint8_t kHopByHop = 0;
constexpr uint8_t kTcp = 6;
constexpr uint8_t kUdp = 17;
constexpr uint8_t kRouting = 43;
constexpr uint8_t kFragment = 44;
constexpr uint8_t kEsp = 50;
constexpr uint8_t kAh = 51;
constexpr uint8_t kIcmpv6 = 58;
constexpr uint8_t kDestinationOptions = 60;
constexpr uint16_t kSport = 40000;
constexpr uint16_t kDport = 7000;
constexpr int kPass = 1;
constexpr int kDrop = 0;
// One more extension header than lib/packet.h walks.
constexpr size_t kTooManyHeaders = SM_IPV6_MAX_EXT_HDRS + 1;

void Put16(std::vector<uint8_t>& b, uint16_t v) {
  b.push_back(v >> 8);
  b.push_back(v & 0xff);
}

// The transport header of a packet: TCP SYN, UDP datagram, ICMPv6 echo request, or an opaque
// payload (ESP).
std::vector<uint8_t> Transport(uint8_t proto) {
  std::vector<uint8_t> l4;
  if (proto == kTcp || proto == kUdp) {
    Put16(l4, kSport);
    Put16(l4, kDport);
  }
  if (proto == kTcp) {
    l4.resize(20, 0);
    l4[12] = 5 << 4;  // data offset: 20 bytes
    l4[13] = 0x02;    // SYN
  } else if (proto == kUdp) {
    Put16(l4, 8);
    Put16(l4, 0);
  } else if (proto == kIcmpv6) {
    l4 = {128, 0, 0, 0, 0, 1, 0, 1};
  } else {
    l4.resize(16, 0xab);
  }
  return l4;
}

// An extension header of `type` leading to `next`: 8 bytes (AH: 12, its length counts 4-byte
// words minus 2). `fragment_offset` is in 8-byte units.
std::vector<uint8_t> Extension(uint8_t type, uint8_t next, uint16_t fragment_offset = 0) {
  std::vector<uint8_t> h(type == kAh ? 12 : 8, 0);
  h[0] = next;
  if (type == kAh) {
    h[1] = 1;
  } else if (type == kFragment) {
    h[2] = static_cast<uint8_t>(fragment_offset >> 5);
    h[3] = static_cast<uint8_t>((fragment_offset << 3) & 0xf8);
  } else {
    h[2] = 1;  // PadN option filling the header
    h[3] = 4;
  }
  return h;
}

// How a crafted packet departs from a well-formed one.
struct Damage {
  std::optional<size_t> truncate_to = std::nullopt;  // bytes kept after the IPv6 header
  uint16_t fragment_offset = 0;                      // of every Fragment header, in 8-byte units
};

// What BPF_PROG_TEST_RUN takes for cgroup_skb: an Ethernet header (the kernel pulls it and sets
// skb->protocol from its type), then the IPv6 packet [::1]:40000 -> [::1]:7000 with the extension
// headers `chain` in front of `proto`.
std::vector<uint8_t> Ipv6Packet(const std::vector<uint8_t>& chain, uint8_t proto,
                                const Damage& damage = {}) {
  const std::optional<size_t>& truncate_to = damage.truncate_to;
  std::vector<uint8_t> rest;
  for (size_t i = 0; i < chain.size(); ++i) {
    std::vector<uint8_t> h =
        Extension(chain[i], i + 1 < chain.size() ? chain[i + 1] : proto, damage.fragment_offset);
    rest.insert(rest.end(), h.begin(), h.end());
  }
  std::vector<uint8_t> l4 = Transport(proto);
  rest.insert(rest.end(), l4.begin(), l4.end());
  if (truncate_to && *truncate_to < rest.size()) rest.resize(*truncate_to);

  std::vector<uint8_t> p(12, 0);  // Ethernet addresses
  Put16(p, 0x86DD);
  p.push_back(0x60);
  p.resize(p.size() + 3, 0);
  Put16(p, static_cast<uint16_t>(rest.size()));
  p.push_back(chain.empty() ? proto : chain[0]);
  p.push_back(64);  // hop limit
  for (int addr = 0; addr < 2; ++addr) {
    p.resize(p.size() + 15, 0);
    p.push_back(1);  // ::1
  }
  p.insert(p.end(), rest.begin(), rest.end());
  return p;
}

// IPv4 127.0.0.1:40000 -> 127.0.0.1:7000 over `proto`, with AH in front when `ah`.
std::vector<uint8_t> Ipv4Packet(uint8_t proto, bool ah = false) {
  std::vector<uint8_t> rest;
  if (ah) rest = Extension(kAh, proto);
  std::vector<uint8_t> l4 = Transport(proto);
  rest.insert(rest.end(), l4.begin(), l4.end());
  std::vector<uint8_t> p(12, 0);
  Put16(p, 0x0800);
  p.push_back(0x45);
  p.push_back(0);
  Put16(p, static_cast<uint16_t>(20 + rest.size()));
  p.resize(p.size() + 4, 0);  // id, flags, fragment offset
  p.push_back(64);
  p.push_back(ah ? kAh : proto);
  Put16(p, 0);  // checksum: not checked on this path
  for (int addr = 0; addr < 2; ++addr) p.insert(p.end(), {127, 0, 0, 1});
  p.insert(p.end(), rest.begin(), rest.end());
  return p;
}

std::vector<uint8_t> Repeat(uint8_t type, size_t n) { return std::vector<uint8_t>(n, type); }

class PolicyPacketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<ScopedCgroup> cg = ScopedCgroup::Create();
    ASSERT_TRUE(cg.ok()) << cg.status();
    cgroup_.emplace(*std::move(cg));
    ASSERT_TRUE(cgroup_->Join().ok());
    absl::StatusOr<uint64_t> id = agent::CgroupId(cgroup_->path());
    ASSERT_TRUE(id.ok()) << id.status();
    cgroup_id_ = *id;
    skel_.reset(sm_sock_lb__open_and_load());
    ASSERT_TRUE(skel_) << "load sm_sock_lb: " << std::strerror(errno);
  }

  // Makes the test's cgroup a policy endpoint; `deny_all`: an ALLOW policy with no rows selects it.
  void MakeEndpoint(bool deny_all) {
    sm_policy_endpoint ep{.endpoint_id = 1,
                          .policy_set_id = 1,
                          .flags = deny_all ? static_cast<uint32_t>(SM_POLICY_F_HAS_ALLOW) : 0u};
    ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(skel_->maps.sm_cgroup_policy_endpoint_v1),
                                  &cgroup_id_, &ep, BPF_ANY),
              0)
        << std::strerror(errno);
  }

  int Run(const bpf_program* prog, const std::vector<uint8_t>& packet) {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet.data(),
                .data_size_in = static_cast<uint32_t>(packet.size()), .repeat = 1);
    int err = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts);
    EXPECT_EQ(err, 0) << "BPF_PROG_TEST_RUN: " << std::strerror(errno);
    return err == 0 ? static_cast<int>(opts.retval) : -1;
  }
  int Ingress(const std::vector<uint8_t>& packet) {
    return Run(skel_->progs.sm_skb_ingress, packet);
  }

  uint64_t Counter(uint32_t index) {
    absl::StatusOr<std::vector<uint64_t>> c =
        bpf::ReadPerCpuCounters(bpf_map__fd(skel_->maps.sm_counters_v1), SM_CNT_MAX);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? (*c)[index] : ~0ULL;
  }

  struct Deleter {
    void operator()(sm_sock_lb* s) const { sm_sock_lb__destroy(s); }
  };
  std::optional<ScopedCgroup> cgroup_;
  uint64_t cgroup_id_ = 0;
  std::unique_ptr<sm_sock_lb, Deleter> skel_;
};

TEST_F(PolicyPacketTest, ExtensionHeadersAreWalkedToTheTcpAndUdpPorts) {
  MakeEndpoint(/*deny_all=*/true);
  const uint64_t dropped = Counter(SM_CNT_POLICY_DROPPED_DEST);
  // Without a header (the baseline), then every kind the parser walks, and a chain at the bound.
  const std::vector<std::vector<uint8_t>> chains = {
      {},
      {kHopByHop},
      {kDestinationOptions},
      {kRouting},
      {kFragment},
      {kAh},
      {kHopByHop, kDestinationOptions, kRouting, kFragment, kAh, kDestinationOptions},
      Repeat(kDestinationOptions, SM_IPV6_MAX_EXT_HDRS),
  };
  for (const std::vector<uint8_t>& chain : chains) {
    SCOPED_TRACE(::testing::Message() << chain.size() << " extension headers");
    EXPECT_EQ(Ingress(Ipv6Packet(chain, kTcp)), kDrop);
    EXPECT_EQ(Ingress(Ipv6Packet(chain, kUdp)), kDrop);
  }
  EXPECT_EQ(Counter(SM_CNT_POLICY_DROPPED_DEST), dropped + 2 * chains.size());
  EXPECT_EQ(Counter(SM_CNT_POLICY_DROPPED_UNPARSED), 0u);
  EXPECT_EQ(Ingress(Ipv4Packet(kTcp, /*ah=*/true)), kDrop);

  // An endpoint that allows everything: the same packets pass, so the headers are not the reason.
  MakeEndpoint(/*deny_all=*/false);
  for (const std::vector<uint8_t>& chain : chains) {
    EXPECT_EQ(Ingress(Ipv6Packet(chain, kTcp)), kPass);
  }
}

TEST_F(PolicyPacketTest, UnreadablePacketsToAPolicyEndpointAreDroppedAndCounted) {
  MakeEndpoint(/*deny_all=*/false);  // even an endpoint that would allow: we cannot tell the ports
  const uint64_t before = Counter(SM_CNT_POLICY_DROPPED_UNPARSED);
  const std::vector<std::pair<std::string, std::vector<uint8_t>>> unreadable = {
      {"longer chain than the bound",
       Ipv6Packet(Repeat(kDestinationOptions, kTooManyHeaders), kTcp)},
      {"ICMPv6 behind a longer chain", Ipv6Packet(Repeat(kHopByHop, kTooManyHeaders), kIcmpv6)},
      {"ESP", Ipv6Packet({}, kEsp)},
      {"ESP after a header", Ipv6Packet({kDestinationOptions}, kEsp)},
      {"IPv4 ESP", Ipv4Packet(kEsp)},
      {"non-first fragment", Ipv6Packet({kFragment}, kTcp, {.fragment_offset = 1})},
      {"truncated extension header", Ipv6Packet({kDestinationOptions}, kTcp, {.truncate_to = 2})},
      {"truncated TCP header", Ipv6Packet({kDestinationOptions}, kTcp, {.truncate_to = 8 + 10})},
  };
  for (const auto& [name, packet] : unreadable) {
    SCOPED_TRACE(name);
    EXPECT_EQ(Ingress(packet), kDrop);
  }
  EXPECT_EQ(Counter(SM_CNT_POLICY_DROPPED_UNPARSED), before + unreadable.size());

  // No policy selects the receiving socket's cgroup: everything passes, as before.
  uint64_t key = cgroup_id_;
  ASSERT_EQ(bpf_map_delete_elem(bpf_map__fd(skel_->maps.sm_cgroup_policy_endpoint_v1), &key), 0);
  for (const auto& [name, packet] : unreadable) {
    SCOPED_TRACE(name);
    EXPECT_EQ(Ingress(packet), kPass);
  }
  EXPECT_EQ(Counter(SM_CNT_POLICY_DROPPED_UNPARSED), before + unreadable.size());
}

TEST_F(PolicyPacketTest, IcmpAndNonIpPassAPolicyEndpoint) {
  MakeEndpoint(/*deny_all=*/true);
  EXPECT_EQ(Ingress(Ipv6Packet({}, kIcmpv6)), kPass);
  EXPECT_EQ(Ingress(Ipv6Packet({kHopByHop}, kIcmpv6)), kPass);  // e.g. MLD carries Hop-by-Hop
  EXPECT_EQ(Ingress(Ipv4Packet(1)), kPass);                     // ICMP
  std::vector<uint8_t> arp(12, 0);
  Put16(arp, 0x0806);
  arp.resize(14 + 28, 0);
  EXPECT_EQ(Ingress(arp), kPass);
  EXPECT_EQ(Counter(SM_CNT_POLICY_DROPPED_UNPARSED), 0u);
  EXPECT_EQ(Counter(SM_CNT_POLICY_DROPPED_DEST), 0u);
}

// The egress side finds the same flow behind extension headers, so the destination on this node
// knows which local workload opened it.
TEST_F(PolicyPacketTest, EgressRecordsTheFlowBehindExtensionHeaders) {
  sm_identity id{.identity = 300, .flags = SM_IDENTITY_F_LOCAL};
  ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(skel_->maps.sm_cgroup_identity_v1), &cgroup_id_, &id,
                                BPF_ANY),
            0);
  EXPECT_EQ(Run(skel_->progs.sm_skb_egress, Ipv6Packet({kHopByHop, kDestinationOptions}, kTcp)),
            kPass);
  sm_flow_key flow{};
  flow.saddr[3] = htonl(1);
  flow.daddr[3] = htonl(1);
  flow.sport = htons(kSport);
  flow.dport = htons(kDport);
  flow.proto = kTcp;
  flow.family = SM_FAMILY_V6;
  sm_identity got{};
  ASSERT_EQ(bpf_map_lookup_elem(bpf_map__fd(skel_->maps.sm_flow_identity_v1), &flow, &got), 0)
      << "no flow recorded: " << std::strerror(errno);
  EXPECT_EQ(got.identity, 300u);
}

}  // namespace
}  // namespace sockmesh::testing
