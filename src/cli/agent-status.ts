// The agent's view for `pier status` and `pier doctor`: its state file (written by the agent at
// every pass), whether the agent still runs, and which of the routes it wants the kernel has.
// Reads the file and the kernel only: neither the agent's bundle nor its API client is loaded.
import * as nl from '../netlink/index.ts';
import { readAgentState, type AgentState, type AgentStateRoute } from '../agent/state.ts';
import type { Finding } from './doctor.ts';

export interface AgentView {
  state: AgentState;
  /** The agent's process exists. */
  running: boolean;
  /** No pass for three resync intervals: the agent is stuck (or gone). */
  stale: boolean;
  ageSeconds: number;
  routes: Array<AgentStateRoute & { present: boolean }>;
  /** Routes of Pier's protocol the agent does not want (it removes them at its next pass). */
  extra: string[];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The agent's view, or undefined when no agent state is in `runDir`. */
export function agentView(runDir: string, now = Date.now()): AgentView | undefined {
  const state = readAgentState(runDir);
  if (!state) return undefined;
  const ageSeconds = Math.max(0, Math.round((now - Date.parse(state.updatedAt)) / 1000));
  const kernel = nl.withSocket((sock) => [4, 6].flatMap((f) => nl.listRoutes(sock, { family: f as 4 | 6, protocol: state.protocol })));
  const links = nl.withSocket((sock) => new Map(nl.listLinks(sock).map((l) => [l.index, l.name])));
  const key = (dst: string, gw: string | undefined, dev: string | undefined) => `${dst} ${gw ?? ''} ${dev ?? ''}`;
  const have = new Set(kernel.map((r) => key(r.dst, r.gw, r.oif !== undefined ? links.get(r.oif) : undefined)));
  const want = new Set(state.routes.map((r) => key(r.dst, r.gw, r.dev)));
  return {
    state,
    running: alive(state.pid),
    stale: ageSeconds > state.resyncSeconds * 3,
    ageSeconds,
    routes: state.routes.map((r) => ({ ...r, present: have.has(key(r.dst, r.gw, r.dev)) })),
    extra: kernel.filter((r) => !want.has(key(r.dst, r.gw, r.oif !== undefined ? links.get(r.oif) : undefined))).map((r) => `${r.dst}${r.gw ? ` via ${r.gw}` : ''}`),
  };
}

/** True when the agent's side of the node is as it should be. */
export function agentHealthy(v: AgentView): boolean {
  return v.running && !v.stale && v.state.ready && v.routes.every((r) => r.present);
}

export function formatAgentView(v: AgentView): string {
  const s = v.state;
  const lines = [
    `agent: node ${s.node}, pid ${s.pid} ${v.running ? 'running' : 'NOT RUNNING'}, last pass ${v.ageSeconds}s ago${v.stale ? ' (STALE)' : ''}`,
    `  api: ${s.api.server} ${s.api.reachable ? 'reachable' : 'UNREACHABLE'}${s.api.lastContact ? `, last contact ${s.api.lastContact}` : ''}${s.api.lastError ? `, last error: ${s.api.lastError}` : ''}`,
    `  podCIDRs: ${s.podCidrs.join(', ') || '(none)'}${s.waiting ? ` (waiting: ${s.waiting})` : ''}; ready: ${s.ready ? 'yes' : 'no'}${s.conflist ? `; conflist ${s.conflist}` : ''}`,
    `  backend ${s.backend}${s.vxlan ? `, vxlan ${s.vxlan.name} vni ${s.vxlan.vni} port ${s.vxlan.port} mac ${s.vxlan.mac}` : ''}${s.mtu ? `, mtu ${s.mtu}` : ''}, route protocol ${s.protocol}`,
    `  peers: ${s.peers.filter((p) => p.routes.length).length} routed of ${s.peers.length}`,
  ];
  const missing = v.routes.filter((r) => !r.present);
  lines.push(`  routes: ${v.routes.length - missing.length} of ${v.routes.length} present${v.extra.length ? `, ${v.extra.length} stale` : ''}`);
  for (const r of v.routes) lines.push(`    ${r.present ? 'ok     ' : 'MISSING'} ${r.dst} via ${r.gw} dev ${r.dev}${r.onlink ? ' onlink' : ''} (${r.node})`);
  for (const e of v.extra) lines.push(`    stale   ${e}`);
  for (const p of s.problems) lines.push(`  not routed: ${p.node}: ${p.reason}`);
  for (const r of s.refused) lines.push(`  refused: ${r.node}: ${r.reason}`);
  return `${lines.join('\n')}\n`;
}

/** The agent's part of `pier doctor`. */
export function agentFindings(v: AgentView): Finding[] {
  const s = v.state;
  const out: Finding[] = [];
  if (!v.running) out.push({ level: 'fail', what: `pier agent (pid ${s.pid}) is not running: routes stay as they were, but nothing follows node changes`, fix: 'start it again (its DaemonSet, or `pier agent ...`)' });
  else if (v.stale) out.push({ level: 'fail', what: `pier agent (pid ${s.pid}) made no pass for ${v.ageSeconds}s (resync every ${s.resyncSeconds}s): stuck`, fix: 'see its log; restart it' });
  else out.push({ level: 'ok', what: `pier agent (pid ${s.pid}) running, last pass ${v.ageSeconds}s ago` });
  if (!s.api.reachable) out.push({ level: 'warn', what: `the API server ${s.api.server} is unreachable from the agent${s.api.lastError ? ` (${s.api.lastError})` : ''}; routes stay as they are`, fix: 'check the API server and the agent\'s kubeconfig or RBAC' });
  if (!s.ready) out.push({ level: 'warn', what: `this node's network is not ready: ${s.waiting ?? 'no pass yet'}`, fix: 'kubectl get node -o yaml: spec.podCIDRs and status.addresses' });
  const missing = v.routes.filter((r) => !r.present);
  if (missing.length) out.push({ level: 'fail', what: `${missing.length} route(s) to other nodes' pods missing: ${missing.slice(0, 5).map((r) => r.dst).join(', ')}`, fix: 'the agent puts them back at its next pass; if they stay missing, see its log' });
  else if (v.routes.length) out.push({ level: 'ok', what: `all ${v.routes.length} route(s) to other nodes' pods present` });
  for (const r of s.refused) out.push({ level: 'warn', what: `node ${r.node} refused by the agent: ${r.reason}`, fix: 'fix the Node object (kubectl edit node)' });
  for (const p of s.problems) out.push({ level: 'warn', what: `node ${p.node} not routed: ${p.reason}` });
  return out;
}
