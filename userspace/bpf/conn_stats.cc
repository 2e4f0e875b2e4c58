// SPDX-License-Identifier: Apache-2.0
#include "userspace/bpf/conn_stats.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

#include "userspace/sys/errno_status.h"

namespace sockmesh::bpf {
namespace {

// sm_conn_stats is all __u64: the counters, then three sm_hist.
constexpr size_t kWords = sizeof(sm_conn_stats) / sizeof(uint64_t);
static_assert(sizeof(sm_conn_stats) % sizeof(uint64_t) == 0);

template <typename Op>
void ForEachWord(sm_conn_stats& into, const sm_conn_stats& from, Op op) {
  uint64_t a[kWords];
  uint64_t b[kWords];
  std::memcpy(a, &into, sizeof(a));
  std::memcpy(b, &from, sizeof(b));
  for (size_t i = 0; i < kWords; ++i) a[i] = op(a[i], b[i]);
  std::memcpy(&into, a, sizeof(a));
}

}  // namespace

void AddConnStats(sm_conn_stats& into, const sm_conn_stats& from) {
  ForEachWord(into, from, [](uint64_t x, uint64_t y) { return x + y; });
}

void SubtractConnStats(sm_conn_stats& into, const sm_conn_stats& from) {
  ForEachWord(into, from, [](uint64_t x, uint64_t y) { return x >= y ? x - y : 0; });
}

absl::StatusOr<std::vector<ConnStatsEntry>> ReadConnStats(int fd) {
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return sys::ErrnoToStatus(cpus, "count possible CPUs");
  std::vector<sm_conn_stats> per_cpu(static_cast<size_t>(cpus));
  std::vector<ConnStatsEntry> out;
  sm_conn_stats_key key{};
  sm_conn_stats_key next{};
  const sm_conn_stats_key* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    if (bpf_map_lookup_elem(fd, &next, per_cpu.data()) == 0) {
      ConnStatsEntry e{.key = next};
      for (const sm_conn_stats& s : per_cpu) AddConnStats(e.stats, s);
      out.push_back(e);
    }
    key = next;
    prev = &key;
  }
  if (errno != ENOENT) return sys::ErrnoToStatus(errno, "iterate sm_conn_stats_v1");
  return out;
}

uint64_t HistBucketLowerUs(int b) {
  if (b < SM_HIST_SUB_BUCKETS) return static_cast<uint64_t>(b);
  int e = (b - SM_HIST_SUB_BUCKETS) / SM_HIST_SUB_BUCKETS + 2;
  int sub = (b - SM_HIST_SUB_BUCKETS) % SM_HIST_SUB_BUCKETS;
  return static_cast<uint64_t>(SM_HIST_SUB_BUCKETS + sub) << (e - 2);
}

uint64_t HistBucketUpperUs(int b) {
  if (b < SM_HIST_SUB_BUCKETS) return static_cast<uint64_t>(b) + 1;
  int e = (b - SM_HIST_SUB_BUCKETS) / SM_HIST_SUB_BUCKETS + 2;
  int sub = (b - SM_HIST_SUB_BUCKETS) % SM_HIST_SUB_BUCKETS;
  return static_cast<uint64_t>(SM_HIST_SUB_BUCKETS + sub + 1) << (e - 2);
}

uint64_t HistCount(const sm_hist& h) {
  uint64_t n = 0;
  for (uint64_t c : h.buckets) n += c;
  return n;
}

double HistQuantileSeconds(const sm_hist& h, double q) {
  uint64_t total = HistCount(h);
  if (total == 0) return 0;
  double rank = q * static_cast<double>(total);
  double seen = 0;
  for (int b = 0; b < SM_HIST_BUCKETS; ++b) {
    double c = static_cast<double>(h.buckets[b]);
    if (c == 0) continue;
    if (seen + c >= rank) {
      double lo = static_cast<double>(HistBucketLowerUs(b));
      double hi = static_cast<double>(HistBucketUpperUs(b));
      double frac = (rank - seen) / c;
      return (lo + (hi - lo) * frac) / 1e6;
    }
    seen += c;
  }
  return static_cast<double>(HistBucketUpperUs(SM_HIST_BUCKETS - 1)) / 1e6;
}

}  // namespace sockmesh::bpf
