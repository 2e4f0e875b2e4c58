#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds sockmesh-policy-bench and runs it (defaults unless arguments are given, which are passed
# on), writing what it prints to bench/results/policy_bench.txt. See bench/run_bench.sh for
# BUILD_DIR, JOBS and NOTE.
exec "$(dirname "${BASH_SOURCE[0]}")/run_bench.sh" sockmesh-policy-bench policy_bench "$@"
