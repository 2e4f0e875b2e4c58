// SPDX-License-Identifier: Apache-2.0
#include "userspace/sys/stop_signal.h"

#include <signal.h>

namespace sockmesh::sys {
namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop = true; }

}  // namespace

const std::atomic<bool>& InstallStopSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  return g_stop;
}

}  // namespace sockmesh::sys
