// The agent's copy of the cluster's Nodes, kept by list and watch: a full list, then a watch
// from the list's resourceVersion, resumed from the last resourceVersion seen (bookmarks
// included) whenever it ends; a relist when the API says that version is gone (410); a
// backoff with jitter after errors. While the API is away the copy stays as it was, so the
// node's routes do too.
import { ApiError, type NodeApi, type NodeEventType } from './kube-api.ts';
import { API_BACKOFF, backoffDelay } from './backoff.ts';
import type { Logger } from './log.ts';
import type { Registry } from './metrics.ts';
import { nodeInfoOf, type NodeInfo } from './node-info.ts';

/** The API refused the agent's credentials at start: retrying cannot help, so the agent exits. */
export class FatalApiError extends Error {
  override readonly name = 'FatalApiError';
}

/** Thrown inside the loop when a watch reports 410 Gone: the next step is a relist. */
class Gone extends Error {}

export interface NodeWatchDeps {
  api: NodeApi;
  log: Logger;
  metrics: Registry;
  /** Called after every change of the copy (a reconcile is due). */
  onChange(): void;
  /** Called when reachability changes (for the state file). */
  onApiState?(): void;
  sleep?(ms: number, signal: AbortSignal): Promise<void>;
  /** Server-side watch timeout; a watch that stays silent for this plus a minute is restarted. */
  watchTimeoutSeconds?: number;
}

/** Only what the agent acts on: events that change none of it (kubelet heartbeats) are dropped. */
function relevant(n: NodeInfo): string {
  return JSON.stringify([n.uid, n.created, n.podCIDRs, n.internalIPs, n.addresses, n.vtepMac ?? '', n.networkUnavailable ?? null]);
}

const defaultSleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

export class NodeWatch {
  readonly nodes = new Map<string, NodeInfo>();
  /** A full list has been read at least once. */
  synced = false;
  /** Full lists read so far (the first and every relist). */
  lists = 0;
  /** Watch events received so far. */
  events = 0;
  reachable = false;
  lastContact?: Date;
  lastError?: string;
  private rv?: string;
  private failures = 0;

  constructor(private readonly deps: NodeWatchDeps) {
    deps.metrics.declare('pier_agent_api_errors_total', 'Kubernetes API calls that failed, by operation', 'counter');
    deps.metrics.declare('pier_agent_watch_restarts_total', 'Node watches started again, by reason', 'counter');
  }

  /** Lists and watches until `signal` aborts. Throws FatalApiError for refused credentials at start. */
  async run(signal: AbortSignal): Promise<void> {
    const sleep = this.deps.sleep ?? defaultSleep;
    while (!signal.aborted) {
      try {
        if (this.rv === undefined) await this.list();
        await this.watch(signal);
        this.failures = 0;
        if (!signal.aborted) this.restarted('closed');
      } catch (err) {
        if (signal.aborted) return;
        // 410 as an ERROR event in the stream, or as the status of the watch request itself.
        if (err instanceof Gone || (err instanceof ApiError && err.status === 410)) {
          this.deps.log.info('watch resourceVersion expired; listing again', { resourceVersion: this.rv });
          this.rv = undefined;
          this.restarted('gone');
          continue;
        }
        const e = err instanceof ApiError ? err : new ApiError('watch nodes', undefined, String(err), { cause: err });
        this.deps.metrics.inc('pier_agent_api_errors_total', 'Kubernetes API calls that failed, by operation', { op: e.op.split(' ')[0] });
        if (!this.synced && e.status === 401) {
          throw new FatalApiError(`the API server refused the agent's credentials (${e.message}); check the kubeconfig or the service account token`);
        }
        this.setReachable(e.status !== undefined, e.message);
        const delay = backoffDelay(this.failures++, API_BACKOFF);
        const hint = e.status === 403 ? 'RBAC: the agent needs list, watch and patch on nodes and patch on nodes/status (the ClusterRole pier-agent of conf/kubernetes/pier.yaml)' : undefined;
        this.deps.log.warn('API call failed; retrying', { error: e.message, retryInMs: delay, ...(hint && { hint }) });
        if (this.rv !== undefined) this.restarted('error');
        await sleep(delay, signal);
      }
    }
  }

  private restarted(reason: string): void {
    this.deps.metrics.inc('pier_agent_watch_restarts_total', 'Node watches started again, by reason', { reason });
  }

  private setReachable(up: boolean, error?: string): void {
    const changed = up !== this.reachable || error !== this.lastError;
    this.reachable = up;
    if (up) this.lastContact = new Date();
    this.lastError = error;
    this.deps.metrics.set('pier_agent_api_up', 'The last API call got an answer (1) or not (0)', up && !error ? 1 : 0);
    if (changed) this.deps.onApiState?.();
  }

  private async list(): Promise<void> {
    const { items, resourceVersion } = await this.deps.api.listNodes();
    this.setReachable(true);
    const fresh = new Map<string, NodeInfo>();
    for (const item of items) {
      const n = nodeInfoOf(item);
      if (n) fresh.set(n.name, n);
    }
    let changed = fresh.size !== this.nodes.size;
    for (const [name, n] of fresh) if (!changed && (!this.nodes.has(name) || relevant(this.nodes.get(name)!) !== relevant(n))) changed = true;
    this.nodes.clear();
    for (const [name, n] of fresh) this.nodes.set(name, n);
    this.rv = resourceVersion;
    this.lists++;
    const first = !this.synced;
    this.synced = true;
    this.deps.log.info(first ? 'nodes listed' : 'nodes listed again', { nodes: this.nodes.size, resourceVersion });
    if (changed || first) this.deps.onChange();
  }

  private async watch(signal: AbortSignal): Promise<void> {
    const timeout = this.deps.watchTimeoutSeconds ?? 300 + Math.floor(Math.random() * 60);
    let gone = false;
    let lastEvent = Date.now();
    const w = this.deps.api.watchNodes(this.rv!, timeout, (type, obj) => {
      lastEvent = Date.now();
      this.handle(type, obj, () => {
        gone = true;
        w.stop();
      });
    });
    const onAbort = () => w.stop();
    signal.addEventListener('abort', onAbort, { once: true });
    // A connection that died without a word (no FIN, no RST) would hang forever: the server
    // ends every watch after `timeout` seconds and sends bookmarks, so silence past that is death.
    const watchdog = setInterval(() => {
      if (Date.now() - lastEvent > (timeout + 60) * 1000) w.stop();
    }, 10_000);
    watchdog.unref();
    try {
      await w.done;
      this.setReachable(true);
    } finally {
      clearInterval(watchdog);
      signal.removeEventListener('abort', onAbort);
    }
    if (gone) throw new Gone();
  }

  private handle(type: NodeEventType, obj: unknown, onGone: () => void): void {
    this.events++;
    this.deps.metrics.inc('pier_agent_watch_events_total', 'Node watch events received, by type', { type });
    if (type === 'ERROR') {
      const status = obj as { code?: number; message?: string };
      if (status?.code === 410) onGone();
      else this.deps.log.warn('watch error event', { code: status?.code, message: status?.message });
      return;
    }
    const rv = (obj as { metadata?: { resourceVersion?: unknown } })?.metadata?.resourceVersion;
    if (typeof rv === 'string') this.rv = rv;
    if (type === 'BOOKMARK') return;
    if (!this.reachable || this.lastError) this.setReachable(true);
    else this.lastContact = new Date();
    const n = nodeInfoOf(obj);
    if (!n) return;
    if (type === 'DELETED') {
      if (this.nodes.delete(n.name)) this.deps.onChange();
      return;
    }
    const before = this.nodes.get(n.name);
    this.nodes.set(n.name, n);
    if (!before || relevant(before) !== relevant(n)) {
      this.deps.log.debug('node changed', { node: n.name, event: type, was: before && relevant(before), now: relevant(n) });
      this.deps.onChange();
    }
  }
}
