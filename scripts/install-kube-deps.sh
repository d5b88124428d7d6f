#!/usr/bin/env bash
# Installs the Debian packages that the Kubernetes test cluster (test-e2e/kube) needs; prints
# nothing and changes nothing when all are there.
set -euo pipefail
# openssl: the cluster's CA and certificates; iproute2: `ip netns exec` runs the components in a
# netns; util-linux: flock serializes concurrent builds. Go (1.26, from the machine image) builds
# the components from Go modules (scripts/kube-build.sh); kubectl comes with the machine image too.
exec bash "$(dirname "$0")/install-deps.sh" openssl iproute2 util-linux
