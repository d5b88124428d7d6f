#!/usr/bin/env bash
# Fails with a clear message unless `node` is Node.js >= 20.16, which building Pier needs (its
# single executable uses process.getBuiltinModule and a V8 startup snapshot). Debian 12 ships
# Node 18. Run first by quickstart.sh, by install.sh when it has to build, and by .ci/run.
# Bash builtins only: it must work on a machine that has nothing yet.
set -euo pipefail
need_major=20 need_minor=16
fail() {
  printf '%s\n' \
    "Pier needs Node.js >= $need_major.$need_minor to build; $1." \
    'Debian 12 ships Node.js 18, which is too old: install Node.js 20.16 or later (the official' \
    'binaries from https://nodejs.org, or NodeSource'"'"'s apt repository), then run this again.' \
    'Only the build needs it: the built dist/pier runs without Node.js.' >&2
  exit 1
}
version=$(node --version 2>/dev/null) || fail 'there is no `node` on PATH'
if [[ ! $version =~ ^v([0-9]+)\.([0-9]+)\. ]]; then fail "\`node --version\` printed \"$version\""; fi
major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
if ((major < need_major || (major == need_major && minor < need_minor))); then fail "this machine has $version"; fi
