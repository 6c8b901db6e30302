# Multi-stage build of the three crm binaries.
# Not built in this project's CI (no Docker engine on the build machines);
# kept deliberately simple. Build: docker build -t crm .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin crm --bin crm-server --bin crm-acceptance

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/crm --create-home crm
COPY --from=build /src/target/release/crm /src/target/release/crm-server /src/target/release/crm-acceptance /usr/local/bin/
USER crm
WORKDIR /var/lib/crm
ENV CRM_DB=/var/lib/crm/crm.db
EXPOSE 8080
ENTRYPOINT ["crm-server"]
