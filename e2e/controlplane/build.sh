#!/usr/bin/env bash
# Builds the pinned control plane (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, etcd, kwok) with the ordinary `go build`, and prints the directory that holds them.
#
# The binaries go to a cache directory keyed by the pins (go.mod, go.sum and this script), so
# they are built once per pin and reused by every later run. WINDFLOW_CONTROLPLANE_CACHE
# chooses the cache (default ~/.cache/windflow/controlplane).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

command -v go >/dev/null || {
  echo "build.sh: no 'go' on PATH: the control plane is built from the Go module in $here" >&2
  exit 1
}

key=$(cat go.mod go.sum build.sh thirdparty.txt | sha256sum | cut -c1-16)
cache="${WINDFLOW_CONTROLPLANE_CACHE:-$HOME/.cache/windflow/controlplane}"
out="$cache/$key"
mkdir -p "$cache"

# One build at a time per cache: test binaries (and CI) may ask at once.
exec 9>"$cache/.lock"
flock 9
if [ -f "$out/.complete" ]; then
  echo "$out"
  exit 0
fi

# The binaries are the cache. Go's module and build caches for them (about 4 GB) live only for
# this build, so that neither CI's disk nor the user's own Go caches carry them afterwards.
scratch="$cache/.go-$key"
rm -rf "$scratch"
export GOMODCACHE="$scratch/mod" GOCACHE="$scratch/build" GOFLAGS=-modcacherw
trap 'rm -rf "$scratch"' EXIT

version() { go list -m -f '{{.Version}}' "$1"; }
kubernetes=$(version k8s.io/kubernetes)
kwok=$(version sigs.k8s.io/kwok)
etcd=$(version go.etcd.io/etcd/server/v3)
minor=${kubernetes#v1.}
minor=${minor%%.*}
build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# What Kubernetes' own release build stamps (hack/lib/version.sh), so that /version and
# `kubectl version` report the release rather than v0.0.0-master.
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$kubernetes -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done
ldflags+=" -X sigs.k8s.io/kwok/pkg/consts.Version=${kwok#v}"
ldflags+=" -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${kubernetes#v}"

rm -rf "$out.partial"
mkdir -p "$out.partial"
echo "build.sh: building kubernetes $kubernetes, etcd $etcd, kwok $kwok into $out" >&2
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out.partial/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubectl \
  sigs.k8s.io/kwok/cmd/kwok
# etcd's main package is the module's root, whose binary would be named `v3`.
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.partial/etcd" go.etcd.io/etcd/server/v3

# kwok has no stages of its own: its "fast" set (nodes Ready at once with a lease heartbeat,
# pods Running and Ready once bound) ships as YAML in its module.
stages="$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage"
for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
  pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
  cat "$stages/$stage.yaml"
  echo "---"
done > "$out.partial/kwok-stages.yaml"

# Third-party CRDs (thirdparty.txt). external-dns's module declares a Go newer than this
# machine's; downloading it (nothing is built) takes the approved newer toolchain from the proxy.
mkdir -p "$out.partial/thirdparty"
grep -v '^\s*#' thirdparty.txt | while read -r module version sum files; do
  [ -n "$module" ] || continue
  json=$(GOTOOLCHAIN=go1.27.3 GOFLAGS="$GOFLAGS -mod=mod" go mod download -json "$module@$version")
  dir=$(sed -n 's/.*"Dir": "\(.*\)",/\1/p' <<<"$json")
  got=$(sed -n 's/.*"Sum": "\(.*\)",/\1/p' <<<"$json")
  if [ -z "$dir" ] || [ "$got" != "$sum" ]; then
    echo "build.sh: $module@$version: expected $sum, got '$got' ($json)" >&2
    exit 1
  fi
  for file in $files; do cp "$dir/$file" "$out.partial/thirdparty/"; done
done

rm -rf "$out"
mv "$out.partial" "$out"
touch "$out/.complete"
# Builds of earlier pins are not used again.
find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -exec rm -rf {} +
echo "$out"
