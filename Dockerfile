# syntax=docker/dockerfile:1
# mk8 image: /usr/local/bin/mk8-operator (the entrypoint) and /usr/local/bin/mk8 (the CLI).
# Build: docker build -t ghcr.io/mk8-io/mk8:0.1.0 .

FROM rust:1-bookworm AS builder
# Cargo features compiled in: every provider (EKS is optional for developers, not for the image).
ARG CARGO_FEATURES=eks
WORKDIR /src
# Dependencies first, so that a source change does not rebuild them: build against stub targets.
COPY Cargo.toml Cargo.lock ./
# Every target path of Cargo.toml gets a stub; those outside src/ (tests, benches) stay, because
# Cargo wants every declared target to exist even when it builds only the binaries.
RUN for target in $(sed -n 's/^path = "\(.*\)"/\1/p' Cargo.toml); do \
      mkdir -p "$(dirname "$target")" && echo 'fn main() {}' > "$target"; \
    done \
 && cargo build --release --locked --bins --features "$CARGO_FEATURES" \
 && rm -rf src target/release/deps/mk8* target/release/deps/libmk8* target/release/.fingerprint/mk8-*
COPY src ./src
# config/catalog holds the stack presets, config/upstream the ClusterProfile CRD `mk8 dev`
# installs; both are compiled into the binaries.
COPY config/catalog ./config/catalog
COPY config/upstream ./config/upstream
RUN cargo build --release --locked --bins --features "$CARGO_FEATURES" \
 && strip target/release/mk8-operator target/release/mk8

# distroless/cc: glibc, libgcc and CA certificates, no shell; user nonroot (65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /src/target/release/mk8-operator /src/target/release/mk8 /usr/local/bin/
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/mk8-operator"]
