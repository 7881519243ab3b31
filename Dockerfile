# The `windflow` binary in a minimal, non-root image.
#   docker build -t ghcr.io/windflow/windflow:0.1.0 .
FROM docker.io/library/rust:1.94-slim-bookworm AS build
WORKDIR /src
# jemalloc, the operator's allocator, is built from its C sources with make.
RUN apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/*
COPY Cargo.toml Cargo.lock build.rs ./
COPY src src
COPY migrations migrations
COPY benches benches
RUN cargo build --release --locked --bin windflow

# distroless/cc: glibc and CA certificates, no shell; `nonroot` is uid 65532, as the chart's
# securityContext expects.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/windflow /usr/local/bin/windflow
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/windflow"]
CMD ["run"]
