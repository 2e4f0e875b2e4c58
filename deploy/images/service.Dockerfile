# SPDX-License-Identifier: Apache-2.0
# One image per platform service, chosen by SERVICE: the binary sockmesh-<SERVICE> built from
# services/<SERVICE>/ (echo today; the platform's microservices as they land). Build from the
# repository root:
#   docker build -f deploy/images/service.Dockerfile --build-arg SERVICE=echo -t sockmesh-echo .

FROM debian:12 AS build
ARG SERVICE=echo
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN bash /src/scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN SOCKMESH_BUILD_DIR=/build bash /src/scripts/build.sh --target "sockmesh-${SERVICE}" \
    && install -D "/build/services/${SERVICE}/sockmesh-${SERVICE}" /out/service

FROM debian:12-slim
RUN apt-get update -q \
    && apt-get install -y -q --no-install-recommends libabsl20220623 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/service /usr/local/bin/service
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/service"]
