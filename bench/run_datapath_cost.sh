#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds sockmesh-datapath-cost and runs it (defaults unless arguments are given, which are passed
# on), writing what it prints to bench/results/datapath_cost.txt: per-program BPF run time per
# packet, request, connection and MB without the short-circuit, and the throughput ratio to no
# hooks. See bench/run_bench.sh for BUILD_DIR, JOBS and NOTE. Takes about 45 s with the defaults.
exec "$(dirname "${BASH_SOURCE[0]}")/run_bench.sh" sockmesh-datapath-cost datapath_cost "$@"
