// SPDX-License-Identifier: Apache-2.0
#ifndef SOCKMESH_BENCH_LOAD_AVERAGE_H_
#define SOCKMESH_BENCH_LOAD_AVERAGE_H_

#include <fstream>
#include <string>

namespace sockmesh::bench {

// The 1/5/15-minute load averages ("0.76 1.23 2.27"). Other work on the machine moves every
// benchmark figure, so a result says how busy the machine was.
inline std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

}  // namespace sockmesh::bench

#endif  // SOCKMESH_BENCH_LOAD_AVERAGE_H_
