#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs dependencies, builds, and runs every test: unit, bpf (BPF_PROG_TEST_RUN and verifier
# loads) and privileged (real sockets through real hooks, each in a throwaway cgroup). Needs root.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
  echo "test: run as root: the bpf and privileged tests load BPF programs and create cgroups" >&2
  exit 1
fi
bash "$root/scripts/install-deps.sh"
bash "$root/scripts/build.sh"
cd "${SOCKMESH_BUILD_DIR:-$root/build}"
# Unit tests run in parallel; bpf and privileged tests are RUN_SERIAL (see tests/CMakeLists.txt).
ctest --output-on-failure -j "$(nproc)" "$@"
