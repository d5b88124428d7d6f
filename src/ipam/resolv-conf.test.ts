import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { parseResolvConf, readResolvConf } from './resolv-conf.ts';
import { CniError } from '../cni/errors.ts';

const tmp = fs.mkdtempSync(`${os.tmpdir()}/pier-resolv-`);
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('parses nameserver, domain, search (last wins), options; ignores comments', () => {
  const dns = parseResolvConf(
    '# generated\nnameserver 10.96.0.10\nnameserver fd00::10 ; inline comment\n' +
      'domain cluster.local\nsearch a.example\nsearch default.svc.cluster.local svc.cluster.local\n' +
      'options ndots:5 edns0\nsortlist 10.0.0.0\n',
  );
  assert.deepEqual(dns, {
    nameservers: ['10.96.0.10', 'fd00::10'],
    domain: 'cluster.local',
    search: ['default.svc.cluster.local', 'svc.cluster.local'],
    options: ['ndots:5', 'edns0'],
  });
  assert.deepEqual(parseResolvConf(''), {});
});

test('readResolvConf reads a file; a missing one is CniError 7 naming the path', () => {
  const file = `${tmp}/resolv.conf`;
  fs.writeFileSync(file, 'nameserver 1.1.1.1\n');
  assert.deepEqual(readResolvConf(file), { nameservers: ['1.1.1.1'] });
  assert.throws(() => readResolvConf(`${tmp}/nope`), (e: CniError) => e.code === 7 && e.details.includes(`${tmp}/nope`));
});
