// `pier agent`: flags, the API client, the kernel side, the metrics server and the loop that
// runs a reconcile pass after every relevant Node change (debounced), on a timer, and after a
// failed API write. Stopping (SIGTERM, SIGINT) removes nothing.
import { mkdirSync, readFileSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { NetlinkSocket } from '../netlink/socket.ts';
import { applyTransaction } from '../nft/runner.ts';
import { buildDocument } from '../nft/build-attachment.ts';
import { PIER_VERSION } from '../version.ts';
import { writeConflist, writeFileAtomic } from './conflist.ts';
import { KernelDataplane } from './dataplane.ts';
import { agentHelp, FlagError, parseAgentFlags, type AgentFlags } from './flags.ts';
import { startHttp } from './http.ts';
import { apiServerIps, createNodeApi, KubeConfigError, loadKubeConfig, type NodeApi } from './kube-api.ts';
import { jsonLogger, type Logger } from './log.ts';
import { reclaimMemory, releaseSeaBlobPages } from './memory.ts';
import { Registry } from './metrics.ts';
import { FatalApiError, NodeWatch } from './node-watch.ts';
import { VTEP_MAC_ANNOTATION, type NodeInfo } from './node-info.ts';
import { Reconciler, type PassResult } from './reconciler.ts';
import { READY_FILE, STATE_FILE, type AgentState } from './state.ts';
import { vtepMacOf } from './vtep.ts';

/**
 * The protocol number of every route the agent installs (`ip route show proto 173`). Unused in
 * iproute2's rt_protos and by the routing daemons and CNIs we know of (Calico uses 80, FRR
 * 186-198, bird 12); the agent removes only stale routes of this number.
 */
export const PIER_ROUTE_PROTOCOL = 173;

/** Reason of the NetworkUnavailable=False condition the agent sets on its Node. */
export const CONDITION_REASON = 'PierRoutesCreated';

export interface AgentIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  hostname?: string;
}

/** The reconciler for `flags`, with the kernel side in the netns of the calling thread. */
export function reconcilerFor(flags: AgentFlags, io: { log: Logger; metrics: Registry; apiServerIps: string[]; template?: Record<string, unknown> }): { reconciler: Reconciler; close(): void } {
  const sock = NetlinkSocket.open();
  const dataplane = new KernelDataplane(sock, PIER_ROUTE_PROTOCOL);
  const readyFile = join(flags.runDir, READY_FILE);
  const reconciler = new Reconciler({
    settings: {
      nodeName: flags.nodeName,
      clusterCidrs: flags.clusterCidrs,
      apiServerIps: io.apiServerIps,
      backend: flags.backend,
      vxlan: { name: flags.vxlanName, vni: flags.vxlanVni, port: flags.vxlanPort, mac: vtepMacOf(flags.nodeName) },
      ...(flags.mtu !== undefined && { mtu: flags.mtu }),
      conflist: { name: flags.networkName, cniVersion: flags.cniVersion, bridge: flags.bridge, dataDir: flags.dataDir, readyFile, ...(io.template && { template: io.template }) },
      explicit: { bridge: flags.explicit.has('--bridge'), mtu: flags.explicit.has('--mtu') },
      protocol: PIER_ROUTE_PROTOCOL,
    },
    dataplane,
    applyNft: (cmds) => applyTransaction(buildDocument(cmds)),
    writeConflist: (text) => writeConflist(flags.cniConfDir, text),
    markReady: () => writeFileAtomic(readyFile, `${new Date().toISOString()}\n`),
    log: io.log,
    metrics: io.metrics,
  });
  return { reconciler, close: () => sock.close() };
}

/** Runs the agent until a signal; resolves to the exit code. */
export async function runAgent(argv: string[], env: Record<string, string | undefined>, io: AgentIo): Promise<number> {
  let flags: AgentFlags | undefined;
  try {
    flags = parseAgentFlags(argv, env, io.hostname ?? osHostname());
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    io.stderr.write(`pier agent: ${err.message}\n`);
    return 2;
  }
  if (!flags) {
    io.stdout.write(agentHelp(PIER_VERSION));
    return 0;
  }
  // A daemon that idles: keep V8's young generation at its initial size instead of letting it
  // grow to tens of MB after the burst of a first list (measured with 503 nodes: RSS ~112 MB ->
  // see README). Scavenges of the small space are more frequent and just as cheap. A runtime
  // flag, not a command-line one: the single executable takes no V8 options, and NODE_OPTIONS
  // would make its startup snapshot unusable.
  setFlagsFromString('--semi-space-growth-factor=1');
  // No optimizing compiler (TurboFan): the agent's work is a pass now and then, which the
  // interpreter and the baseline compiler run fast enough (see README for the convergence
  // figures), while TurboFan's own machine code (4.3 MB of dist/pier's pages touched) and the
  // code it made stayed resident for the agent's whole life: measured with 503 nodes,
  // RSS -3.6 MB of file pages and -2.3 MB anonymous.
  setFlagsFromString('--no-opt');
  const log = jsonLogger((line) => io.stderr.write(line), flags.logLevel);
  let api: NodeApi;
  let template: Record<string, unknown> | undefined;
  try {
    api = createNodeApi(loadKubeConfig(flags.kubeconfig, env));
    if (flags.conflistTemplate) template = readTemplate(flags.conflistTemplate);
  } catch (err) {
    if (!(err instanceof KubeConfigError) && !(err instanceof TemplateError)) throw err;
    log.error(err.message);
    return 1;
  }
  return new Agent(flags, api, log, template).run();
}

class TemplateError extends Error {}

function readTemplate(file: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new TemplateError(`--conflist-template ${file}: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || !Array.isArray((parsed as { plugins?: unknown }).plugins)) {
    throw new TemplateError(`--conflist-template ${file}: not a conflist (an object with a "plugins" list)`);
  }
  return parsed as Record<string, unknown>;
}

/** How long to wait for more events before a pass (a burst of changes becomes one pass). */
const DEBOUNCE_MS = 20;
/** A failed API write is tried again this soon (not only at the next resync). */
const API_RETRY_MS = 5000;
/**
 * While Node events or passes keep coming, memory is given back this often (memory.ts): V8
 * collects an idle process's old garbage late, and the heap would hold what the events
 * allocated. One full collection a minute costs well under 0.1 % of a core.
 */
const RECLAIM_MS = 60_000;

class Agent {
  private readonly metrics = new Registry();
  private readonly abort = new AbortController();
  private readonly watch: NodeWatch;
  private readonly startedAt = new Date();
  private lastPass = Date.now();
  private last?: PassResult;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;
  private lastMacPatch = 0;
  private passes = 0;
  /** NodeWatch.lists, NodeWatch.events and passes when memory was last given back. */
  private reclaimedAt = { lists: 0, activity: 0 };
  private lastConditionPatch = 0;

  constructor(
    private readonly flags: AgentFlags,
    private readonly api: NodeApi,
    private readonly log: Logger,
    private readonly template?: Record<string, unknown>,
  ) {
    this.watch = new NodeWatch({ api, log, metrics: this.metrics, onChange: () => this.request(), onApiState: () => this.writeState() });
  }

  async run(): Promise<number> {
    const { flags, log } = this;
    const { reconciler, close } = reconcilerFor(flags, { log, metrics: this.metrics, apiServerIps: apiServerIps(this.api.server), template: this.template });
    this.reconciler = reconciler;
    // After koffi is loaded (the netlink socket above): a first load may copy it out of the blob.
    try {
      log.debug('startup pages of the executable released', { mb: releaseSeaBlobPages() });
    } catch (err) {
      log.warn('cannot release the startup pages of the executable', { error: (err as Error).message });
    }
    let server: Server | undefined;
    if (flags.metricsAddr) {
      try {
        server = await startHttp(flags.metricsAddr, this.metrics, {
          lastPass: () => this.lastPass,
          stuckAfterMs: flags.resyncSeconds * 3000,
          summary: () => `api ${this.watch.reachable && !this.watch.lastError ? 'reachable' : 'unreachable'}, ${this.last?.state.ready ? 'ready' : 'not ready'}`,
        });
      } catch (err) {
        log.error(`cannot serve metrics on ${flags.metricsAddr.host}:${flags.metricsAddr.port}: ${(err as Error).message}`);
        close();
        return 1;
      }
    }
    mkdirSync(flags.runDir, { recursive: true, mode: 0o755 });
    log.info('pier agent started', {
      version: PIER_VERSION, node: flags.nodeName, server: this.api.server, backend: flags.backend,
      clusterCidr: flags.clusterCidrs.map((c) => c.text), cniConfDir: flags.cniConfDir, protocol: PIER_ROUTE_PROTOCOL,
    });
    this.writeState();
    const stop = (signal: string) => {
      log.info('stopping; routes, conflist and nftables stay in place', { signal });
      this.abort.abort();
    };
    const onTerm = () => stop('SIGTERM');
    const onInt = () => stop('SIGINT');
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
    const resync = setInterval(() => this.request(0), flags.resyncSeconds * 1000);
    const reclaim = setInterval(() => this.reclaim('events'), RECLAIM_MS);
    let code = 0;
    try {
      await this.watch.run(this.abort.signal);
    } catch (err) {
      if (!(err instanceof FatalApiError)) throw err;
      log.error(err.message);
      code = 1;
    } finally {
      clearInterval(resync);
      clearInterval(reclaim);
      clearTimeout(this.timer);
      await this.running;
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      close();
    }
    return code;
  }

  private reconciler?: Reconciler;

  /** Asks for a pass in `delay` ms; changes meanwhile are folded into it. */
  private request(delay = DEBOUNCE_MS): void {
    if (this.abort.signal.aborted || !this.watch.synced) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.pass().finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.request(0);
        }
      });
    }, delay);
  }

  private async pass(): Promise<void> {
    try {
      this.last = await this.reconciler!.reconcile(this.watch.nodes.values());
    } catch (err) {
      this.log.error('reconcile failed', { error: err, stack: (err as Error).stack });
    }
    this.lastPass = Date.now();
    this.writeState();
    if (this.last && this.watch.synced) await this.apiWrites(this.last);
    this.passes++;
    // The first pass after a list: what the list and the pass allocated is garbage now.
    if (this.watch.lists !== this.reclaimedAt.lists) this.reclaim('list');
  }

  /** Gives memory back (memory.ts) when something happened since the last time. */
  private reclaim(reason: string): void {
    const activity = this.watch.events + this.passes;
    if (reason !== 'list' && activity === this.reclaimedAt.activity) return;
    this.reclaimedAt = { lists: this.watch.lists, activity };
    // After a list (rare) at info level, so the log shows what a list cost; the minutely ones at debug.
    this.log[reason === 'list' ? 'info' : 'debug']('memory given back', { reason, ...reclaimMemory() });
  }

  /** The Node writes a pass asked for: the VTEP MAC annotation and the NetworkUnavailable condition. */
  private async apiWrites(r: PassResult): Promise<void> {
    const own: NodeInfo | undefined = this.watch.nodes.get(this.flags.nodeName);
    if (!own) return;
    const now = Date.now();
    let failed = false;
    if (r.wantVtepMac && own.vtepMac !== r.wantVtepMac && now - this.lastMacPatch > API_RETRY_MS) {
      this.lastMacPatch = now;
      try {
        await this.api.patchNode(own.name, { metadata: { annotations: { [VTEP_MAC_ANNOTATION]: r.wantVtepMac } } });
        this.log.info('VTEP MAC published', { annotation: VTEP_MAC_ANNOTATION, mac: r.wantVtepMac });
      } catch (err) {
        failed = true;
        this.apiWriteFailed('patch', err);
      }
    }
    const cond = own.networkUnavailable;
    if (r.wantNetworkAvailable && !(cond?.status === 'False' && cond.reason === CONDITION_REASON) && now - this.lastConditionPatch > API_RETRY_MS) {
      this.lastConditionPatch = now;
      const stamp = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
      try {
        await this.api.patchNodeStatus(own.name, {
          status: { conditions: [{ type: 'NetworkUnavailable', status: 'False', reason: CONDITION_REASON, message: 'Pier routes this node\'s pods to the other nodes', lastTransitionTime: stamp, lastHeartbeatTime: stamp }] },
        });
        this.log.info('NetworkUnavailable set to False', { reason: CONDITION_REASON });
      } catch (err) {
        failed = true;
        this.apiWriteFailed('patch-status', err);
      }
    }
    if (failed) setTimeout(() => this.request(0), API_RETRY_MS).unref();
  }

  private apiWriteFailed(op: string, err: unknown): void {
    this.metrics.inc('pier_agent_api_errors_total', 'Kubernetes API calls that failed, by operation', { op });
    this.log.warn('API write failed; will retry', { error: (err as Error).message });
  }

  private writeState(): void {
    const f = this.flags;
    const s = this.last?.state;
    const state: AgentState = {
      version: 1,
      pid: process.pid,
      node: f.nodeName,
      startedAt: this.startedAt.toISOString(),
      updatedAt: new Date().toISOString(),
      resyncSeconds: f.resyncSeconds,
      protocol: PIER_ROUTE_PROTOCOL,
      api: {
        server: this.api.server,
        reachable: this.watch.reachable && !this.watch.lastError,
        synced: this.watch.synced,
        ...(this.watch.lastContact && { lastContact: this.watch.lastContact.toISOString() }),
        ...(this.watch.lastError && { lastError: this.watch.lastError }),
      },
      podCidrs: s?.podCidrs ?? [],
      ...(s?.waiting ? { waiting: s.waiting } : !s ? { waiting: this.watch.synced ? 'first pass pending' : 'the API server has not been reached yet' } : {}),
      ready: s?.ready ?? false,
      ...(s?.ready && { conflist: join(f.cniConfDir, '10-pier.conflist') }),
      backend: f.backend,
      ...(s?.vxlan && { vxlan: s.vxlan }),
      ...(s?.mtu !== undefined && { mtu: s.mtu }),
      peers: s?.peers ?? [],
      routes: s?.routes ?? [],
      refused: s?.refused ?? [],
      problems: s?.problems ?? [],
      ...(f.metricsAddr && { metricsAddr: `${f.metricsAddr.host.includes(':') ? `[${f.metricsAddr.host}]` : f.metricsAddr.host}:${f.metricsAddr.port}` }),
    };
    try {
      writeFileAtomic(join(f.runDir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
    } catch (err) {
      this.log.warn('cannot write the state file', { file: join(f.runDir, STATE_FILE), error: err });
    }
  }
}
