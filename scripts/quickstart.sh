#!/usr/bin/env bash
# Quick start on a fresh Debian 12 machine, as root: installs what Pier needs, builds and
# installs it, then shows its main job: two network namespaces wired by Pier, a ping between
# them, a published port answering, the attachment table, and clean-up.
set -euo pipefail
cd "$(dirname "$0")/.."

bold() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { bold "$*"; "$@"; }

# Before anything else: the build needs Node.js >= 20.16 (Debian 12 ships 18).
bash scripts/check-node.sh
echo "== installing packages, dependencies and Pier (a few minutes the first time)"
bash scripts/install-deps.sh
[[ -d node_modules ]] || npm ci --no-audit --no-fund --loglevel=error
npm run build --silent >/dev/null 2>&1 || { echo 'build failed: run npm run build to see why' >&2; exit 1; }
bash scripts/install.sh >/dev/null
export PATH=/usr/local/bin:$PATH

# Names the demo owns; everything is removed at the end, even after a failure.
had_bridge=$(ip link show pier0 >/dev/null 2>&1 && echo yes || echo no)
had_table=$(nft list table inet pier >/dev/null 2>&1 && echo yes || echo no)
server=''
fwd4=$(sysctl -n net.ipv4.ip_forward)
fwd6=$(sysctl -n net.ipv6.conf.all.forwarding 2>/dev/null || echo 0)
cleanup() {
  [[ -n "$server" ]] && kill "$server" 2>/dev/null || true
  pier down blue >/dev/null 2>&1 || true
  pier down red >/dev/null 2>&1 || true
  [[ $had_bridge == no ]] && ip link del pier0 2>/dev/null || true
  [[ $had_table == no ]] && nft delete table inet pier 2>/dev/null || true
  # Pier turns forwarding on for isGateway networks; the demo puts it back as it was.
  sysctl -qw net.ipv4.ip_forward="$fwd4" || true
  sysctl -qw net.ipv6.conf.all.forwarding="$fwd6" 2>/dev/null || true
}
trap cleanup EXIT

echo "== the demo"
run pier up blue -p 8080:80
run pier up red
# Addresses are handed out round-robin, so ask Pier which one blue got.
blue_ip=$(pier ls --json | node -e 'const a=JSON.parse(require("fs").readFileSync(0));const b=a.find(x=>x.containerID==="pier-up-blue");console.log(b.ips.find(i=>!i.includes(":")).split("/")[0])')
run ip netns exec red ping -c 2 "$blue_ip"

# A tiny web server inside blue, on port 80, published on the host as 8080.
ip netns exec blue node -e "require('http').createServer((q,s)=>s.end('hello from blue, you are '+q.socket.remoteAddress+'\n')).listen(80)" &
server=$!
sleep 0.5
get='const u=process.argv[1];require("http").get(u,r=>r.pipe(process.stdout)).on("error",e=>{console.error(e.message);process.exit(1)})'
http_get() { # [NETNS] URL: an HTTP GET with node (curl may not be installed)
  if (($# == 2)); then bold "ip netns exec $1 http-get $2"; ip netns exec "$1" node -e "$get" "$2"
  else bold "http-get $1"; node -e "$get" "$1"; fi
}
echo; echo "# blue's port 80, published as 8080: from the host via 127.0.0.1 and the bridge address,"
echo "# and from red through the host (hairpin: red -> host:8080 -> blue)"
http_get http://127.0.0.1:8080/
http_get http://10.123.0.1:8080/
http_get red http://10.123.0.1:8080/

run pier ls
bold "pier explain blue   (first lines)"
pier explain blue | head -n 18
run pier check blue
run pier down blue
run pier down red
run pier ls
echo
echo "Done. Pier is installed in /opt/cni/bin (pier, pier-ipam); examples for runtimes are in conf/."
