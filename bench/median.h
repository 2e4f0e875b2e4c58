// SPDX-License-Identifier: Apache-2.0
#ifndef SOCKMESH_BENCH_MEDIAN_H_
#define SOCKMESH_BENCH_MEDIAN_H_

#include <algorithm>
#include <vector>

namespace sockmesh::bench {

// The median of per-round figures (the mean of the middle two for an even count); 0 when empty.
// Rounds, not their mean: one round slowed by other work on the machine does not move it.
inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace sockmesh::bench

#endif  // SOCKMESH_BENCH_MEDIAN_H_
