// SPDX-License-Identifier: Apache-2.0
// sockmeshctl's service view without a kernel: the table and JSON formatters on hand-built dumps,
// and ReadServices over in-memory maps shaped the way MapSync writes the kernel's.
#include "userspace/ctl/service_dump.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/fake_map.h"
#include "userspace/agent/abi_conversion.h"

namespace sockmesh::ctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

model::IpAddress Ip(const std::string& text) { return *model::IpAddress::Parse(text); }

model::Frontend Frontend(const std::string& vip, uint16_t port,
                         model::Protocol protocol = model::Protocol::kTcp) {
  return model::Frontend{.vip = Ip(vip), .port = port, .protocol = protocol};
}

BackendView Backend(const std::string& ip, uint16_t port, uint32_t weight, uint32_t slots) {
  return BackendView{
      .address = Ip(ip), .port = port, .weight = weight, .backend_id = port, .slots = slots};
}

// 127.10.0.10:80/TCP split 1:3 over 1021 slots (255 + 766: a weighted table rounds), an empty
// UDP service, and an IPv6 Maglev service with session affinity.
ServiceDump SampleDump() {
  ServiceDump dump;
  dump.instance = "default";
  ServiceView weighted{
      .frontend = Frontend("127.10.0.10", 80),
      .svc_id = 1,
      .revision = 3,
      .algorithm = "random",
      .affinity_timeout_s = 0,
      .lut_size = 1021,
      .backends = {Backend("127.0.0.11", 8080, 1, 255), Backend("127.0.0.12", 8080, 3, 766)},
      .warnings = {}};
  ServiceView empty{.frontend = Frontend("127.10.0.20", 53, model::Protocol::kUdp),
                    .svc_id = 2,
                    .revision = 1,
                    .algorithm = "random",
                    .affinity_timeout_s = 0,
                    .lut_size = 0,
                    .backends = {},
                    .warnings = {}};
  ServiceView v6{.frontend = Frontend("fd00::10", 443),
                 .svc_id = 3,
                 .revision = 7,
                 .algorithm = "maglev",
                 .affinity_timeout_s = 10800,
                 .lut_size = 3,
                 .backends = {Backend("fd00::11", 8443, 1, 1), Backend("fd00::12", 8443, 1, 2)},
                 .warnings = {"1 of 3 selection-table slots are missing"}};
  dump.services = {weighted, empty, v6};
  return dump;
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

TEST(ServiceViewTest, ShareIsSlotsOverTableSize) {
  ServiceDump dump = SampleDump();
  const ServiceView& s = dump.services[0];
  EXPECT_NEAR(s.ShareOf(s.backends[0]), 0.25, 0.01);
  EXPECT_NEAR(s.ShareOf(s.backends[1]), 0.75, 0.01);
  EXPECT_DOUBLE_EQ(dump.services[1].ShareOf(Backend("127.0.0.1", 1, 1, 0)), 0.0);
}

TEST(FormatServicesTableTest, OneRowPerBackendWithAlignedColumns) {
  std::string table = FormatServicesTable(SampleDump());
  std::vector<std::string> lines = Lines(table);
  ASSERT_THAT(lines, SizeIs(7)) << table;
  EXPECT_THAT(lines[0], ::testing::StartsWith("FRONTEND"));
  for (const char* column : {"ALGORITHM", "AFFINITY", "LIMIT", "REVISION", "BACKEND", "WEIGHT",
                             "SHARE", "ACTIVE", "EJECTED"}) {
    EXPECT_THAT(lines[0], HasSubstr(column));
  }
  // Every backend starts in the BACKEND column; the frontend is only on its first row.
  const size_t backend_col = lines[0].find("BACKEND");
  EXPECT_EQ(lines[1].find("127.0.0.11:8080"), backend_col) << table;
  EXPECT_EQ(lines[2].find("127.0.0.12:8080"), backend_col) << table;
  EXPECT_EQ(lines[2].find_first_not_of(' '), backend_col) << table;
  EXPECT_THAT(lines[1], ::testing::StartsWith("127.10.0.10:80/TCP"));
  EXPECT_THAT(lines[1], HasSubstr("random"));
  EXPECT_THAT(lines[1], HasSubstr("none"));
  EXPECT_THAT(lines[1], ::testing::EndsWith("25.0%  0       -"));
  EXPECT_THAT(lines[2], ::testing::EndsWith("75.0%  0       -"));

  EXPECT_THAT(lines[3], ::testing::StartsWith("127.10.0.20:53/UDP"));
  EXPECT_THAT(lines[3], HasSubstr("connects are refused"));
  EXPECT_EQ(lines[3].find("<none>"), backend_col) << table;
  // The remark runs on from the WEIGHT column without widening BACKEND to fit it.
  const size_t weight_col = lines[0].find("WEIGHT");
  EXPECT_EQ(weight_col, backend_col + std::string("[fd00::11]:8443").size() + 2) << table;
  EXPECT_EQ(lines[3].find("(no backends: connects are refused)"), weight_col) << table;

  EXPECT_THAT(lines[4], ::testing::StartsWith("[fd00::10]:443/TCP"));
  EXPECT_THAT(lines[4], HasSubstr("maglev"));
  EXPECT_THAT(lines[4], HasSubstr("ClientIP/10800s"));
  EXPECT_EQ(lines[4].find("[fd00::11]:8443"), backend_col) << table;
  EXPECT_THAT(lines[4], ::testing::EndsWith("33.3%  0       -"));
  EXPECT_THAT(lines[5], ::testing::EndsWith("66.7%  0       -"));
  // Warnings follow their service, marked and indented.
  EXPECT_EQ(lines[6], "  ! 1 of 3 selection-table slots are missing");
  for (const std::string& line : lines) EXPECT_THAT(line, Not(::testing::EndsWith(" ")));
}

TEST(FormatServicesTableTest, NoServicesSaysSo) {
  ServiceDump dump;
  dump.instance = "edge";
  EXPECT_EQ(FormatServicesTable(dump), "No services in datapath instance \"edge\".\n");
}

TEST(FormatServicesJsonTest, HasTheDocumentedShape) {
  nlohmann::json j = nlohmann::json::parse(FormatServicesJson(SampleDump()));
  EXPECT_EQ(j["instance"], "default");
  ASSERT_EQ(j["services"].size(), 3u);

  const nlohmann::json& s = j["services"][0];
  EXPECT_EQ(s["frontend"], "127.10.0.10:80/TCP");
  EXPECT_EQ(s["vip"], "127.10.0.10");
  EXPECT_EQ(s["port"], 80);
  EXPECT_EQ(s["protocol"], "TCP");
  EXPECT_EQ(s["algorithm"], "random");
  EXPECT_EQ(s["affinity_timeout_seconds"], 0);
  EXPECT_EQ(s["revision"], 3);
  EXPECT_FALSE(s.contains("note"));
  ASSERT_EQ(s["backends"].size(), 2u);
  EXPECT_EQ(s["backends"][0]["address"], "127.0.0.11");
  EXPECT_EQ(s["backends"][0]["port"], 8080);
  EXPECT_EQ(s["backends"][0]["weight"], 1);
  EXPECT_NEAR(s["backends"][0]["share"].get<double>(), 0.25, 0.01);
  EXPECT_EQ(s["backends"][1]["weight"], 3);
  EXPECT_NEAR(s["backends"][1]["share"].get<double>(), 0.75, 0.01);
  EXPECT_EQ(s["backends"][1]["slots"], 766);

  const nlohmann::json& empty = j["services"][1];
  EXPECT_EQ(empty["protocol"], "UDP");
  EXPECT_TRUE(empty["backends"].is_array());
  EXPECT_TRUE(empty["backends"].empty());
  EXPECT_THAT(empty["note"].get<std::string>(), HasSubstr("connects are refused"));

  const nlohmann::json& v6 = j["services"][2];
  EXPECT_EQ(v6["frontend"], "[fd00::10]:443/TCP");
  EXPECT_EQ(v6["vip"], "fd00::10");
  EXPECT_EQ(v6["affinity_timeout_seconds"], 10800);
  EXPECT_EQ(v6["backends"][0]["address"], "fd00::11");
  EXPECT_THAT(v6["warnings"], SizeIs(1));
}

TEST(FormatServicesJsonTest, KeysKeepTheDocumentedOrder) {
  std::string text = FormatServicesJson(SampleDump());
  size_t last = 0;
  for (const char* key : {"\"instance\"", "\"services\"", "\"frontend\"", "\"vip\"", "\"port\"",
                          "\"protocol\"", "\"algorithm\"", "\"affinity_timeout_seconds\"",
                          "\"revision\"", "\"backends\"", "\"address\""}) {
    size_t at = text.find(key);
    ASSERT_NE(at, std::string::npos) << key;
    EXPECT_GT(at, last) << key << " out of order";
    last = at;
  }
}

template <typename K, typename V>
using MemoryMap = sockmesh::testing::FakeMap<K, V>;

class ReadServicesTest : public ::testing::Test {
 protected:
  // Writes one revision the way MapSync does; `lut` holds backend ids. Returns the service value.
  sm_svc Write(const model::Frontend& frontend, uint32_t svc_id, uint32_t rev,
               const std::vector<std::pair<uint32_t, model::Backend>>& backends,
               const std::vector<uint32_t>& lut, bool switch_service = true) {
    for (const auto& [id, b] : backends) {
      EXPECT_TRUE(
          backends_.Update({.svc_id = svc_id, .rev = rev, .backend_id = id}, agent::ToAbiBackend(b))
              .ok());
    }
    for (uint32_t slot = 0; slot < lut.size(); ++slot) {
      EXPECT_TRUE(lut_.Update({.svc_id = svc_id, .rev = rev, .slot = slot}, lut[slot]).ok());
    }
    sm_svc value{};
    value.svc_id = svc_id;
    value.rev = rev;
    value.lut_size = static_cast<uint32_t>(lut.size());
    value.backend_count = static_cast<uint32_t>(backends.size());
    value.algo = agent::ToAbiAlgorithm(model::LbAlgorithm::kRandom);
    if (switch_service) {
      EXPECT_TRUE(services_.Update(agent::ToSvcKey(frontend), value).ok());
    }
    return value;
  }

  absl::StatusOr<ServiceDump> Read() {
    return ReadServices(
        ServiceMapsReader{
            .services = &services_, .backends = &backends_, .lut = &lut_, .conns = &conns_},
        "test");
  }

  static model::Backend B(const std::string& ip, uint16_t port, uint32_t weight = 1) {
    return model::Backend{.address = Ip(ip), .port = port, .weight = weight};
  }

  MemoryMap<sm_svc_key, sm_svc> services_{"sm_svc_v1"};
  MemoryMap<sm_be_key, sm_backend> backends_{"sm_be_v1"};
  MemoryMap<sm_lut_key, uint32_t> lut_{"sm_lut_v1"};
  MemoryMap<sm_be_conn_key, uint64_t> conns_{"sm_be_conns_v1"};
};

TEST_F(ReadServicesTest, ShowsLeastConnectionsTheLimitAndLiveCounts) {
  sm_svc v = Write(Frontend("127.10.0.30", 80), 3, 1,
                   {{4, B("127.0.0.31", 8080)}, {5, B("127.0.0.32", 8080)}}, {4, 5});
  v.algo = SM_LB_LEAST_CONN;
  v.max_conns_per_backend = 100;
  ASSERT_TRUE(services_.Update(agent::ToSvcKey(Frontend("127.10.0.30", 80)), v).ok());
  ASSERT_TRUE(conns_.Update({.svc_id = 3, .backend_id = 4}, 10).ok());
  ASSERT_TRUE(conns_.Update({.svc_id = 9, .backend_id = 5}, 7).ok());  // another service's count

  absl::StatusOr<ServiceDump> dump = Read();
  ASSERT_TRUE(dump.ok()) << dump.status();
  ASSERT_THAT(dump->services, SizeIs(1));
  const ServiceView& s = dump->services[0];
  EXPECT_EQ(s.algorithm, "least-connections");
  EXPECT_EQ(s.max_connections_per_backend, 100u);
  ASSERT_THAT(s.backends, SizeIs(2));
  EXPECT_EQ(s.backends[0].active_connections, 10u);
  EXPECT_EQ(s.backends[1].active_connections, 0u);

  std::string table = FormatServicesTable(*dump);
  EXPECT_THAT(table, HasSubstr("least-connections"));
  for (const char* column : {"LIMIT", "ACTIVE"}) EXPECT_THAT(table, HasSubstr(column));
  auto json = nlohmann::json::parse(FormatServicesJson(*dump));
  EXPECT_EQ(json["services"][0]["max_connections_per_backend"], 100);
  EXPECT_EQ(json["services"][0]["backends"][0]["active_connections"], 10);
}

TEST_F(ReadServicesTest, ReadsTheCurrentRevisionSortedByFrontend) {
  Write(Frontend("127.10.0.20", 80), 2, 1, {}, {});
  // A retired revision still in the maps must not show.
  Write(Frontend("127.10.0.10", 80), 1, 4, {{7, B("127.0.0.99", 9)}}, {7, 7}, false);
  Write(Frontend("127.10.0.10", 80), 1, 5, {{8, B("127.0.0.12", 80, 3)}, {9, B("127.0.0.11", 80)}},
        {8, 9, 8, 8});

  absl::StatusOr<ServiceDump> dump = Read();
  ASSERT_TRUE(dump.ok()) << dump.status();
  EXPECT_EQ(dump->instance, "test");
  ASSERT_THAT(dump->services, SizeIs(2));
  const ServiceView& s = dump->services[0];
  EXPECT_EQ(s.frontend, Frontend("127.10.0.10", 80));
  EXPECT_EQ(s.revision, 5u);
  EXPECT_EQ(s.algorithm, "random");
  EXPECT_THAT(s.warnings, IsEmpty());
  ASSERT_THAT(s.backends, SizeIs(2));
  EXPECT_EQ(s.backends[0].address, Ip("127.0.0.11"));  // sorted by address
  EXPECT_EQ(s.backends[0].slots, 1u);
  EXPECT_EQ(s.backends[1].weight, 3u);
  EXPECT_DOUBLE_EQ(s.ShareOf(s.backends[1]), 0.75);

  const ServiceView& empty = dump->services[1];
  EXPECT_EQ(empty.lut_size, 0u);
  EXPECT_THAT(empty.backends, IsEmpty());
  EXPECT_THAT(empty.warnings, IsEmpty());
}

TEST_F(ReadServicesTest, ReportsWhatTheKernelWouldFindMissing) {
  Write(Frontend("127.10.0.10", 80), 1, 1, {{1, B("127.0.0.11", 80)}}, {1, 2, 1});
  ASSERT_TRUE(lut_.Delete({.svc_id = 1, .rev = 1, .slot = 2}).ok());

  absl::StatusOr<ServiceDump> dump = Read();
  ASSERT_TRUE(dump.ok()) << dump.status();
  ASSERT_THAT(dump->services, SizeIs(1));
  const ServiceView& s = dump->services[0];
  ASSERT_THAT(s.backends, SizeIs(1));
  EXPECT_EQ(s.backends[0].slots, 1u);
  EXPECT_THAT(s.warnings, ElementsAre(HasSubstr("backend id 2"), HasSubstr("1 of 3")));
  EXPECT_THAT(FormatServicesTable(*dump), HasSubstr("  ! 1 of 3 selection-table slots"));
}

TEST_F(ReadServicesTest, RereadsAServiceWhoseRevisionChangedWhileReading) {
  const model::Frontend f = Frontend("127.10.0.10", 80);
  Write(f, 1, 1, {{1, B("127.0.0.11", 80)}}, {1});
  // The agent switches to revision 2 right after the first LUT read, and retires revision 1.
  bool swapped = false;
  lut_.on_lookup = [&] {
    if (swapped) return;
    swapped = true;
    Write(f, 1, 2, {{2, B("127.0.0.12", 80)}}, {2, 2});
    (void)backends_.Delete({.svc_id = 1, .rev = 1, .backend_id = 1});
  };

  absl::StatusOr<ServiceDump> dump = Read();
  ASSERT_TRUE(dump.ok()) << dump.status();
  ASSERT_THAT(dump->services, SizeIs(1));
  const ServiceView& s = dump->services[0];
  EXPECT_EQ(s.revision, 2u);
  ASSERT_THAT(s.backends, SizeIs(1));
  EXPECT_EQ(s.backends[0].address, Ip("127.0.0.12"));
  EXPECT_EQ(s.backends[0].slots, 2u);
  EXPECT_THAT(s.warnings, IsEmpty());
}

TEST_F(ReadServicesTest, UnknownAlgorithmIsShownNotFatal) {
  sm_svc value = Write(Frontend("127.10.0.10", 80), 1, 1, {{1, B("127.0.0.11", 80)}}, {1});
  value.algo = 9;
  ASSERT_TRUE(services_.Update(agent::ToSvcKey(Frontend("127.10.0.10", 80)), value).ok());

  absl::StatusOr<ServiceDump> dump = Read();
  ASSERT_TRUE(dump.ok()) << dump.status();
  ASSERT_THAT(dump->services, SizeIs(1));
  EXPECT_EQ(dump->services[0].algorithm, "unknown(9)");
  EXPECT_THAT(dump->services[0].warnings, ElementsAre(HasSubstr("algorithm")));
}

}  // namespace
}  // namespace sockmesh::ctl
