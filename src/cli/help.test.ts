// `pier COMMAND --help` names every option of the command with its default, and its exit status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from './cli.ts';
import { COMMANDS } from './help.ts';

async function help(argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await runCli({ argv, env: {}, stdout: { write: (s: string) => (out += s) }, stderr: { write: () => true } });
  return { code, out };
}

test('every command\'s --help lists each option of its usage line, with a default for those taking a value', async () => {
  for (const [name, spec] of Object.entries(COMMANDS)) {
    const { code, out } = await help([name, '--help']);
    assert.equal(code, 0, name);
    assert.match(out, new RegExp(`^Usage: pier ${name}`), name);
    const options = out.split('\n\nOptions:\n')[1]?.split('\n\n')[0] ?? '';
    for (const flag of spec.usage.match(/(?<=[[ ])--?[a-z-]+/g) ?? []) {
      assert.match(options, new RegExp(`^  (-\\w, )?${flag}\\b`, 'm'), `${name} --help describes ${flag}`);
    }
    for (const o of spec.options) {
      if (o.value) assert.match(o.about, /default/, `${name} ${o.names.at(-1)} says its default`);
    }
    assert.match(out, /^Exit status: 0\b/m, `${name} --help gives its exit status`);
  }
  const up = (await help(['up', '--help'])).out.replace(/\s+/g, ' ');
  assert.match(up, /--explain a dry run/);
  assert.match(up, /--state-dir DIR where `pier up` keeps what it did, for down, check and explain \(default \/var\/lib\/pier\/up\)/);
});

test('the top-level help lists every command, and -h works like --help', async () => {
  const { code, out } = await help(['--help']);
  assert.equal(code, 0);
  for (const name of Object.keys(COMMANDS)) assert.match(out, new RegExp(`^  pier ${name}\\b`, 'm'));
  assert.equal((await help(['gc', '-h'])).out, (await help(['gc', '--help'])).out);
});
