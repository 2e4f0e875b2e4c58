// SPDX-License-Identifier: Apache-2.0
#include "userspace/lb/siphash.h"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sockmesh::lb {
namespace {

struct SipState {
  uint64_t v0;
  uint64_t v1;
  uint64_t v2;
  uint64_t v3;

  void Round() {
    v0 += v1;
    v1 = std::rotl(v1, 13);
    v1 ^= v0;
    v0 = std::rotl(v0, 32);
    v2 += v3;
    v3 = std::rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = std::rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = std::rotl(v1, 17);
    v1 ^= v2;
    v2 = std::rotl(v2, 32);
  }

  // Two compression rounds per message word: the "2" in SipHash-2-4.
  void Compress(uint64_t m) {
    v3 ^= m;
    Round();
    Round();
    v0 ^= m;
  }
};

// Assembles up to 8 bytes as a little-endian word, independent of host byte order.
uint64_t LoadLittleEndian(const unsigned char* p, size_t n) {
  uint64_t word = 0;
  for (size_t i = 0; i < n; ++i) word |= static_cast<uint64_t>(p[i]) << (8 * i);
  return word;
}

}  // namespace

uint64_t SipHash24(const SipHashKey& key, std::string_view data) {
  SipState s{key.k0 ^ 0x736f6d6570736575ULL, key.k1 ^ 0x646f72616e646f6dULL,
             key.k0 ^ 0x6c7967656e657261ULL, key.k1 ^ 0x7465646279746573ULL};
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  const size_t full_words = data.size() / 8;
  for (size_t i = 0; i < full_words; ++i) s.Compress(LoadLittleEndian(bytes + 8 * i, 8));

  // The last word carries the leftover bytes and, in its top byte, the message length mod 256.
  const size_t tail = data.size() % 8;
  s.Compress(LoadLittleEndian(bytes + 8 * full_words, tail) |
             (static_cast<uint64_t>(data.size() & 0xff) << 56));

  // Four finalization rounds: the "4" in SipHash-2-4.
  s.v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) s.Round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

}  // namespace sockmesh::lb
