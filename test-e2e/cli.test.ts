// The human CLI end to end: `pier up/ls/check/explain/doctor/status/gc/down` run inside one
// throwaway netns that plays the host, so the default bridge and nft table never reach this host.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cleanup, uniquePrefix } from './helpers.ts';
import { PIER, ensureBuilt } from './cni-harness.ts';
import { elementsOf } from './nft-state.ts';

const p = uniquePrefix();
const HOST = `${p}-clihost`;
const A = `${p}-a`;
const B = `${p}-b`;
const cleanup = new Cleanup();
let dir: string;
let out: Map<string, { rc: number; text: string }>;

// One bash session inside the host netns: named netns made by `pier up` live in its mount
// namespace, so the whole story runs in it. Each step prints a marker with its exit status.
const script = (d: string) => `
P=${PIER}; export PIER_LOG_FILE=${d}/pier.log
O="--data-dir ${d}/data --state-dir ${d}/up"
step() { name=$1; shift; echo "=== $name"; "$@" 2>&1; echo "=== rc $?"; }
ip link set lo up
step up-a $P up ${A} -p 18080:8080 $O
step up-b $P up ${B} $O
step up-again $P up ${A} $O
step up-bad-name $P up ../x $O
step up-bad-port $P up ${p}-c -p 99999:1 $O
# The server says when it listens, through a fifo: no guessing how long that takes.
mkfifo ${d}/srv.fifo
ip netns exec ${A} node -e "require('net').createServer(s=>{s.end('hello from a\\n')}).listen(8080,'0.0.0.0',()=>console.log('listening'))" >${d}/srv.fifo & SRV=$!
step srv-ready timeout 60 head -n1 ${d}/srv.fifo
step ping-b-a ip netns exec ${B} ping -c1 -W2 10.123.0.2
step port-local node -e "const s=require('net').connect(18080,'10.123.0.1');s.setTimeout(30000,()=>process.exit(3));s.on('data',d=>{process.stdout.write(d);process.exit(0)});s.on('error',e=>{console.log(e.message);process.exit(2)})"
step port-localhost node -e "const s=require('net').connect(18080,'127.0.0.1');s.setTimeout(30000,()=>process.exit(3));s.on('data',d=>{process.stdout.write(d);process.exit(0)});s.on('error',e=>{console.log(e.message);process.exit(2)})"
step ls $P ls $O
step ls-json $P ls --json $O
step check-a $P check ${A} $O
step explain-a $P explain ${A} $O
step explain-plan $P up ${p}-plan --explain $O
step doctor $P doctor $O
step status $P status $O
step gc $P gc $O
nft flush ruleset
step port-after-flush node -e "const s=require('net').connect(18080,'127.0.0.1');s.setTimeout(30000,()=>process.exit(3));s.on('data',d=>{process.stdout.write(d);process.exit(0)});s.on('error',e=>{console.log(e.message);process.exit(2)})"
step resync $P resync --data-dir ${d}/data
step port-after-resync node -e "const s=require('net').connect(18080,'127.0.0.1');s.setTimeout(30000,()=>process.exit(3));s.on('data',d=>{process.stdout.write(d);process.exit(0)});s.on('error',e=>{console.log(e.message);process.exit(2)})"
kill $SRV
step down-a $P down ${A} $O
step down-b $P down ${B} $O
step down-again $P down ${B} $O
step ls-empty $P ls --json $O
step links-after-down ip -j link show
step nft-after-down nft -j list table inet pier
step netns-after-down ls /run/netns
step unknown $P frobnicate
step help $P --help
step up-help $P up --help
`;

before(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), `${p}-cli-`));
  cleanup.add(() => rmSync(dir, { recursive: true, force: true }));
  for (const n of [HOST, A, B]) cleanup.addNetns(n);
  assert.equal(spawnSync('ip', ['netns', 'add', HOST]).status, 0);
  writeFileSync(join(dir, 'story.sh'), script(dir));
  const r = spawnSync('ip', ['netns', 'exec', HOST, 'bash', join(dir, 'story.sh')], { encoding: 'utf8', timeout: 600_000 });
  out = new Map();
  const parts = r.stdout.split(/^=== /m).slice(1);
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const name = parts[i].split('\n')[0];
    const body = parts[i].slice(name.length + 1);
    out.set(name, { rc: Number(parts[i + 1].replace('rc ', '').trim()), text: body });
  }
});
after(() => cleanup.runAll());

const step = (name: string) => {
  const s = out.get(name);
  assert.ok(s, `step ${name} ran`);
  return s;
};

test('up wires two netns and prints what each got', () => {
  assert.equal(step('up-a').rc, 0, step('up-a').text);
  assert.match(step('up-a').text, /address 10\.123\.0\.2\/24 {2}gateway 10\.123\.0\.1/);
  assert.match(step('up-a').text, /port 18080\/tcp on the host -> 8080/);
  assert.match(step('up-b').text, /address 10\.123\.0\.3\/24/);
});

test('traffic: pod to pod, and the published port from the host (local address and 127.0.0.1)', () => {
  assert.equal(step('srv-ready').text.trim(), 'listening', step('srv-ready').text);
  assert.equal(step('ping-b-a').rc, 0, step('ping-b-a').text);
  assert.equal(step('port-local').text.trim(), 'hello from a');
  assert.equal(step('port-localhost').text.trim(), 'hello from a');
});

test('ls shows a table and JSON with both attachments', () => {
  assert.match(step('ls').text, /NETNS\/CONTAINER\s+IFNAME\s+NETWORK\s+ADDRESSES\s+HOST VETH\s+PORTS\s+AGE/);
  assert.match(step('ls').text, new RegExp(`${A}\\s+eth0\\s+pier-default\\s+10\\.123\\.0\\.2/24,fd00:123::2/64\\s+veth[0-9a-f]{8}\\s+18080->8080/tcp`));
  const rows = JSON.parse(step('ls-json').text);
  assert.equal(rows.length, 2);
  assert.deepEqual(Object.keys(rows[0]).sort(), ['containerID', 'created', 'hostVeth', 'ifname', 'ips', 'netns', 'network', 'portMappings']);
});

test('check, explain, doctor, status and gc', () => {
  assert.equal(step('check-a').rc, 0, step('check-a').text);
  const ex = step('explain-a').text;
  assert.match(ex, new RegExp(`ip -n ${A} addr add 10\\.123\\.0\\.2/24 dev eth0`));
  assert.match(ex, /ip link set veth[0-9a-f]{8} master pier0/);
  assert.match(ex, /nft add element inet pier hostports4_any_addr_\S+ '\{ tcp \. 18080 comment "pier-up-[^"]+\/eth0" : 10\.123\.0\.2 \}'/);
  assert.match(step('explain-plan').text, /<next free address in 10\.123\.0\.0\/24>/);
  assert.equal(step('doctor').rc, 0, step('doctor').text);
  assert.match(step('doctor').text, /^ok\s+nft \S+ with JSON support/m);
  assert.match(step('doctor').text, /pod subnet 10\.123\.0\.0\/24 clashes with no host route/);
  assert.match(step('status').text, /pier-default: ready/);
  assert.match(step('gc').text, /kept 2 live attachment\(s\), released 0/);
});

test('resync rebuilds the table after nft flush ruleset', () => {
  // Refused by the host itself: the connection was not DNATed to the pod any more.
  assert.equal(step('port-after-flush').rc, 2, step('port-after-flush').text);
  assert.match(step('port-after-flush').text, /ECONNREFUSED 127\.0\.0\.1:18080/);
  assert.equal(step('resync').rc, 0, step('resync').text);
  assert.match(step('resync').text, /rebuilt inet pier: 1 network\(s\), 2 attachment\(s\)/);
  assert.equal(step('port-after-resync').text.trim(), 'hello from a');
});

test('down removes everything: the netns, the veths, the addresses, the nft elements, the state', () => {
  assert.equal(step('down-a').rc, 0, step('down-a').text);
  assert.equal(step('down-b').rc, 0, step('down-b').text);
  assert.match(step('down-b').text, /down, netns removed/);
  assert.deepEqual(JSON.parse(step('ls-empty').text), []);
  // The kernel: no netns A or B, no veth left on the host side; the bridge itself stays.
  assert.equal(step('netns-after-down').rc, 0);
  const netns = step('netns-after-down').text.split('\n').filter(Boolean);
  assert.ok(!netns.includes(A) && !netns.includes(B), `netns left: ${netns.join(' ')}`);
  assert.ok(!existsSync(`/run/netns/${A}`) && !existsSync(`/run/netns/${B}`));
  const links = JSON.parse(step('links-after-down').text) as Array<{ ifname: string; link_type: string }>;
  assert.deepEqual(links.filter((l) => l.ifname.startsWith('veth')).map((l) => l.ifname), [], 'no host veth left');
  assert.ok(links.some((l) => l.ifname === 'pier0'), 'the bridge pier0 was made by up');
  // The table stays (other pods may use it) with no element at all.
  assert.equal(step('nft-after-down').rc, 0, step('nft-after-down').text);
  assert.deepEqual(elementsOf(JSON.parse(step('nft-after-down').text).nftables), [], 'no nft element left');
  // The store: no address reserved, no attachment record; no `up` state.
  const store = join(dir, 'data', 'pier-default');
  assert.ok(existsSync(join(store, 'lock')), `the store is where up put it (${store})`);
  assert.deepEqual(readdirSync(store).filter((f) => /^\d|:/.test(f)), [], 'no reserved address');
  assert.deepEqual(readdirSync(join(store, 'attachments')), [], 'no attachment record');
  assert.deepEqual(readdirSync(join(dir, 'up')).filter((f) => f.endsWith('.json')), [], 'no up state');
});

test('errors are one line plus a hint; help', () => {
  for (const [name, re] of [
    ['up-again', /already up\n {2}hint: /],
    ['up-bad-name', /invalid name "\.\.\/x"\n {2}hint: /],
    ['up-bad-port', /invalid port mapping "99999:1"\n {2}hint: /],
    ['down-again', /is not up .*\n {2}hint: /],
    ['unknown', /unknown command "frobnicate"\n {2}hint: /],
  ] as const) {
    assert.notEqual(step(name).rc, 0, name);
    assert.match(step(name).text, re, name);
  }
  assert.match(step('help').text, /pier up NAME/);
  assert.match(step('up-help').text, /^Usage: pier up NAME/);
});
