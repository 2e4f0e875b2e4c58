// SPDX-License-Identifier: Apache-2.0
#include "control_plane/model/identity_allocator.h"

#include <unordered_set>

#include "control_plane/model/workload_model.h"

namespace sockmesh::model {
namespace {

constexpr uint32_t kAllocatedRange = kIdentitySpace - kFirstAllocatedIdentity;

// FNV-1a: fixed by its definition, so every build and every machine computes the same number
// (std::hash gives no such promise).
uint64_t Fnv1a64(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

uint32_t Next(uint32_t identity) {
  return identity + 1 == kIdentitySpace ? kFirstAllocatedIdentity : identity + 1;
}

}  // namespace

uint32_t PreferredIdentity(std::string_view principal) {
  return kFirstAllocatedIdentity + static_cast<uint32_t>(Fnv1a64(principal) % kAllocatedRange);
}

std::map<std::string, uint32_t> AllocateIdentities(
    const std::set<std::string>& principals, const std::map<std::string, uint32_t>& previous) {
  std::map<std::string, uint32_t> out;
  std::unordered_set<uint32_t> taken;
  // Survivors first, so a newcomer can never take a number that is already in use.
  for (const std::string& p : principals) {
    auto it = previous.find(p);
    if (it == previous.end() || it->second < kFirstAllocatedIdentity ||
        it->second >= kIdentitySpace || !taken.insert(it->second).second) {
      continue;
    }
    out[p] = it->second;
  }
  for (const std::string& p : principals) {
    if (out.contains(p)) continue;
    uint32_t identity = PreferredIdentity(p);
    while (taken.contains(identity)) identity = Next(identity);
    taken.insert(identity);
    out[p] = identity;
  }
  return out;
}

}  // namespace sockmesh::model
