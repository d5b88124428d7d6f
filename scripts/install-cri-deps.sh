#!/usr/bin/env bash
# Installs the Debian packages the containerd CRI tests (test-e2e/cri-containerd.test.ts), the
# cnitool tests and the CRI part of `npm run bench` need; prints nothing and changes nothing when
# all are there. The Go-built tools (containerd 2.x, cnitool) come from scripts/go-tools.sh.
set -euo pipefail
# containerd 1.6 with runc: the CRI runtime under test (Debian's, as users get it);
# gcc and libc6-dev: the static pause binary (gcc -static needs libc.a);
# busybox-static: the containers' root filesystem (no registry is reachable);
# containernetworking-plugins: `loopback` for every pod's lo, and the reference chain of the bench;
# nftables, iproute2: the tests check Pier's table, the bridge and the veths;
# util-linux: nsenter and unshare, to run containerd in the netns that plays the host.
exec bash "$(dirname "$0")/install-deps.sh" containerd runc gcc libc6-dev busybox-static containernetworking-plugins nftables iproute2 util-linux
