#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds sockmesh-same-node-bench and runs it (defaults unless arguments are given, which are
# passed on), writing what it prints to bench/results/same_node_bench.txt. See bench/run_bench.sh
# for BUILD_DIR, JOBS and NOTE. Takes about 2.5 minutes with the defaults.
exec "$(dirname "${BASH_SOURCE[0]}")/run_bench.sh" sockmesh-same-node-bench same_node_bench "$@"
