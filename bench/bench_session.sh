#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What the run_*_bench.sh scripts share, sourced: building targets, the result header, and running
# a benchmark in a session of its own. Needs `root` (the repository) set by the caller.

# bench_build TARGET...: configures $BUILD_DIR (default build-bench) and builds the targets with
# JOBS (default 2) jobs. Sets `build` to the build directory.
bench_build() {
  build=${BUILD_DIR:-$root/build-bench}
  cmake -S "$root" -B "$build" -G Ninja >/dev/null
  cmake --build "$build" --target "$@" -j"${JOBS:-2}"
}

# bench_header COMMAND...: the lines a result file starts with (date, commit, command, NOTE).
bench_header() {
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ)  commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo '+dirty')"
  echo "# \$ $*"
  if [[ -n ${NOTE:-} ]]; then echo "# note: $NOTE"; fi
}

# bench_run_in_session LOG COMMAND...: runs COMMAND with its output appended to LOG and shown,
# and returns its exit status.
# setsid: its own session, so that a benchmark that raises its priority can do so for its own
# autogroup (sched_autogroup_enabled) without touching the caller's. A new session does not get
# the terminal's Ctrl-C, so the trap passes SIGINT/SIGTERM on as SIGTERM (a background command
# starts with SIGINT ignored, and a shell script cannot undo that); the benchmark then stops and
# cleans up. tee ignores SIGINT so that it keeps recording the benchmark's last lines.
bench_run_in_session() {
  local log=$1
  shift
  setsid "$@" > >(trap '' INT; exec tee -a "$log") 2>&1 &
  local pid=$! status=0
  trap 'kill -TERM "$pid" 2>/dev/null || true' INT TERM
  while true; do
    wait "$pid" && status=0 || status=$?
    # A trapped signal interrupts wait while the benchmark is still cleaning up: wait again.
    kill -0 "$pid" 2>/dev/null || break
  done
  trap - INT TERM
  wait  # for tee
  return "$status"
}
