// SPDX-License-Identifier: Apache-2.0
#include "control_plane/model/service_model.h"

#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sockmesh::model {
namespace {

using ::testing::HasSubstr;

IpAddress Ip(std::string_view text) {
  absl::StatusOr<IpAddress> ip = IpAddress::Parse(text);
  EXPECT_TRUE(ip.ok()) << ip.status();
  return ip.value_or(IpAddress{});
}

TEST(IpAddressTest, ParsesIpv4IntoFirstFourBytesInNetworkOrder) {
  const IpAddress ip = Ip("127.10.0.1");
  EXPECT_TRUE(ip.is_v4());
  EXPECT_FALSE(ip.is_v6());
  EXPECT_EQ(ip.bytes, (std::array<uint8_t, 16>{127, 10, 0, 1}));
}

TEST(IpAddressTest, ParsesIpv6) {
  const IpAddress ip = Ip("fd00::1");
  EXPECT_TRUE(ip.is_v6());
  EXPECT_EQ(ip.bytes, (std::array<uint8_t, 16>{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
}

TEST(IpAddressTest, RoundTripsToCanonicalText) {
  EXPECT_EQ(Ip("127.10.0.1").ToString(), "127.10.0.1");
  EXPECT_EQ(Ip("FD00:0:0::0001").ToString(), "fd00::1");
  EXPECT_EQ(Ip("::ffff:10.0.0.1").ToString(), "::ffff:10.0.0.1");
  EXPECT_EQ(IpAddress{}.ToString(), "unset");
}

TEST(IpAddressTest, RejectsNonAddressesNamingTheValue) {
  for (std::string_view bad : {"", "None", "127.10.0", "256.0.0.1", "010.0.0.1", "1.2.3.4 ",
                               "fe80::1%eth0", "fd00::1::2", "example.com"}) {
    absl::StatusOr<IpAddress> ip = IpAddress::Parse(bad);
    ASSERT_FALSE(ip.ok()) << bad;
    EXPECT_EQ(ip.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(ip.status().message(), HasSubstr("\"" + std::string(bad) + "\"")) << bad;
  }
  EXPECT_EQ(IpAddress::Parse("nope").status().message(),
            "invalid IP address \"nope\": must be an IPv4 or IPv6 address");
}

TEST(IpAddressTest, ParseDoesNotReadPastTheView) {
  constexpr std::string_view kText = "10.0.0.12345";
  absl::StatusOr<IpAddress> ip = IpAddress::Parse(kText.substr(0, 8));
  ASSERT_TRUE(ip.ok()) << ip.status();
  EXPECT_EQ(ip->ToString(), "10.0.0.1");
}

TEST(IpAddressTest, OrdersV4BeforeV6AndByBytes) {
  EXPECT_LT(Ip("10.0.0.2"), Ip("10.0.0.10"));
  EXPECT_LT(Ip("255.255.255.255"), Ip("::1"));
}

TEST(NamesTest, ProtocolAlgorithmAndAffinity) {
  EXPECT_EQ(ProtocolName(Protocol::kTcp), "TCP");
  EXPECT_EQ(ProtocolName(Protocol::kUdp), "UDP");
  EXPECT_EQ(LbAlgorithmName(LbAlgorithm::kRandom), "random");
  EXPECT_EQ(LbAlgorithmName(LbAlgorithm::kMaglev), "maglev");
  EXPECT_EQ(SessionAffinityName(SessionAffinity::kNone), "None");
  EXPECT_EQ(SessionAffinityName(SessionAffinity::kClientIP), "ClientIP");
}

TEST(FrontendTest, ToStringBracketsIpv6) {
  EXPECT_EQ((Frontend{Ip("127.10.0.1"), 80, Protocol::kTcp}).ToString(), "127.10.0.1:80/TCP");
  EXPECT_EQ((Frontend{Ip("fd00::1"), 80, Protocol::kTcp}).ToString(), "[fd00::1]:80/TCP");
  EXPECT_EQ((Frontend{Ip("127.10.0.1"), 9000, Protocol::kUdp}).ToString(), "127.10.0.1:9000/UDP");
}

TEST(BackendTest, ToStringIncludesWeight) {
  EXPECT_EQ((Backend{Ip("127.0.0.11"), 8080, 1}).ToString(), "127.0.0.11:8080 (weight 1)");
  EXPECT_EQ((Backend{Ip("fd00::11"), 8080, 90}).ToString(), "[fd00::11]:8080 (weight 90)");
}

TEST(StreamTest, PrintsLikeToString) {
  std::ostringstream out;
  out << Ip("fd00::1") << " " << Frontend{Ip("127.10.0.1"), 80, Protocol::kTcp} << " "
      << Backend{Ip("127.0.0.11"), 8080, 2};
  EXPECT_EQ(out.str(), "fd00::1 127.10.0.1:80/TCP 127.0.0.11:8080 (weight 2)");
}

}  // namespace
}  // namespace sockmesh::model
