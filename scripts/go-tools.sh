#!/usr/bin/env bash
# Builds the Go programs the runtime tests and `npm run bench` drive, at the versions pinned in
# test-e2e/go-pins.json, through the Go module proxy (Debian 12 packages none of them):
#   containerd 2.x (containerd, containerd-shim-runc-v2, ctr) -> ${PIER_CONTAINERD_CACHE:-/var/cache/pier-containerd}/<version>/
#   cnitool, one per version                                  -> ${PIER_CNITOOL_CACHE:-/var/cache/pier-cnitool}/<version>/cnitool
# and downloads the CRI API module (k8s.io/cri-api) into the Go module cache, where the tests load
# its api.proto (nothing of it is copied into this repository). Builds only what is missing: a
# second run does nothing and prints nothing. Progress goes to stderr.
#
# Atomic: each version is built into a temporary folder beside its cache folder, and the stamp
# (the version, the Go version and the flags) is written last, so an interrupted build leaves
# no stamp and the next run builds again. A lock serializes concurrent callers (a test and .ci/run).
# Needs Go >= 1.25 (what containerd 2.2 declares); older Go fetches a newer toolchain by itself
# (GOTOOLCHAIN=auto), through the same proxy.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
pins="$root/test-e2e/go-pins.json"
command -v go >/dev/null || { echo "go-tools: Go is missing (the tests build containerd 2.x and cnitool from Go modules)" >&2; exit 1; }
pin() { node -e 'const p=require(process.argv[1]);const v=p[process.argv[2]];console.log(Array.isArray(v)?v.join(" "):v)' "$pins" "$1"; }

# Outside any module: `go install pkg@version` and `go mod download mod@version` need no go.mod.
cd "$(mktemp -d)"
trap 'rm -rf "$PWD"' EXIT
export GOWORK=off GOFLAGS=-mod=mod

# build CACHE-DIR VERSION STAMP PACKAGE... : `go install` the packages into CACHE-DIR/VERSION.
build() {
  local dir="$1/$2" stamp="$3"
  shift 3
  mkdir -p "$dir"
  [[ "$(cat "$dir/.stamp" 2>/dev/null)" == "$stamp" ]] && return 0
  exec 9>"$dir/.lock"
  flock 9
  if [[ "$(cat "$dir/.stamp" 2>/dev/null)" != "$stamp" ]]; then
    rm -f "$dir/.stamp"
    local tmp
    tmp="$(mktemp -d "$dir/.build.XXXXXX")"
    echo "go-tools: building $* into $dir" >&2
    local start=$SECONDS
    # Static (no cgo): no libc version ties, as upstream's release binaries. no_btrfs: the btrfs
    # snapshotter needs C headers, and the tests use overlayfs.
    if ! CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath -ldflags='-s -w' -tags no_btrfs "$@" >&2; then
      rm -rf "$tmp"
      exit 1
    fi
    for f in "$tmp"/*; do mv -f "$f" "$dir/"; done
    rmdir "$tmp"
    echo "$stamp" >"$dir/.stamp.tmp" && mv -f "$dir/.stamp.tmp" "$dir/.stamp"
    echo "go-tools: built in $((SECONDS - start)) s" >&2
  fi
  exec 9>&-
}

gover="$(go env GOVERSION)"
v="$(pin containerd2)"
m=github.com/containerd/containerd/v2
build "${PIER_CONTAINERD_CACHE:-/var/cache/pier-containerd}" "$v" "$v $gover static no_btrfs" \
  "$m/cmd/containerd@$v" "$m/cmd/containerd-shim-runc-v2@$v" "$m/cmd/ctr@$v"
for v in $(pin cnitool); do
  build "${PIER_CNITOOL_CACHE:-/var/cache/pier-cnitool}" "$v" "$v $gover static" "github.com/containernetworking/cni/cnitool@$v"
done
# Quiet when the module is in the cache already (no network then).
go mod download "k8s.io/cri-api@$(pin criApi)"
