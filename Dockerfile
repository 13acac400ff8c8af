# Outpost in a container: build stage, then a slim runtime with a non-root
# user, tini as init, and the data directory as a volume.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 5353 --home-dir /var/lib/outpost --shell /usr/sbin/nologin outpost \
 && mkdir -p /var/lib/outpost /etc/outpost \
 && chown outpost:outpost /var/lib/outpost
COPY --from=build /src/target/release/outpost /usr/local/bin/outpost
COPY config/docker.toml /etc/outpost/outpost.toml
COPY zones /etc/outpost/zones
# Docker lets unprivileged users bind port 53 inside the container
# (net.ipv4.ip_unprivileged_port_start=0 is its default since 20.10).
USER outpost
WORKDIR /var/lib/outpost
VOLUME ["/var/lib/outpost"]
EXPOSE 53/udp 53/tcp 8053/tcp
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/outpost"]
CMD ["serve", "--config", "/etc/outpost/outpost.toml"]
