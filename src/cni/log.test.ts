import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_LOG_FILE, createLogger, resolveLogOptions } from './log.ts';
import { CniError, ErrorCode } from './errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'pier-log-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function lines(file: string): Array<Record<string, unknown>> {
  return readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
}

describe('resolveLogOptions', () => {
  it('defaults to /var/log/pier.log at info', () => {
    assert.deepEqual(resolveLogOptions({}), { file: DEFAULT_LOG_FILE, level: 'info' });
    assert.equal(DEFAULT_LOG_FILE, '/var/log/pier.log');
  });

  it('takes the config, and the environment over the config', () => {
    assert.deepEqual(resolveLogOptions({}, { logFile: '/tmp/a.log', logLevel: 'debug' }), { file: '/tmp/a.log', level: 'debug' });
    assert.deepEqual(
      resolveLogOptions({ PIER_LOG_FILE: '/tmp/b.log', PIER_LOG_LEVEL: 'WARN' }, { logFile: '/tmp/a.log', logLevel: 'debug' }),
      { file: '/tmp/b.log', level: 'warn' },
    );
  });

  it('skips an invalid level', () => {
    assert.equal(resolveLogOptions({ PIER_LOG_LEVEL: 'verbose' }, { logLevel: 'error' }).level, 'error');
    assert.equal(resolveLogOptions({ PIER_LOG_LEVEL: 'verbose' }).level, 'info');
  });
});

describe('createLogger', () => {
  it('writes JSON lines at and above its level to a file created 0600', () => {
    const file = join(dir, 'levels.log');
    const log = createLogger({ file, level: 'warn' });
    log.debug('d');
    log.info('i');
    log.warn('w', { ifname: 'eth0' });
    log.error('e');
    const got = lines(file);
    assert.deepEqual(got.map((l) => [l.level, l.msg]), [['warn', 'w'], ['error', 'e']]);
    assert.equal(got[0]!.ifname, 'eth0');
    assert.equal(got[0]!.pid, process.pid);
    assert.ok(!Number.isNaN(Date.parse(got[0]!.time as string)));
    assert.equal(statSync(file).mode & 0o777, 0o600);
  });

  it('adds child fields to every line and keeps time/level/msg from being overwritten', () => {
    const file = join(dir, 'child.log');
    const log = createLogger({ file, level: 'debug' }).child({ command: 'ADD', containerId: 'c1' });
    log.debug('start', { msg: 'spoof', level: 'error' });
    const [line] = lines(file);
    assert.equal(line!.msg, 'start');
    assert.equal(line!.level, 'debug');
    assert.equal(line!.command, 'ADD');
    assert.equal(line!.containerId, 'c1');
  });

  it('logs errors with their code and stack, and survives unserialisable fields', () => {
    const file = join(dir, 'errors.log');
    const log = createLogger({ file, level: 'info' });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    log.error('failed', { err: Object.assign(new Error('EEXIST'), { code: 17 }), big: 10n });
    log.info('cyclic', { cyclic });
    const [first, second] = lines(file);
    assert.equal((first!.err as { code: number }).code, 17);
    assert.match((first!.err as { stack: string }).stack, /EEXIST/);
    assert.equal(first!.big, '10');
    assert.equal(second!.msg, 'cyclic');
    assert.equal(second!.fieldsError, 'fields could not be serialised');
  });

  it('logs a CniError with its stack, not through the toJSON it has for stdout', () => {
    const file = join(dir, 'cni-error.log');
    const log = createLogger({ file, level: 'info' });
    log.warn('ADD failed', { error: new CniError(ErrorCode.InvalidConfig, 'bad', 'ranges') });
    const err = lines(file)[0]!.error as Record<string, unknown>;
    assert.equal(err.cniVersion, undefined);
    assert.equal(err.code, ErrorCode.InvalidConfig);
    assert.equal(err.message, 'bad');
    assert.equal(err.details, 'ranges');
    assert.match(err.stack as string, /bad/);
  });

  it('rotates to .1 once the file passes the size bound, keeping only one old file', () => {
    const file = join(dir, 'rotate.log');
    const maxBytes = 300;
    const log = createLogger({ file, level: 'info', maxBytes });
    writeFileSync(`${file}.1`, '{"msg":"older"}\n');
    for (let i = 0; i < 10; i++) log.info(`line-${i}`, { pad: 'x'.repeat(60) });
    const current = lines(file).map((l) => l.msg as string);
    const rotated = lines(`${file}.1`).map((l) => l.msg as string);
    const lineBytes = readFileSync(file, 'utf8').split('\n')[0]!.length + 1;
    assert.ok(statSync(file).size < maxBytes + lineBytes);
    assert.ok(!rotated.includes('older'), 'the older .1 was replaced');
    assert.equal(current.at(-1), 'line-9');
    // .1 holds the lines just before the current file's, with no gap and no overlap.
    const index = (m: string) => Number(m.slice(5));
    assert.equal(index(rotated.at(-1)!) + 1, index(current[0]!));
    assert.equal(existsSync(`${file}.2`), false);
  });

  it('never throws when the file cannot be written', () => {
    const log = createLogger({ file: join(dir, 'no-such-dir', 'x.log'), level: 'debug' });
    log.error('lost');
    const asDir = createLogger({ file: dir, level: 'debug' });
    asDir.info('lost too');
    assert.equal(existsSync(join(dir, 'no-such-dir')), false);
  });

  it('never writes to stdout, even when the log file fails', () => {
    const logModule = new URL('./log.ts', import.meta.url).pathname;
    const file = join(dir, 'child-process.log');
    const script = `
      import { createLogger } from ${JSON.stringify(logModule)};
      const ok = createLogger({ file: ${JSON.stringify(file)}, level: 'debug' });
      const broken = createLogger({ file: '/nonexistent-dir/pier.log', level: 'debug' });
      for (const log of [ok, broken]) {
        log.debug('d'); log.info('i'); log.warn('w'); log.error('e', { err: new Error('x') });
      }`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(lines(file).length, 4);
  });
});
