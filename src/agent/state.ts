// The agent's view, written to <run-dir>/state.json after every reconcile, for `pier status`
// and `pier doctor`, which must not load the agent or its API client. Only node:fs here: the
// CLI imports this file.
import { readFileSync } from 'node:fs';

export const STATE_FILE = 'state.json';
export const READY_FILE = 'ready';
export const DEFAULT_RUN_DIR = '/run/pier/agent';

export interface AgentStateRoute {
  family: 4 | 6;
  dst: string;
  gw: string;
  /** The link's name (the vxlan device's for overlay routes). */
  dev: string;
  onlink: boolean;
  node: string;
}

export interface AgentState {
  version: 1;
  pid: number;
  node: string;
  startedAt: string;
  /** Written at every reconcile, periodic ones included: an old value means a stuck or dead agent. */
  updatedAt: string;
  resyncSeconds: number;
  protocol: number;
  api: { server: string; reachable: boolean; synced: boolean; lastContact?: string; lastError?: string };
  /** This node's accepted podCIDRs; empty while there are none. */
  podCidrs: string[];
  /** Why there is no conflist or no routing yet, when so. */
  waiting?: string;
  ready: boolean;
  conflist?: string;
  backend: string;
  vxlan?: { name: string; vni: number; port: number; mac: string };
  mtu?: number;
  peers: Array<{ name: string; routes: Array<{ family: 4 | 6; podCidr: string; via: 'host-gw' | 'vxlan'; gateway: string }> }>;
  /** The routes the agent wants (Pier's protocol, main table). */
  routes: AgentStateRoute[];
  refused: Array<{ node: string; reason: string }>;
  problems: Array<{ node: string; reason: string }>;
  metricsAddr?: string;
}

/** The state file in `runDir`, or undefined when there is none (no agent ran since boot). */
export function readAgentState(runDir: string): AgentState | undefined {
  let text: string;
  try {
    text = readFileSync(`${runDir}/${STATE_FILE}`, 'utf8');
  } catch {
    return undefined;
  }
  const s = JSON.parse(text) as AgentState;
  if (s.version !== 1) throw new Error(`${runDir}/${STATE_FILE}: unknown state version ${String(s.version)}`);
  return s;
}
