#!/usr/bin/env bash
# Builds the real peers the tests run against, once per version, into a cache outside the
# repository, and prints the directory that holds them:
#   controlplane  etcd + kube-apiserver + kube-controller-manager (this module, k8s.io/kubernetes)
#   helm          the real Helm CLI (helm.sh/helm/v4)
# A fresh machine needs about 1 GB of module downloads; see docs/testing.md for the build times.
# Usage: tests/peers/build.sh            (prints the cache directory on stdout, progress on stderr)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
kube_version=$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$here/go.mod")
helm_version=v4.3.2
cache=${MK8_PEERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mk8/peers}
# The control plane's cache key also covers this module's sources, so a change rebuilds it.
key=$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" | sha256sum | cut -c1-12)
out="$cache/kubernetes-$kube_version-$key"
helm_out="$cache/helm-$helm_version"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false

log() { printf '[peers] %s\n' "$*" >&2; }

if [ ! -x "$out/controlplane" ]; then
  start=$SECONDS
  log "building the control plane $kube_version into $out (first time: 10-25 minutes)"
  mkdir -p "$out.tmp"
  minor=${kube_version#v1.}; minor=${minor%%.*}
  pkg=k8s.io/component-base/version
  (cd "$here" && go build -trimpath -o "$out.tmp/controlplane" -ldflags "-s -w \
      -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor \
      -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z" .)
  rm -rf "$out" && mv "$out.tmp" "$out"
  log "control plane built in $((SECONDS - start)) s"
fi

if [ ! -x "$helm_out/helm" ]; then
  start=$SECONDS
  log "building helm $helm_version into $helm_out"
  mkdir -p "$helm_out.tmp"
  GOBIN="$helm_out.tmp" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$helm_version" \
    "helm.sh/helm/v4/cmd/helm@$helm_version"
  rm -rf "$helm_out" && mv "$helm_out.tmp" "$helm_out"
  log "helm built in $((SECONDS - start)) s"
fi

mkdir -p "$cache/bin"
ln -sf "$out/controlplane" "$cache/bin/controlplane"
ln -sf "$helm_out/helm" "$cache/bin/helm"
echo "$cache/bin"
