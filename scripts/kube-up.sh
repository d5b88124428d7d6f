#!/usr/bin/env bash
# Starts a Kubernetes test control plane by hand (etcd, kube-apiserver, kube-controller-manager when
# --cluster-cidr is given), builds the binaries first if needed (scripts/kube-build.sh), prints
# `export KUBECONFIG=...` on stdout and runs until Ctrl-C, which stops it and removes its files.
#   sudo scripts/kube-up.sh --cluster-cidr 10.244.0.0/16,fd00:244::/56 [--netns NS] [--name NAME]
set -euo pipefail
cd "$(dirname "$0")/.."
exec node --import tsx test-e2e/kube/kube-up.ts "$@"
