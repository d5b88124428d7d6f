#!/usr/bin/env bash
# Installs pier and pier-ipam into the CNI bin dir (and `pier` on PATH), and, when asked, a
# conflist into the CNI config dir. Idempotent: running it twice changes nothing the second time.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/install.sh [--prefix DIR] [--bin-dir DIR] [--conf-dir DIR] [--conflist FILE] [--no-build]

  --prefix DIR     root for the defaults below (default /)
  --bin-dir DIR    where runtimes look for CNI plugins (default PREFIX/opt/cni/bin)
  --conf-dir DIR   where runtimes look for network configs (default PREFIX/etc/cni/net.d)
  --conflist FILE  also install FILE into the conf dir (e.g. conf/10-pier-containerd.conflist)
  --no-build       install dist/pier as it is; fail if it is missing
                   (without it, dist/pier is built when missing or older than src/)
USAGE
}

prefix=/
bin_dir=''
conf_dir=''
conflist=''
build=1
while (($#)); do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a value}; shift 2 ;;
    --bin-dir) bin_dir=${2:?--bin-dir needs a value}; shift 2 ;;
    --conf-dir) conf_dir=${2:?--conf-dir needs a value}; shift 2 ;;
    --conflist) conflist=${2:?--conflist needs a value}; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
prefix=${prefix%/}
bin_dir=${bin_dir:-$prefix/opt/cni/bin}
conf_dir=${conf_dir:-$prefix/etc/cni/net.d}
path_dir=$prefix/usr/local/bin

cd "$(dirname "$0")/.."
# Build when dist/pier is missing or older than what it is built from: after a `git pull` an
# existing dist/pier is the previous version, and installing it would be an upgrade that isn't.
sources_newer() { [[ -n "$(find src scripts/build.mjs package.json package-lock.json -newer dist/pier -print -quit 2>/dev/null)" ]]; }
if [[ ! -x dist/pier ]] || sources_newer; then
  if ((build)); then
    bash scripts/check-node.sh
    [[ -d node_modules ]] || npm ci --no-audit --no-fund
    npm run build >/dev/null
  elif [[ ! -x dist/pier ]]; then
    echo "install.sh: dist/pier is missing; run npm run build" >&2
    exit 1
  else
    echo "install.sh: dist/pier is older than the sources; installing it as it is (--no-build)" >&2
  fi
fi

# Copy to a temp name in the target dir, then rename: a runtime starting the plugin meanwhile
# runs the old binary or the new one, never a half-written file ("text file busy" avoided).
install_file() { # SRC DEST MODE
  local src=$1 dest=$2 mode=$3
  if [[ -f "$dest" ]] && cmp -s "$src" "$dest"; then
    echo "unchanged $dest"
    return
  fi
  local tmp
  tmp=$(mktemp "$(dirname "$dest")/.pier-install.XXXXXX")
  cp "$src" "$tmp"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$dest"
  echo "installed $dest"
}

install -d -m 0755 "$bin_dir" "$path_dir"
install_file dist/pier "$bin_dir/pier" 0755
# pier-ipam is the same program under another name: a hard link in the same directory.
if [[ ! "$bin_dir/pier-ipam" -ef "$bin_dir/pier" ]]; then
  ln -f "$bin_dir/pier" "$bin_dir/.pier-ipam.tmp"
  mv -f "$bin_dir/.pier-ipam.tmp" "$bin_dir/pier-ipam"
  echo "linked $bin_dir/pier-ipam"
fi
if [[ "$(readlink "$path_dir/pier" 2>/dev/null)" != "$bin_dir/pier" ]]; then
  ln -sfn "$bin_dir/pier" "$path_dir/pier"
  echo "linked $path_dir/pier -> $bin_dir/pier"
fi
# CNI_PATH is usually only the bin dir: runtimes also need loopback there (Debian's reference
# plugins live in /usr/lib/cni).
if [[ ! -e "$bin_dir/loopback" && -x /usr/lib/cni/loopback ]]; then
  ln -s /usr/lib/cni/loopback "$bin_dir/loopback"
  echo "linked $bin_dir/loopback -> /usr/lib/cni/loopback"
fi
if [[ -n "$conflist" ]]; then
  install -d -m 0755 "$conf_dir"
  python3 -m json.tool "$conflist" >/dev/null 2>&1 || node -e 'JSON.parse(require("fs").readFileSync(process.argv[1]))' "$conflist"
  install_file "$conflist" "$conf_dir/$(basename "$conflist")" 0644
fi
