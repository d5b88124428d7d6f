#!/usr/bin/env bash
# Installs the Debian packages the podman end-to-end test (test-e2e/podman.test.ts) needs;
# prints nothing and changes nothing when all are there.
set -euo pipefail
# podman 4.3 (CNI backend) with the runc runtime and conmon, run by hand with a private
# containers.conf; busybox-static: the containers' root filesystem (no registry is reachable);
# containernetworking-plugins: the `loopback` plugin podman runs on every container's lo;
# nftables and iproute2: the test checks Pier's table, the bridge and the veths.
# No recommends (install-deps.sh never installs them): buildah, slirp4netns, fuse-overlayfs and
# uidmap are for rootless use and image builds, which the test does not do.
exec bash "$(dirname "$0")/install-deps.sh" podman runc conmon busybox-static containernetworking-plugins nftables iproute2
