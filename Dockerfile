# syntax=docker/dockerfile:1
#
# souk: one image holding every binary; the command picks the one that runs
# (scripts/docker-entrypoint):
#
#   docker build -t souk .
#   docker run --rm -p 127.0.0.1:8082:8082 -v souk-data:/data souk        souk up, all in one
#   docker run --rm souk catalog --help                                      one service
#   docker compose up --build                      one container per process (docker-compose.yml)
#
# Stage 1 builds with the Debian packages of scripts/deps.sh (build list) and
# installs into /staging/usr/local; stage 2 has only the runtime libraries,
# the binaries and the web UI, and runs as the non-root user souk (uid 10001)
# owning /data.  tests/packaging/check_dockerfile.py checks that the runtime
# package list below covers every library the binaries link.

ARG DEBIAN_IMAGE=debian:12

# ---- build ------------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
# The package list is scripts/deps.sh's, so that it is kept in one place.
COPY scripts/deps.sh scripts/deps.sh
RUN sh scripts/deps.sh build && rm -rf /var/lib/apt/lists/*
COPY . .
RUN meson setup /build --buildtype=release -Dwerror=true --prefix=/usr/local \
    && ninja -C /build \
    && DESTDIR=/staging meson install -C /build --no-rebuild --strip \
    && install -m 0755 scripts/docker-entrypoint /staging/usr/local/bin/souk-entrypoint \
    && install -m 0755 scripts/docker-healthcheck /staging/usr/local/bin/souk-healthcheck \
    && test -x /staging/usr/local/bin/souk \
    && test -x /staging/usr/local/bin/souk-broker \
    && test -f /staging/usr/local/share/souk/web/index.html

# ---- runtime ----------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
# Runtime libraries only (one per line; checked against the binaries' ldd by
# tests/packaging/check_dockerfile.py).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates \
        libargon2-1 \
        libcjson1 \
        libcurl4 \
        libevent-2.1-7 \
        libhiredis0.14 \
        libjwt0 \
        librdkafka1 \
        libsqlite3-0 \
        libssl3 \
        libuuid1 \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 souk \
    && useradd --uid 10001 --gid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin souk \
    && install -d -o 10001 -g 10001 -m 0750 /data \
    && install -d -o 10001 -g 10001 -m 0755 /jwt
COPY --from=build /staging/usr/local/ /usr/local/

USER 10001:10001
# Every default data dir (./data for souk up, ./data/<name> for one service)
# is relative to /, so it lands in the volume.
WORKDIR /
VOLUME ["/data"]
# Kafka protocol, key store (RESP), user, auth, gateway, analytics, booking,
# catalog, notification, payment: the ports of `souk up`.
EXPOSE 9092 6379 8080 8081 8082 8083 8084 8085 8086 8087
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/souk-entrypoint"]
CMD ["up"]
