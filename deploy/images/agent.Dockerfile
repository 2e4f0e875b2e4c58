# SPDX-License-Identifier: Apache-2.0
# The node agent image: sockmesh-agent (its BPF objects are compiled for CO-RE and embedded in the
# binary as libbpf skeletons, so they run on any kernel with BTF) and sockmeshctl.
# Build from the repository root:
#   docker build -f deploy/images/agent.Dockerfile -t sockmesh-agent .
# The builder uses the same scripts as CI (scripts/install-deps.sh, scripts/build.sh). The BPF
# build reads the build host's /sys/kernel/btf/vmlinux for vmlinux.h; CO-RE relocates the programs
# to the node's kernel at load time.

FROM debian:12 AS build
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN bash /src/scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN SOCKMESH_BUILD_DIR=/build bash /src/scripts/build.sh --target sockmesh-agent sockmeshctl

FROM debian:12-slim
# Only the shared libraries the two binaries link (checked by tests/deploy against `ldd`).
RUN apt-get update -q \
    && apt-get install -y -q --no-install-recommends libabsl20220623 \
        libbpf1 \
        libcivetweb1 \
        libgrpc++1.51 \
        libgrpc29 \
        libprometheus-cpp-core1.0 \
        libprotobuf32 \
        libyaml-cpp0.7 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/userspace/agent/sockmesh-agent /build/userspace/ctl/sockmeshctl /usr/local/bin/
# Root, with the capabilities the DaemonSet grants (deploy/helm/sockmesh/templates/_security.tpl):
# loading BPF programs, attaching them to the host's cgroups and pinning them in the host's bpffs
# cannot be done by an unprivileged user, and the pins and cgroup files belong to root.
USER 0
ENTRYPOINT ["/usr/local/bin/sockmesh-agent"]
