#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs every Debian 12 package sockmesh needs to build, test and run. Called by the README
# commands and by .ci/run, so a fresh machine and CI install the same set.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev
  libgrpc++-dev protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libabsl-dev
  prometheus-cpp-dev libcivetweb-dev libgtest-dev libgmock-dev
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev
  # The Kubernetes API client (libcurl); its tests' local HTTPS server (openssl CLI, python3).
  libcurl4-openssl-dev openssl python3
  # The platform services' stores (PostgreSQL client, Redis client) and the servers their tests
  # start as throwaway instances.
  libpq-dev libhiredis-dev postgresql redis-server
  iproute2 procps curl ccache
  # bench/run_sidecar_bench.sh: the sidecar proxies it compares with, and its charts.
  haproxy nginx gnuplot-nox
  # The offline checks of deploy/ (tests/deploy): node runs the schema checkers that npm installs
  # from tests/deploy/package-lock.json.
  nodejs
)
# Debian's npm, unless another npm is already there (NodeSource's nodejs bundles one and conflicts
# with Debian's npm package).
command -v npm > /dev/null || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Where an init system runs, Debian starts nginx, haproxy, postgresql and redis on install. The
# tests and benchmarks start their own throwaway instances, and a system nginx on *:80 would answer
# a service VIP whose hook is missing instead of refusing it. policy-rc.d exiting 101 tells
# invoke-rc.d not to start services (the Debian convention; container images ship one).
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
