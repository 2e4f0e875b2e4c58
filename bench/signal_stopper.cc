// SPDX-License-Identifier: Apache-2.0
#include "bench/signal_stopper.h"

#include <time.h>

#include <cstring>
#include <iostream>

namespace sockmesh::bench {
namespace {

std::atomic<bool> g_stop{false};

}  // namespace

bool StopRequested() { return g_stop.load(std::memory_order_relaxed); }

SignalStopper::SignalStopper(std::string name) : name_(std::move(name)) {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  // A shell starts background commands with SIGINT ignored, and an ignored signal never reaches
  // sigtimedwait(); blocked, the default disposition is safe. SIGPIPE: a closed stdout (`| head`)
  // must end the output, not the process before its clean-up.
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  ::signal(SIGPIPE, SIG_IGN);
  thread_ = std::thread([this] { Run(); });
}

SignalStopper::~SignalStopper() {
  done_.store(true);
  thread_.join();
}

void SignalStopper::Run() {
  const timespec tick{.tv_sec = 0, .tv_nsec = 100'000'000};
  while (!done_.load()) {
    siginfo_t info;
    int sig = sigtimedwait(&set_, &info, &tick);
    if (sig <= 0) continue;
    if (g_stop.exchange(true)) {
      std::cerr << name_ << ": still cleaning up, please wait" << std::endl;
    } else {
      std::cerr << name_ << ": " << strsignal(sig) << ", stopping and cleaning up" << std::endl;
    }
  }
}

}  // namespace sockmesh::bench
