// SPDX-License-Identifier: Apache-2.0
// What the agent does with bytes from the control plane, fed with seeds and deterministic random
// mutations of them: decoding, validation and delta application must reject garbage with a Status,
// never crash or accept an invalid model. HandleServerMessage() has the libFuzzer signature's
// shape, so the same body can back a libFuzzer target when the project is built with clang.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "control_plane/model/proto_conversion.h"
#include "gtest/gtest.h"

namespace sockmesh::model {
namespace {

// Every accepted state must satisfy the model's invariants.
void CheckInvariants(const DesiredState& state) {
  for (const auto& [frontend, entry] : state) {
    ASSERT_EQ(frontend, entry.frontend);
    ASSERT_TRUE(frontend.vip.is_v4() || frontend.vip.is_v6());
    ASSERT_NE(frontend.port, 0);
    for (const Backend& b : entry.backends) {
      ASSERT_TRUE(b.address.is_v4() || b.address.is_v6());
      ASSERT_NE(b.port, 0);
      ASSERT_GE(b.weight, 1u);
      ASSERT_LE(b.weight, 65535u);
    }
  }
}

// The agent's path for one message: decode, then snapshot -> state, or delta on top of `base`.
void HandleServerMessage(const uint8_t* data, size_t size, const DesiredState& base) {
  v1::ServerMessage msg;
  if (!msg.ParseFromArray(data, static_cast<int>(size))) return;
  if (msg.has_snapshot()) {
    absl::StatusOr<DesiredState> state = FromSnapshot(msg.snapshot());
    if (state.ok()) CheckInvariants(*state);
  } else if (msg.has_delta()) {
    DesiredState state = base;
    if (ApplyDelta(msg.delta(), state).ok()) CheckInvariants(state);
  }
}

ServiceEntry Svc(const std::string& vip, uint16_t port, std::vector<std::string> backends) {
  ServiceEntry e;
  e.namespace_name = "ns";
  e.service_name = "svc";
  e.frontend = {.vip = *IpAddress::Parse(vip), .port = port};
  for (const std::string& b : backends) {
    e.backends.push_back({.address = *IpAddress::Parse(b), .port = 8080, .weight = 3});
  }
  return e;
}

std::vector<std::string> Seeds(const DesiredState& base) {
  DesiredState other = base;
  other.erase(other.begin());
  ServiceEntry v6 = Svc("fd00::1", 443, {"fd00::2"});
  other[v6.frontend] = v6;
  std::vector<std::string> seeds;
  v1::ServerMessage snap;
  *snap.mutable_snapshot() = MakeSnapshot(3, base);
  seeds.push_back(snap.SerializeAsString());
  v1::ServerMessage delta;
  *delta.mutable_delta() = MakeDelta(3, base, 4, other);
  seeds.push_back(delta.SerializeAsString());
  seeds.push_back("");
  return seeds;
}

TEST(ControlMessageFuzzTest, SeedsAndMutationsNeverCrash) {
  DesiredState base;
  for (ServiceEntry e : {Svc("10.0.0.1", 80, {"10.1.0.1", "10.1.0.2"}), Svc("10.0.0.2", 53, {})}) {
    base[e.frontend] = e;
  }
  std::mt19937 rng(20261124);  // fixed: a failure reproduces
  for (const std::string& seed : Seeds(base)) {
    HandleServerMessage(reinterpret_cast<const uint8_t*>(seed.data()), seed.size(), base);
    for (int i = 0; i < 20000; ++i) {
      std::string input = seed;
      int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits; ++e) {
        switch (rng() % 4) {
          case 0:  // flip a byte
            if (!input.empty()) input[rng() % input.size()] = static_cast<char>(rng());
            break;
          case 1:  // truncate
            if (!input.empty()) input.resize(rng() % input.size());
            break;
          case 2:  // insert a byte
            input.insert(input.begin() + (input.empty() ? 0 : rng() % input.size()),
                         static_cast<char>(rng()));
            break;
          default:  // duplicate a slice (repeated fields, overlong lengths)
            if (!input.empty()) {
              size_t from = rng() % input.size();
              input += input.substr(from, rng() % (input.size() - from + 1));
            }
        }
      }
      HandleServerMessage(reinterpret_cast<const uint8_t*>(input.data()), input.size(), base);
      if (HasFatalFailure()) FAIL() << "input of " << input.size() << " bytes, iteration " << i;
    }
  }
}

}  // namespace
}  // namespace sockmesh::model
