#!/usr/bin/env bash
# Builds the operator's image without Docker, the way distroless makes its own base: the
# Debian packages the release binary needs (libc6, libgcc-s1, ca-certificates) unpacked into
# one layer with the binary, a nonroot user (65532), and the crate list; go-containerregistry's
# crane (pinned in image/go.mod) appends that layer to an empty OCI base, sets the
# configuration and writes the image. Then it checks what it made.
#
#   bash image/build.sh [OUT_DIR]    # default target/image
#
# Writes OUT_DIR/windflow-<version>.tar (an image archive: `docker load`, `podman load`,
# `kind load image-archive`, `crane push`) and OUT_DIR/windflow-<version>.oci.tar (an OCI
# image layout). The packages are those of this machine's Debian release, whose glibc the
# binary was linked against (the Dockerfile's base, distroless cc-debian12, is the same).
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mkdir -p "${1:-target/image}" && cd "${1:-target/image}" && pwd)"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
# Layers are the same for the same inputs: files dated at the last commit, owned by root.
epoch=$(git log -1 --format=%ct 2>/dev/null || echo 0)
# The largest the image may be, compressed: the binary and glibc, with room to grow.
max_bytes=$((60 * 1024 * 1024))

cargo build --release --locked --bin windflow

work="$(mktemp -d)"
registry=""
cleanup() {
  [ -z "$registry" ] || kill "$registry" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
crane="$work/crane"
(cd image && go build -o "$crane" github.com/google/go-containerregistry/cmd/crane)

rootfs="$work/rootfs"
mkdir -p "$rootfs/var/lib/dpkg/status.d"
packages=(libc6 libgcc-s1 ca-certificates)
# A fresh machine may have no package lists yet.
(cd "$work" && { apt-get download -q "${packages[@]}" 2>/dev/null || { apt-get update -qq && apt-get download -q "${packages[@]}"; }; } >/dev/null)
for deb in "$work"/*.deb; do
  dpkg-deb -x "$deb" "$rootfs"
  # Where scanners (Trivy, Grype) find the packages of a distroless image.
  dpkg-deb -f "$deb" > "$rootfs/var/lib/dpkg/status.d/$(dpkg-deb -f "$deb" Package)"
done
# What ca-certificates' maintainer script would make of its certificates: the one bundle.
mkdir -p "$rootfs/etc/ssl/certs"
cat "$rootfs"/usr/share/ca-certificates/mozilla/*.crt > "$rootfs/etc/ssl/certs/ca-certificates.crt"
rm -rf "$rootfs/usr/share/man" "$rootfs/usr/share/lintian"
find "$rootfs/usr/share/doc" -type f ! -name copyright -delete
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' \
  > "$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$rootfs/etc/group"
mkdir -p "$rootfs/home/nonroot" "$rootfs/tmp" "$rootfs/usr/local/bin" "$rootfs/usr/share/doc/windflow"
chmod 1777 "$rootfs/tmp"
install -m 0755 target/release/windflow "$rootfs/usr/local/bin/windflow"
# The crates in the binary, name and version, one a line.
cargo tree --locked --edges normal --prefix none --target x86_64-unknown-linux-gnu \
  | sed 's/ (.*//; s/ (\*)$//' | sort -u > "$rootfs/usr/share/doc/windflow/crates.txt"
crates=$(wc -l < "$rootfs/usr/share/doc/windflow/crates.txt")

# The binary runs from these files alone: its loader and libraries are the packages'.
if [ "$(id -u)" = 0 ]; then
  chroot "$rootfs" /usr/local/bin/windflow --version
else
  unshare --map-root-user chroot "$rootfs" /usr/local/bin/windflow --version
fi

layer="$work/layer.tar"
tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner -C "$rootfs" -cf "$layer" .

# crane writes configurations to a registry: one of its own, in memory, for this build.
"$crane" registry serve --address 127.0.0.1:0 2> "$work/registry.log" &
registry=$!
for _ in $(seq 50); do
  port=$(sed -n 's/.*serving on port \([0-9]*\).*/\1/p' "$work/registry.log")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$work/registry.log" >&2; exit 1; }
ref="127.0.0.1:$port/windflow:$version"
"$crane" append --oci-empty-base --new_layer "$layer" --new_tag "$ref" >/dev/null
"$crane" mutate "$ref" --tag "$ref" \
  --set-platform linux/amd64 \
  --user 65532:65532 \
  --entrypoint /usr/local/bin/windflow --cmd run \
  --exposed-ports 8080/tcp \
  --label org.opencontainers.image.title=windflow \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
  --label org.opencontainers.image.licenses=Apache-2.0 \
  --label "io.windflow.crates=/usr/share/doc/windflow/crates.txt ($crates crates)" >/dev/null

# What the image must be, or CI fails: the chart's user, `windflow run`, linux/amd64, its size.
config=$("$crane" config "$ref")
for wanted in '"User":"65532:65532"' '"Entrypoint":["/usr/local/bin/windflow"]' '"Cmd":["run"]' \
  '"architecture":"amd64"' '"os":"linux"' '"8080/tcp":{}'; do
  grep -qF "$wanted" <<<"$config" || { echo "image/build.sh: the configuration lacks $wanted: $config" >&2; exit 1; }
done
size=$("$crane" manifest "$ref" | grep -o '"size":[0-9]*' | cut -d: -f2 | awk '{ total += $1 } END { print total }')
if [ "$size" -gt "$max_bytes" ]; then
  echo "image/build.sh: the image is $size bytes, more than $max_bytes" >&2
  exit 1
fi

"$crane" pull "$ref" "$out/windflow-$version.tar"
"$crane" pull --format oci "$ref" "$work/oci"
tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner -C "$work/oci" -cf "$out/windflow-$version.oci.tar" .
echo "image/build.sh: windflow:$version, $((size / 1024 / 1024)) MiB compressed, $crates crates, digest $("$crane" digest "$ref")"
echo "image/build.sh: $out/windflow-$version.tar and $out/windflow-$version.oci.tar"
