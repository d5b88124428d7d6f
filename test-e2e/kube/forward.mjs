#!/usr/bin/env node
// A TCP relay across a network namespace boundary, without giving the host netns an address or a
// route into the test's netns. Two halves meet at a Unix socket in the filesystem (path-based Unix
// sockets are not scoped by network namespace; abstract ones would be):
//
//   ip netns exec NS node forward.mjs inner SOCK=HOST:PORT [SOCK=HOST:PORT ...]
//       listens on each Unix socket SOCK and connects each client to HOST:PORT inside NS;
//   node forward.mjs outer LISTEN_HOST=SOCK [LISTEN_HOST=SOCK ...]
//       listens on LISTEN_HOST:<free port> in the host netns and connects each client to SOCK.
//
// Bytes are relayed as they are (TLS passes through end to end, so the apiserver's certificate is
// checked by the real client). Once every listener is up, one JSON line goes to stdout:
// {"ready":true,"ports":[...]} (outer: the ports chosen, in argument order). Logs go to stderr.
// SIGTERM or SIGINT closes the listeners (removing the inner sockets) and exits.
import net from 'node:net';
import { rmSync } from 'node:fs';

const [mode, ...specs] = process.argv.slice(2);
if ((mode !== 'inner' && mode !== 'outer') || !specs.length) {
  process.stderr.write('usage: forward.mjs inner SOCK=HOST:PORT... | outer LISTEN_HOST=SOCK...\n');
  process.exit(2);
}

const servers = [];
const sockets = new Set();
const unixPaths = [];

/** Pipes two sockets both ways; either side closing or failing ends both. */
function relay(a, connectB) {
  const b = connectB();
  sockets.add(a).add(b);
  const end = () => {
    a.destroy();
    b.destroy();
    sockets.delete(a);
    sockets.delete(b);
  };
  a.on('error', end).on('close', end);
  b.on('error', (err) => {
    process.stderr.write(`forward ${mode}: ${err.message}\n`);
    end();
  }).on('close', end);
  a.pipe(b);
  b.pipe(a);
}

function splitHostPort(s) {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(s.slice(i + 1)) };
}

function listen(server, ...args) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(...args, () => resolve(server));
  });
}

const ports = [];
for (const spec of specs) {
  const eq = spec.indexOf('=');
  const [left, right] = [spec.slice(0, eq), spec.slice(eq + 1)];
  if (mode === 'inner') {
    const target = splitHostPort(right);
    rmSync(left, { force: true });
    unixPaths.push(left);
    const server = net.createServer((c) => relay(c, () => net.connect(target)));
    servers.push(await listen(server, left));
  } else {
    const server = net.createServer((c) => relay(c, () => net.connect(right)));
    servers.push(await listen(server, 0, left));
    ports.push(server.address().port);
  }
}
process.stdout.write(`${JSON.stringify({ ready: true, ports })}\n`);

function shutdown() {
  for (const s of servers) s.close();
  for (const s of sockets) s.destroy();
  for (const p of unixPaths) rmSync(p, { force: true });
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
