// sysctl read/write, in Pier's netns or inside another one (net.* sysctls are per netns).
import * as fs from 'node:fs';
import { inNetns } from './netns.ts';
import { systemCallsFaked } from './libc.ts';

/** `['net','ipv4','conf','eth0','arp_notify']` -> its /proc/sys path; segments are checked. */
export function sysctlPath(key: string | readonly string[]): string {
  const parts = typeof key === 'string' ? key.split('.') : key;
  for (const p of parts) {
    if (!p || p === '.' || p === '..' || p.includes('/') || p.includes('\0')) throw new Error(`invalid sysctl key segment ${JSON.stringify(p)}`);
  }
  return `/proc/sys/${parts.join('/')}`;
}

// While the snapshot warm-up runs against a pretend kernel, setns does nothing: the sysctls
// here would be the build machine's own. Reads answer 0 and writes are dropped instead.
function readHere(path: string): string {
  if (systemCallsFaked()) return '0';
  return fs.readFileSync(path, 'utf8').trim();
}

function writeHere(path: string, value: string): void {
  if (systemCallsFaked()) return;
  const fd = fs.openSync(path, fs.constants.O_WRONLY);
  try {
    fs.writeSync(fd, value);
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads a sysctl; with `netnsPath`, inside that netns. */
export function readSysctl(key: string | readonly string[], netnsPath?: string): string {
  const path = sysctlPath(key);
  return netnsPath ? inNetns(netnsPath, () => readHere(path)) : readHere(path);
}

/** Writes a sysctl; with `netnsPath`, inside that netns. Skips the write when already equal. */
export function writeSysctl(key: string | readonly string[], value: string, netnsPath?: string): void {
  const path = sysctlPath(key);
  const op = () => {
    if (readHere(path) !== value) writeHere(path, value);
  };
  if (netnsPath) inNetns(netnsPath, op);
  else op();
}
