#!/usr/bin/env bash
# Installs Debian packages that are missing; does nothing (and prints nothing) when all are there.
# Without arguments: what Pier's build, demo and tests need. With arguments: those packages.
set -euo pipefail
# nftables: NAT rules; iproute2 and iputils-ping: tests check the kernel with ip -j and ping;
# containernetworking-plugins: the reference plugins the tests and benchmarks compare against;
# conntrack: clears stale UDP flows after a new hostPort; strace: the crash tests kill Pier on
# entry to an exact system call (test-e2e/kill-points.ts), and nft-netlink lists what it runs.
pkgs=("$@")
((${#pkgs[@]})) || pkgs=(nftables iproute2 iputils-ping containernetworking-plugins conntrack strace)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
