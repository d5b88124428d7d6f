// resolveBinary: PATH first, then the sbin/bin fallbacks; a name with a slash is used as is.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FALLBACK_DIRS, resolveBinary } from './resolve-binary.ts';

let dir: string;

describe('resolveBinary', () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pier-resolve-'));
    for (const sub of ['a', 'b']) mkdirSync(join(dir, sub));
    writeFileSync(join(dir, 'a', 'tool'), '#!/bin/sh\n');
    writeFileSync(join(dir, 'b', 'tool'), '#!/bin/sh\n');
    chmodSync(join(dir, 'b', 'tool'), 0o755);
    mkdirSync(join(dir, 'a', 'dirtool'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('takes the first executable file in PATH, skipping non-executables and directories', () => {
    assert.equal(resolveBinary('tool', `${join(dir, 'a')}:${join(dir, 'b')}`), join(dir, 'b', 'tool'));
    assert.equal(resolveBinary('dirtool', join(dir, 'a')), 'dirtool');
  });

  it('leaves a name with a slash alone and returns an unknown name unchanged', () => {
    assert.equal(resolveBinary('./x/tool', ''), './x/tool');
    assert.equal(resolveBinary('pier-no-such-tool-xyz', undefined), 'pier-no-such-tool-xyz');
  });

  it('falls back to the sbin directories when PATH is unset or lacks them', () => {
    assert.ok(FALLBACK_DIRS.indexOf('/usr/sbin') < FALLBACK_DIRS.indexOf('/usr/bin'));
    // `sh` is in /usr/bin or /bin on every system this runs on.
    assert.match(resolveBinary('sh', undefined), /^\/(usr\/)?bin\/sh$/);
    assert.match(resolveBinary('sh', 'relative/dir'), /^\/(usr\/)?bin\/sh$/);
  });
});
