# Outpost in a container: a build stage with a cached dependency layer, then
# a slim runtime with a non-root user, tini as init, the data directory as a
# volume, and a health check on /health.
#
# Builds with `docker build .` and with `buildah bud .` / `podman build .`:
# base images are named in full (registry included), which podman needs.
# Pin them by digest for reproducible builds, for example:
#   --build-arg RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim@sha256:<digest>
# (`skopeo inspect docker://docker.io/library/debian:bookworm-slim` prints it).
ARG RUST_IMAGE=docker.io/library/rust:1.95.0-slim-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# Dependencies first, built against stub sources: this layer is rebuilt only
# when Cargo.toml or Cargo.lock change, not on every edit. The toolchain is
# the base image's, the version rust-toolchain.toml pins (a test checks the
# two agree); that file stays out, or rustup would fetch its components.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked --bin outpost \
 && rm -rf src target/release/.fingerprint/outpost-* target/release/deps/outpost-* target/release/deps/liboutpost-*
COPY src ./src
# A stripped binary without debug info (the release profile keeps line
# tables for profiling on a workstation).
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=symbols
RUN cargo build --release --locked --bin outpost \
 && cp target/release/outpost /outpost

FROM ${RUNTIME_IMAGE}
# tini reaps and forwards signals; nothing else is installed: Outpost makes
# no TLS connections, so no ca-certificates.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 5353 --home-dir /var/lib/outpost --shell /usr/sbin/nologin outpost \
 && mkdir -p /var/lib/outpost /etc/outpost \
 && chown outpost:outpost /var/lib/outpost
COPY --from=build /outpost /usr/local/bin/outpost
COPY config/docker.toml /etc/outpost/outpost.toml
COPY zones /etc/outpost/zones
# Secrets come as files: relative `secret_file` and `control_token_file`
# are read from here, where `docker run -v`, compose and podman secrets put
# them (/run/secrets/NAME).
ENV CREDENTIALS_DIRECTORY=/run/secrets
# Docker and podman let unprivileged users bind port 53 inside the
# container (net.ipv4.ip_unprivileged_port_start=0 in its namespace).
USER outpost
WORKDIR /var/lib/outpost
VOLUME ["/var/lib/outpost"]
EXPOSE 53/udp 53/tcp 8053/tcp
# `outpost health` asks /health on the configured control address: 0 when
# every zone is serving.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/outpost", "health"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/outpost"]
CMD ["serve", "--config", "/etc/outpost/outpost.toml"]
