# The `windflow` binary in a minimal, non-root image.
#   docker build -t ghcr.io/windflow/windflow:0.1.0 .
# Without Docker, `bash image/build.sh` makes the same image (user, entrypoint, files) from
# Debian's packages.
FROM docker.io/library/rust:1.94-slim-bookworm AS build
WORKDIR /src
# jemalloc, the operator's allocator, is built from its C sources with make.
RUN apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/*
COPY Cargo.toml Cargo.lock build.rs ./
COPY src src
COPY migrations migrations
COPY benches benches
RUN cargo build --release --locked --bin windflow \
 && cargo tree --locked --edges normal --prefix none --target x86_64-unknown-linux-gnu \
    | sed 's/ (.*//' | sort -u > crates.txt

# distroless/cc: glibc and CA certificates, no shell; `nonroot` is uid 65532, as the chart's
# securityContext expects.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/windflow /usr/local/bin/windflow
COPY --from=build /src/crates.txt /usr/share/doc/windflow/crates.txt
LABEL org.opencontainers.image.title=windflow org.opencontainers.image.licenses=Apache-2.0
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/windflow"]
CMD ["run"]
