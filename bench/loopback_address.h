// SPDX-License-Identifier: Apache-2.0
// IPv4 addresses for the benchmarks, which only ever use 127.0.0.0/8.
#ifndef SOCKMESH_BENCH_LOOPBACK_ADDRESS_H_
#define SOCKMESH_BENCH_LOOPBACK_ADDRESS_H_

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <string>

namespace sockmesh::bench {

// `ip` (dotted quad) and `port` as a sockaddr_in; the caller has checked `ip` (IsLoopback).
inline sockaddr_in MakeAddr(const std::string& ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

// Whether `ip` is an IPv4 address in 127.0.0.0/8.
inline bool IsLoopback(const std::string& ip) {
  in_addr a{};
  return ::inet_pton(AF_INET, ip.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

}  // namespace sockmesh::bench

#endif  // SOCKMESH_BENCH_LOOPBACK_ADDRESS_H_
