# SPDX-License-Identifier: Apache-2.0
# The control plane image: sockmesh-control, run as an unprivileged user (it needs nothing but
# the network and its service account's token).
# Build from the repository root:
#   docker build -f deploy/images/control.Dockerfile -t sockmesh-control .

FROM debian:12 AS build
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN bash /src/scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN SOCKMESH_BUILD_DIR=/build bash /src/scripts/build.sh --target sockmesh-control

FROM debian:12-slim
RUN apt-get update -q \
    && apt-get install -y -q --no-install-recommends libabsl20220623 \
        libcivetweb1 \
        libcurl4 \
        libgrpc++1.51 \
        libgrpc29 \
        libprometheus-cpp-core1.0 \
        libprotobuf32 \
        libyaml-cpp0.7 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/control_plane/sockmesh-control /usr/local/bin/
# The same numeric user as the Deployment's runAsUser.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/sockmesh-control"]
