#!/usr/bin/env bash
# Starts the single-node test cluster by hand: etcd, kube-apiserver, kube-controller-manager, a
# kubelet and containerd, each in throwaway netns and test dirs (test-e2e/kube/node.ts). Builds the
# Kubernetes binaries first if needed (scripts/kube-build.sh). Prints `export KUBECONFIG=...` on
# stdout and runs until Ctrl-C, which stops everything and removes its files.
#   sudo scripts/kube-node-up.sh [--containerd go|debian] [--pier-by-hand] [--image dist/pier-image.tar]
set -euo pipefail
cd "$(dirname "$0")/.."
exec node --import tsx test-e2e/kube/kube-node-up.ts "$@"
