# Multi-stage build of the three crm binaries.
# Not built in this project's CI (no Docker engine on the build machines, so
# this file has never been built here); kept deliberately simple.
# Build: docker build -t crm .
# Run:   docker run -e CRM_ADMIN_TOKEN="$(openssl rand -hex 32)" -p 8080:8080 -v crm-data:/var/lib/crm crm
FROM rust:1.95-bookworm AS build
WORKDIR /src
# .dockerignore keeps target/, databases and seal keys out of this copy.
COPY . .
RUN cargo build --release --locked --bin crm --bin crm-server --bin crm-acceptance

FROM debian:bookworm-slim
# curl only for the HEALTHCHECK below.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/crm --create-home crm
COPY --from=build /src/target/release/crm /src/target/release/crm-server /src/target/release/crm-acceptance /usr/local/bin/
USER crm
WORKDIR /var/lib/crm
# The database, its WAL and its seal keys (crm.db.keys/) live here: keep
# them on a volume so a new image does not lose them.
VOLUME ["/var/lib/crm"]
ENV CRM_DB=/var/lib/crm/crm.db
# Inside a container the published port is reached through the container's
# own interface, not its loopback. The console cookie stays Secure: put a
# TLS reverse proxy in front (and name it with --trusted-proxy).
ENV CRM_LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["crm-server"]
