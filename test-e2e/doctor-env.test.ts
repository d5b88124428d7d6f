// `pier doctor` reads the environment of running container runtimes: plugins inherit it, and
// Node acts on NODE_OPTIONS and NODE_EXTRA_CA_CERTS at every start. A stand-in "containerd" (a
// copy of sleep under that name, started by this test and ended by PID) carries the variables;
// doctor runs inside a throwaway netns playing the host, so it reads nothing of this machine's
// links, routes or ruleset.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, PIER } from './cni-harness.ts';
import { Cleanup, run, uniquePrefix, waitFor } from './helpers.ts';

describe('pier doctor and the runtimes environment', () => {
  const prefix = uniquePrefix();
  const cleanup = new Cleanup();
  const host = `${prefix}-host`;
  let runtime: ChildProcess;
  let dir = '';

  before(() => {
    ensureBuilt();
    run('ip', ['netns', 'add', host]);
    cleanup.addNetns(host);
    dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
    cleanup.add(() => rmSync(dir, { recursive: true, force: true }));
    copyFileSync('/bin/sleep', join(dir, 'containerd'));
    runtime = spawn(join(dir, 'containerd'), ['300'], {
      env: { PATH: '/usr/bin:/bin', NODE_OPTIONS: '--max-old-space-size=64', NODE_EXTRA_CA_CERTS: '/etc/ssl/certs/ca-certificates.crt' },
      stdio: 'ignore',
    });
    cleanup.add(() => runtime.pid && process.kill(runtime.pid, 'SIGKILL'));
  });

  after(() => cleanup.runAll());

  it('warns, naming the process, that NODE_OPTIONS stops Pier and NODE_EXTRA_CA_CERTS slows it', async () => {
    // Wait until the stand-in has exec'd, so /proc shows its name and its environment.
    await waitFor(() => {
      try {
        return readFileSync(`/proc/${runtime.pid}/comm`, 'utf8').trim() === 'containerd';
      } catch {
        return false;
      }
    }, 'the stand-in containerd to start');
    const r = spawnSync('ip', ['netns', 'exec', host, 'env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', PIER, 'doctor'], { encoding: 'utf8' });
    const text = r.stdout + r.stderr;
    const pid = runtime.pid;
    assert.match(text, new RegExp(`^warn\\s+containerd \\(pid ${pid}\\) passes NODE_OPTIONS="--max-old-space-size=64" to the plugins it runs`, 'm'), text);
    assert.match(text, new RegExp(`^warn\\s+containerd \\(pid ${pid}\\) passes NODE_EXTRA_CA_CERTS`, 'm'), text);
    assert.match(text, /fix: remove NODE_OPTIONS from containerd's environment/);
  });
});
