#!/usr/bin/env bash
# Builds the Kubernetes test components from the Go module in test-e2e/kube (kube-apiserver,
# kube-controller-manager, kubelet, kube-scheduler, and etcd at the version that k8s.io/kubernetes requires) into a
# cache directory keyed by the Kubernetes version, default /var/cache/pier-kube/<version>/
# (override with PIER_KUBE_CACHE, the parent of the version folders). Builds only what is missing
# or stale; the last line on stdout is the directory. Progress goes to stderr.
#
# Atomic: binaries are built into a temporary folder beside the cache and renamed into place, and
# the stamp (a hash of go.mod, go.sum and the build flags) is written last; an interrupted build
# leaves no half binary and no stamp, so the next run builds again. A lock serializes concurrent
# callers (two tests starting at once build once).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mod="$root/test-e2e/kube"
cd "$mod"

version="$(go list -m -f '{{.Version}}' k8s.io/kubernetes)"
[[ "$version" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || { echo "kube-build: unexpected k8s.io/kubernetes version '$version'" >&2; exit 1; }
minor="${BASH_REMATCH[1]}"
cache="${PIER_KUBE_CACHE:-/var/cache/pier-kube}/$version"
mkdir -p "$cache"

# What hack/lib/version.sh stamps into release builds, so /version and the kubelet's Node status
# report v1.34.4 rather than v0.0.0-master.
xflags=""
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  xflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
ldflags="-s -w$xflags"
pkgs=(
  k8s.io/kubernetes/cmd/kube-apiserver
  k8s.io/kubernetes/cmd/kube-controller-manager
  k8s.io/kubernetes/cmd/kubelet
  k8s.io/kubernetes/cmd/kube-scheduler
  go.etcd.io/etcd/server/v3
)
# `go build -o DIR` names each binary after its import path, major-version suffix dropped:
# go.etcd.io/etcd/server/v3 -> server.
names=(kube-apiserver kube-controller-manager kubelet kube-scheduler etcd)
built=(kube-apiserver kube-controller-manager kubelet kube-scheduler server)
stamp="$( (cat go.mod go.sum; echo "$ldflags CGO_ENABLED=0 -trimpath $(go env GOVERSION)") | sha256sum | cut -c1-64)"

# The indexes of the binaries to build: all of them when the stamp is not this build's, else
# only those missing (a binary added to the list later is built alone, and the others, which
# running tests may be using, stay in place).
todo() {
  local i
  for i in "${!names[@]}"; do
    if [[ "$(cat "$cache/.stamp" 2>/dev/null)" != "$stamp" || ! -x "$cache/${names[$i]}" ]]; then echo "$i"; fi
  done
}

exec 9>"$cache/.lock"
if [[ -n "$(todo)" ]]; then
  flock 9
  mapfile -t build < <(todo)
  if (( ${#build[@]} )); then
    # A stale stamp: everything is rebuilt, and the stamp goes first so that a killed build
    # leaves none. A current stamp: its binaries are fresh, and it stays.
    (( ${#build[@]} == ${#names[@]} )) && rm -f "$cache/.stamp"
    # Under the lock no other build runs: a .build.* folder is what a killed build left.
    rm -rf "$cache"/.build.*
    tmp="$(mktemp -d "$cache/.build.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    want=(); for i in "${build[@]}"; do want+=("${pkgs[$i]}"); done
    echo "kube-build: building ${want[*]} (Kubernetes $version) into $cache (the first build takes a long time)" >&2
    start=$SECONDS
    # Static, like upstream's release binaries: no cgo, so no libc version ties.
    CGO_ENABLED=0 go build -trimpath -ldflags="$ldflags" -o "$tmp/" "${want[@]}"
    for i in "${build[@]}"; do mv -f "$tmp/${built[$i]}" "$cache/${names[$i]}"; done
    echo "$stamp" > "$cache/.stamp.tmp" && mv -f "$cache/.stamp.tmp" "$cache/.stamp"
    echo "kube-build: built in $((SECONDS - start)) s" >&2
  fi
fi
echo "$cache"
