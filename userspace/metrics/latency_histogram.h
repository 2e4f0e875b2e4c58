// SPDX-License-Identifier: Apache-2.0
// A log-linear latency histogram for the benchmarks and the load generator (services/loadgen): 64
// linear sub-buckets per power of two, so a percentile is off by at most 1/64 (~1.6%) of its value.
// Fixed size and allocation-free on Add(), so a client loop can record every request without the
// recording becoming the cost it measures. The maximum is kept exactly.
#ifndef SOCKMESH_USERSPACE_METRICS_LATENCY_HISTOGRAM_H_
#define SOCKMESH_USERSPACE_METRICS_LATENCY_HISTOGRAM_H_

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>

namespace sockmesh::metrics {

class LatencyHistogram {
 public:
  void Add(uint64_t ns) {
    ++buckets_[Index(ns)];
    ++count_;
    if (ns > max_) max_ = ns;
  }

  void Merge(const LatencyHistogram& other) {
    for (size_t i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
    count_ += other.count_;
    if (other.max_ > max_) max_ = other.max_;
  }

  uint64_t count() const { return count_; }
  // The largest value added, exact; 0 when empty.
  uint64_t max() const { return max_; }

  // Calls visit(value_ns, count) for every non-empty bucket, in ascending order, with the value
  // Quantile() reports for that bucket: what another process needs to merge histograms of
  // several runs and take the same quantiles over all of their requests.
  template <typename Visit>
  void ForEachBucket(Visit visit) const {
    for (size_t i = 0; i < kBuckets; ++i) {
      if (buckets_[i] != 0) visit(Midpoint(i), buckets_[i]);
    }
  }

  // The value at quantile q (0..1], in ns: the midpoint of the bucket holding that rank; 0 when
  // empty.
  double Quantile(double q) const {
    if (count_ == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += buckets_[i];
      if (seen >= rank) return Midpoint(i);
    }
    return Midpoint(kBuckets - 1);
  }

 private:
  static constexpr int kSubBits = 6;
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;  // sub-buckets per power of two
  // Values below kSub get one bucket each; each further power of two (up to 2^63) gets kSub.
  static constexpr size_t kBuckets = (64 - kSubBits + 1) * kSub;

  static size_t Index(uint64_t v) {
    if (v < kSub) return static_cast<size_t>(v);
    const int msb = std::bit_width(v) - 1;  // >= kSubBits
    const int shift = msb - kSubBits;
    const uint64_t sub = v >> shift;  // in [kSub, 2 * kSub)
    return static_cast<size_t>((static_cast<uint64_t>(shift) + 1) * kSub + (sub - kSub));
  }

  static double Midpoint(size_t index) {
    if (index < kSub) return static_cast<double>(index);
    const uint64_t block = index / kSub;  // >= 1
    const int shift = static_cast<int>(block - 1);
    const uint64_t lower = (kSub + index % kSub) << shift;
    const uint64_t width = uint64_t{1} << shift;
    return static_cast<double>(lower) + static_cast<double>(width - 1) / 2;
  }

  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t max_ = 0;
};

}  // namespace sockmesh::metrics

#endif  // SOCKMESH_USERSPACE_METRICS_LATENCY_HISTOGRAM_H_
