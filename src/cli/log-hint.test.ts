// The CLI's error hints send people to the log Pier actually writes: PIER_LOG_FILE, else the
// config's logFile, else /var/log/pier.log.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './cli.ts';
import { CliError } from './conf-file.ts';
import { runCni } from './run-cni.ts';

const dir = mkdtempSync(join(tmpdir(), 'pier-log-hint-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// A STATUS the config's version does not allow: refused before anything is logged or touched.
const conf = (extra: Record<string, unknown> = {}) => ({ cniVersion: '1.0.0', name: 'n', type: 'pier', ...extra });

async function hintOf(run: Promise<unknown>): Promise<string> {
  try {
    await run;
  } catch (err) {
    assert.ok(err instanceof CliError, String(err));
    return err.hint;
  }
  assert.fail('expected a CliError');
}

test('a failed CNI call names the log file of the config, or of PIER_LOG_FILE', async () => {
  const fromConf = join(dir, 'conf.log');
  const fromEnv = join(dir, 'env.log');
  assert.match(await hintOf(runCni({ command: 'STATUS', conf: conf({ logFile: fromConf }), env: {} })), new RegExp(fromConf));
  assert.match(await hintOf(runCni({ command: 'STATUS', conf: conf({ logFile: fromConf }), env: { PIER_LOG_FILE: fromEnv } })), new RegExp(fromEnv));
  assert.match(await hintOf(runCni({ command: 'STATUS', conf: conf(), env: {} })), /\/var\/log\/pier\.log/);
});

test('any other failure names the log file of PIER_LOG_FILE', async () => {
  const notADir = join(dir, 'file');
  writeFileSync(notADir, '');
  let err = '';
  const code = await runCli({
    argv: ['ls', '--data-dir', notADir],
    env: { PIER_LOG_FILE: join(dir, 'env.log') },
    stdout: { write: () => true },
    stderr: { write: (s: string) => (err += s) },
  });
  assert.equal(code, 1);
  assert.match(err, /hint: .*env\.log/);
});
