// Records the golden bytes of the agent's netlink messages (agent-netlink.test.ts): the
// requests iproute2 itself sends for the same vxlan device, neighbour, FDB and route commands
// (read from its sendmsg(2) data with strace), and the kernel's dump replies for the objects
// those commands made. Run as root: `node --import tsx src/netlink/testdata/capture-agent.ts`.
// Works in a throwaway netns (unshare -n); the host is never touched.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetlinkSocket } from '../socket.ts';
import { RTM_GETLINK, RTM_GETNEIGH, RTM_GETROUTE } from '../constants.ts';
import { buildLinkRef } from '../link-codec.ts';

const here = fileURLToPath(new URL('.', import.meta.url));

if (process.env.PIER_CAPTURE_IN_NETNS !== '1') {
  execFileSync('unshare', ['-n', process.execPath, '--import', 'tsx', fileURLToPath(import.meta.url)], {
    stdio: 'inherit',
    env: { ...process.env, PIER_CAPTURE_IN_NETNS: '1' },
  });
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), 'pier-capture-'));
const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });

/**
 * Runs `argv` under strace and returns the first netlink message of type `type` it sent, as
 * {flags, payload} (payload: the bytes after the 16-byte nlmsghdr, in hex).
 */
function captureRequest(type: number, argv: string[]): { flags: number; payload: string } {
  const trace = join(dir, 'trace');
  execFileSync('strace', ['-qq', '-e', 'trace=sendmsg,sendto', '-e', 'write=3,4,5', '-o', trace, ...argv], { stdio: ['ignore', 'ignore', 'inherit'] });
  // Each call is a header line followed by ` | 00000  hex...  ascii |` lines.
  const calls: string[][] = [];
  for (const line of readFileSync(trace, 'utf8').split('\n')) {
    const hex = /^ \| [0-9a-f]{5}  (.{48})/.exec(line)?.[1];
    if (hex !== undefined) calls.at(-1)?.push(hex);
    else if (/^send(msg|to)\(/.test(line)) calls.push([]);
  }
  for (const lines of calls) {
    const bytes = Buffer.from(lines.join(' ').match(/[0-9a-f]{2}/g)!.join(''), 'hex');
    // `ip link add` first probes for extended ACKs with an empty RTM_NEWLINK of sequence 0.
    if (bytes.length < 16 || bytes.readUInt16LE(4) !== type || bytes.readUInt32LE(8) === 0) continue;
    const len = bytes.readUInt32LE(0);
    return { flags: bytes.readUInt16LE(6), payload: bytes.subarray(16, len).toString('hex') };
  }
  throw new Error(`${argv.join(' ')}: sent no message of type ${type}`);
}

const RTM_NEWLINK = 16;
const RTM_NEWROUTE = 24;
const RTM_DELROUTE = 25;
const RTM_NEWNEIGH = 28;
const RTM_DELNEIGH = 29;

// The stage: an underlay veth with 203.0.113.1/24 and fd00:203::1/64, a vxlan device.
sh('ip', 'link', 'add', 'under0', 'type', 'veth', 'peer', 'name', 'under1');
sh('ip', 'link', 'set', 'under0', 'up');
sh('ip', 'link', 'set', 'under1', 'up');
sh('ip', 'addr', 'add', '203.0.113.1/24', 'dev', 'under0');
sh('ip', 'addr', 'add', 'fd00:203::1/64', 'dev', 'under0', 'nodad');

const requests: Record<string, { argv: string[]; type: number; flags: number; payload: string }> = {};
const req = (name: string, type: number, argv: string[]) => {
  requests[name] = { argv, type, ...captureRequest(type, argv) };
};

req('newVxlan', RTM_NEWLINK, ['ip', 'link', 'add', 'pier.vxlan', 'mtu', '1450', 'address', '0e:01:02:03:04:05', 'type', 'vxlan', 'id', '7', 'nolearning', 'dstport', '8473']);
req('newVxlanLearning', RTM_NEWLINK, ['ip', 'link', 'add', 'pier.vx1', 'type', 'vxlan', 'id', '1', 'dstport', '4789']);
req('newVxlanLocal6', RTM_NEWLINK, ['ip', 'link', 'add', 'pier.vx6', 'type', 'vxlan', 'id', '1', 'local', 'fd00:203::1', 'nolearning', 'dstport', '8473']);
sh('ip', 'link', 'set', 'pier.vxlan', 'up');
const links = JSON.parse(sh('ip', '-j', 'link', 'show')) as Array<{ ifname: string; ifindex: number }>;
const ifindex = Object.fromEntries(links.map((l) => [l.ifname, l.ifindex]));

req('neighReplace4', RTM_NEWNEIGH, ['ip', 'neigh', 'replace', '10.244.1.0', 'lladdr', '0e:00:00:00:00:02', 'dev', 'pier.vxlan', 'nud', 'permanent']);
req('neighReplace6', RTM_NEWNEIGH, ['ip', '-6', 'neigh', 'replace', 'fd00:10:244:1::', 'lladdr', '0e:00:00:00:00:02', 'dev', 'pier.vxlan', 'nud', 'permanent']);
req('fdbReplace', RTM_NEWNEIGH, ['bridge', 'fdb', 'replace', '0e:00:00:00:00:02', 'dev', 'pier.vxlan', 'dst', '203.0.113.2', 'self', 'permanent']);
req('routeReplaceOnlink', RTM_NEWROUTE, ['ip', 'route', 'replace', '10.244.1.0/24', 'via', '10.244.1.0', 'dev', 'pier.vxlan', 'onlink', 'proto', '173']);
req('routeAddGw', RTM_NEWROUTE, ['ip', 'route', 'add', '10.244.2.0/24', 'via', '203.0.113.2', 'dev', 'under0', 'proto', '173']);
req('routeAddGw6', RTM_NEWROUTE, ['ip', '-6', 'route', 'add', 'fd00:10:244:2::/64', 'via', 'fd00:203::2', 'dev', 'under0', 'proto', '173']);
// What the kernel shows of them, before any is removed.
const sock = NetlinkSocket.open();
const hexOf = (ms: Array<{ payload: Buffer }>) => ms.map((m) => m.payload.toString('hex'));
const replies = {
  vxlanLink: hexOf(sock.query(RTM_GETLINK, 0, buildLinkRef({ name: 'pier.vxlan' }))),
  vxlan6Link: hexOf(sock.query(RTM_GETLINK, 0, buildLinkRef({ name: 'pier.vx6' }))),
  // Dumps are requested as iproute2 requests them (its bytes are below), so nothing of the code
  // under test shapes what the kernel answers.
  neigh4: hexOf(sock.dump(RTM_GETNEIGH, Buffer.from(captureRequest(RTM_GETNEIGH, ['ip', '-4', 'neigh', 'show', 'dev', 'pier.vxlan']).payload, 'hex'))),
  fdb: hexOf(sock.dump(RTM_GETNEIGH, Buffer.from(captureRequest(RTM_GETNEIGH, ['bridge', 'fdb', 'show', 'dev', 'pier.vxlan']).payload, 'hex'))),
  routes4: hexOf(sock.dump(RTM_GETROUTE, Buffer.from(captureRequest(RTM_GETROUTE, ['ip', '-4', 'route', 'show', 'proto', '173']).payload, 'hex'))),
};
sock.close();
req('routeDump4Proto', RTM_GETROUTE, ['ip', '-4', 'route', 'show', 'proto', '173']);
req('neighDump4', RTM_GETNEIGH, ['ip', '-4', 'neigh', 'show', 'dev', 'pier.vxlan']);
req('routeDel', RTM_DELROUTE, ['ip', 'route', 'del', '10.244.2.0/24', 'via', '203.0.113.2', 'dev', 'under0', 'proto', '173']);
req('neighDel4', RTM_DELNEIGH, ['ip', 'neigh', 'del', '10.244.1.0', 'dev', 'pier.vxlan']);
req('fdbDel', RTM_DELNEIGH, ['bridge', 'fdb', 'del', '0e:00:00:00:00:02', 'dev', 'pier.vxlan', 'dst', '203.0.113.2', 'self']);

const version = sh('ip', '-V').trim();
const kernel = sh('uname', '-r').trim();
writeFileSync(
  join(here, 'agent-netlink.json'),
  `${JSON.stringify({ _comment: `Captured by capture-agent.ts: requests sent by ${version}, replies of kernel ${kernel}.`, ifindex, requests, replies }, null, 1)}\n`,
);
rmSync(dir, { recursive: true, force: true });
console.log(`captured ${Object.keys(requests).length} requests and ${Object.keys(replies).length} dumps in ${here}agent-netlink.json`);
