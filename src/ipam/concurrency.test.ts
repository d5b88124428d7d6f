import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { listAttachments } from './ipam.ts';

const root = fs.mkdtempSync(`${os.tmpdir()}/pier-concurrency-`);
after(() => fs.rmSync(root, { recursive: true, force: true }));
const ipam = new URL('./ipam.ts', import.meta.url).href;
const config = new URL('./config.ts', import.meta.url).href;
const diskStore = new URL('./disk-store.ts', import.meta.url).href;

test('10 processes allocating at once from the disk store get distinct addresses', async () => {
  const dataDir = `${root}/data`;
  const go = `${root}/go`;
  const children = Array.from({ length: 10 }, (_, i) => {
    // Each child loads everything first, then spins until the start file appears, so the
    // ten ADDs really hit the store at the same moment.
    const code = `
      import * as fs from 'node:fs';
      import { ipamAdd } from ${JSON.stringify(ipam)};
      import { parseIpamConfig } from ${JSON.stringify(config)};
      import { openDiskStore } from ${JSON.stringify(diskStore)};
      const cfg = parseIpamConfig({ dataDir: ${JSON.stringify(dataDir)}, ranges: [[{ subnet: '10.30.0.0/27' }], [{ subnet: 'fd00:30::/120' }]] }, 'race');
      const deps = { openStore: (d, n) => openDiskStore(d, n), bootId: 'b', netnsExists: () => true };
      fs.writeFileSync(${JSON.stringify(`${root}/ready-${i}`)}, '');
      while (!fs.existsSync(${JSON.stringify(go)})) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
      const r = ipamAdd(deps, cfg, { containerID: 'pod${i}', ifname: 'eth0' });
      process.stdout.write(JSON.stringify(r.ips.map((x) => x.address)));
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    return { child, result: once(child, 'exit').then(([status]) => ({ status, out, err })) };
  });
  const deadline = Date.now() + 60_000;
  while (Array.from({ length: 10 }, (_, i) => fs.existsSync(`${root}/ready-${i}`)).includes(false)) {
    assert.ok(Date.now() < deadline, 'children did not start');
    await new Promise((r) => setTimeout(r, 20));
  }
  fs.writeFileSync(go, '');
  const results = await Promise.all(children.map((c) => c.result));
  for (const r of results) assert.equal(r.status, 0, r.err);
  const ips = results.map((r) => JSON.parse(r.out) as string[]);
  const v4 = ips.map((x) => x[0]);
  const v6 = ips.map((x) => x[1]);
  assert.equal(new Set(v4).size, 10, `duplicate IPv4: ${v4}`);
  assert.equal(new Set(v6).size, 10, `duplicate IPv6: ${v6}`);
  // Round robin from an empty store: exactly the first ten addresses of each set.
  assert.deepEqual([...v4].sort(), Array.from({ length: 10 }, (_, i) => `10.30.0.${i + 2}/27`).sort());
  const dir = `${dataDir}/race`;
  assert.equal(fs.readdirSync(dir).filter((f) => f.startsWith('10.30.0.')).length, 10);
  assert.equal(fs.readdirSync(`${dir}/attachments`).length, 10);
  const records = listAttachments(dataDir);
  assert.equal(records.length, 10);
  for (const rec of records) {
    assert.equal(fs.readFileSync(`${dir}/${rec.ips[0].address.split('/')[0]}`, 'utf8'), `${rec.containerID}\r\neth0`);
  }
});
