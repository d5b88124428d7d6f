// Runs the agent's reconciler, as `pier agent` builds it, on Node objects given as data: no API
// server. For the dataplane e2e tests, run inside a throwaway netns playing the node:
//   ip netns exec NS node --import tsx test-e2e/agent-driver.ts INPUT.json
// INPUT.json: {"argv": [agent flags], "passes": [[Node objects], ...]}. Prints one JSON line per
// pass: the log lines, the netlink batches and requests it took, and the state it reached.
import { readFileSync } from 'node:fs';
import { parseAgentFlags } from '../src/agent/flags.ts';
import { reconcilerFor } from '../src/agent/agent.ts';
import { jsonLogger } from '../src/agent/log.ts';
import { Registry } from '../src/agent/metrics.ts';
import { nodeInfoOf, type NodeInfo } from '../src/agent/node-info.ts';

const input = JSON.parse(readFileSync(process.argv[2], 'utf8')) as { argv: string[]; passes: unknown[][] };
const flags = parseAgentFlags(input.argv, {}, 'driver')!;
let logs: unknown[] = [];
const log = jsonLogger((line) => logs.push(JSON.parse(line)), 'debug');
const metrics = new Registry();
const { reconciler, close } = reconcilerFor(flags, { log, metrics, apiServerIps: [] });
const counter = (name: string) => metrics.value(name) ?? 0;
try {
  for (const [i, nodes] of input.passes.entries()) {
    logs = [];
    const batches = counter('pier_agent_netlink_batches_total');
    const requests = counter('pier_agent_netlink_requests_total');
    const t = performance.now();
    const r = await reconciler.reconcile(nodes.map((n) => nodeInfoOf(n)).filter((n): n is NodeInfo => n !== undefined));
    const ms = performance.now() - t;
    process.stdout.write(`${JSON.stringify({ pass: i, ms, logs, batches: counter('pier_agent_netlink_batches_total') - batches, requests: counter('pier_agent_netlink_requests_total') - requests, state: r.state })}\n`);
  }
} finally {
  close();
}
