// `pier agent`: loads the agent's bundle (build/pier-agent.cjs: the agent and its Kubernetes
// client) and runs it. The bundle is a separate file, evaluated only here, so none of it is in
// the CLI's and the plugin's bundle or startup snapshot: a plugin run pays nothing for it. In
// the single executable it is the SEA asset `pier-agent.cjs`; in development it sits beside
// build/pier.cjs. Node's modules are reached through process.getBuiltinModule at call time, so
// this file adds no import to the hot path either.

/** Name of the SEA asset holding the agent bundle (see scripts/build.mjs). */
export const AGENT_ASSET = 'pier-agent.cjs';

type RunAgent = (argv: string[], env: Record<string, string | undefined>, io: { stdout: { write(s: string): unknown }; stderr: { write(s: string): unknown } }) => Promise<number>;

function agentSource(): { source: string; filename: string } {
  const sea = process.getBuiltinModule('node:sea');
  if (sea?.isSea()) {
    // Named after the executable so stack traces say where the code came from.
    return { source: sea.getAsset(AGENT_ASSET, 'utf8'), filename: `${process.execPath}#${AGENT_ASSET}` };
  }
  const { readFileSync } = process.getBuiltinModule('node:fs');
  const { dirname, join } = process.getBuiltinModule('node:path');
  // build/pier.cjs runs with build/ as its directory; the agent bundle is built beside it.
  const here = typeof __filename === 'string' ? dirname(__filename) : process.cwd();
  const filename = join(here, AGENT_ASSET);
  try {
    return { source: readFileSync(filename, 'utf8'), filename };
  } catch (err) {
    throw new Error(`the agent bundle ${filename} is missing: run npm run build (or node --import tsx src/agent/main.ts)`, { cause: err });
  }
}

/** Evaluates the agent bundle as a CommonJS module and runs it; resolves to the exit code. */
export async function launchAgent(argv: string[], env: Record<string, string | undefined>, io: Parameters<RunAgent>[2]): Promise<number> {
  const { source, filename } = agentSource();
  const vm = process.getBuiltinModule('node:vm');
  const { createRequire } = process.getBuiltinModule('node:module');
  const { dirname } = process.getBuiltinModule('node:path');
  const mod = { exports: {} as { runAgent?: RunAgent } };
  const wrapper = vm.compileFunction(source, ['exports', 'require', 'module', '__filename', '__dirname'], { filename });
  // In the single executable `require` serves Node's own modules only (koffi comes from its
  // asset, see src/native/load-koffi.ts); in development it also finds node_modules.
  const base = filename.includes('#') ? process.execPath : filename;
  wrapper(mod.exports, createRequire(base), mod, base, dirname(base));
  if (typeof mod.exports.runAgent !== 'function') throw new Error(`${filename} does not export runAgent`);
  return mod.exports.runAgent(argv, env, io);
}
