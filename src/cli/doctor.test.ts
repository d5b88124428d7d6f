import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readRuntimeProcesses, runtimeEnvFindings } from './doctor.ts';

const proc = mkdtempSync(join(tmpdir(), 'pier-doctor-proc-'));
after(() => rmSync(proc, { recursive: true, force: true }));

function fakeProcess(pid: number, comm: string, environ?: string): void {
  mkdirSync(join(proc, String(pid)));
  writeFileSync(join(proc, String(pid), 'comm'), `${comm}\n`);
  if (environ !== undefined) writeFileSync(join(proc, String(pid), 'environ'), environ);
}

test('readRuntimeProcesses finds the container runtimes in a /proc and reads their environments', () => {
  fakeProcess(10, 'containerd', 'PATH=/usr/bin\0NODE_OPTIONS=--max-old-space-size=64\0');
  fakeProcess(11, 'bash', 'NODE_OPTIONS=--x\0');
  fakeProcess(12, 'crio'); // no environ file: unreadable
  mkdirSync(join(proc, 'self'));
  const procs = readRuntimeProcesses(proc).sort((a, b) => a.pid - b.pid);
  assert.deepEqual(procs.map((p) => [p.pid, p.name]), [[10, 'containerd'], [12, 'crio']]);
  assert.equal(procs[0].env?.get('NODE_OPTIONS'), '--max-old-space-size=64');
  assert.equal(procs[0].env?.get('PATH'), '/usr/bin');
  assert.equal(procs[1].env, undefined);
});

test('runtimeEnvFindings: NODE_OPTIONS and NODE_EXTRA_CA_CERTS warn with a fix, a clean runtime is ok', () => {
  const f = runtimeEnvFindings([
    { pid: 1, name: 'containerd', env: new Map([['NODE_OPTIONS', '--max-old-space-size=64'], ['NODE_EXTRA_CA_CERTS', '/etc/ssl/x.pem']]) },
    { pid: 2, name: 'kubelet', env: new Map([['PATH', '/usr/bin']]) },
    { pid: 3, name: 'crio' },
  ]);
  assert.deepEqual(f.map((x) => x.level), ['warn', 'warn', 'ok', 'warn']);
  assert.match(f[0].what, /^containerd \(pid 1\) passes NODE_OPTIONS="--max-old-space-size=64" to the plugins it runs/);
  assert.match(f[0].fix ?? '', /systemctl edit containerd/);
  assert.match(f[1].what, /NODE_EXTRA_CA_CERTS/);
  assert.equal(f[2].what, 'kubelet (pid 2) passes no NODE_OPTIONS or NODE_EXTRA_CA_CERTS to plugins');
  assert.match(f[3].what, /could not read the environment of crio \(pid 3\)/);
  assert.deepEqual(runtimeEnvFindings([]), []);
});
