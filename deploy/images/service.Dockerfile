# SPDX-License-Identifier: Apache-2.0
# One image per platform service, chosen by SERVICE: the binary sockmesh-<SERVICE> that the build
# makes under services/ (echo today; the platform's microservices as they land). Their libraries
# differ (some link libpq or hiredis), so the builder lists the Debian packages the chosen binary
# needs (runtime-packages.sh) and the runtime stage installs exactly those. Build from the
# repository root:
#   docker build -f deploy/images/service.Dockerfile --build-arg SERVICE=echo -t sockmesh-echo .

FROM debian:12 AS build
ARG SERVICE=echo
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN bash /src/scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN SOCKMESH_BUILD_DIR=/build bash /src/scripts/build.sh --target "sockmesh-${SERVICE}" \
    && bin=$(find /build/services -type f -name "sockmesh-${SERVICE}" -perm -u+x | head -1) \
    && install -D "$bin" /out/service \
    && bash /src/deploy/images/runtime-packages.sh /out/service > /out/packages

FROM debian:12-slim
COPY --from=build /out/packages /tmp/packages
RUN apt-get update -q \
    && xargs -r -a /tmp/packages apt-get install -y -q --no-install-recommends \
    && rm -rf /var/lib/apt/lists/* /tmp/packages
COPY --from=build /out/service /usr/local/bin/service
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/service"]
