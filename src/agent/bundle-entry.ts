// Entry of build/pier-agent.cjs, the agent's own bundle: it is evaluated by `pier agent` at run
// time (src/cli/agent-launch.ts), never in the plugin's startup snapshot, so the CNI hot path
// neither loads nor deserialises the agent or its API client.
export { runAgent } from './agent.ts';
