// The agent's only contact with the Kubernetes API, through the official client
// (@kubernetes/client-node): the kubeconfig or in-cluster service account, a paged list of
// Nodes, a watch from a resourceVersion, and two patches of this node (an annotation and the
// NetworkUnavailable condition). Every failure becomes an ApiError with the HTTP status when
// there is one.
import { existsSync } from 'node:fs';
import { CoreV1Api, KubeConfig, PatchStrategy, Watch, setHeaderOptions } from '@kubernetes/client-node';

/** A failed API call: `list nodes: 403 Forbidden`. `status` is undefined for network errors. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly op: string,
    readonly status: number | undefined,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${op}: ${status !== undefined ? `${status} ` : ''}${detail}`, options);
  }
}

/** A kubeconfig that cannot be used at all: the agent exits 1 with this message. */
export class KubeConfigError extends Error {
  override readonly name = 'KubeConfigError';
}

export type NodeEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface NodeApi {
  /** The API server's URL. */
  readonly server: string;
  /** Every Node, and the list's resourceVersion to watch from. */
  listNodes(): Promise<{ items: unknown[]; resourceVersion: string }>;
  /**
   * Watches Nodes from `resourceVersion`; `done` settles when the stream ends (resolves when the
   * server closed it, rejects on an error). `stop` ends it early.
   */
  watchNodes(resourceVersion: string, timeoutSeconds: number, onEvent: (type: NodeEventType, object: unknown) => void): { done: Promise<void>; stop(): void };
  /** Strategic merge patch of nodes/NAME/status. */
  patchNodeStatus(name: string, body: object): Promise<void>;
  /** Merge patch of nodes/NAME (metadata). */
  patchNode(name: string, body: object): Promise<void>;
}

const SA_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * The kubeconfig at `path`, else the in-cluster service account. Anything unusable is a
 * KubeConfigError: a DaemonSet pod then fails at once with the reason in its log, where
 * retrying could never help.
 */
export function loadKubeConfig(path: string | undefined, env: Record<string, string | undefined>): KubeConfig {
  const kc = new KubeConfig();
  if (path) {
    if (!existsSync(path)) throw new KubeConfigError(`kubeconfig ${path} does not exist`);
    try {
      kc.loadFromFile(path);
    } catch (err) {
      throw new KubeConfigError(`kubeconfig ${path} cannot be read: ${(err as Error).message}`, { cause: err });
    }
  } else {
    if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT) {
      throw new KubeConfigError('no --kubeconfig, no KUBECONFIG, and not in a pod (KUBERNETES_SERVICE_HOST/PORT unset)');
    }
    if (!existsSync(SA_TOKEN)) throw new KubeConfigError(`in-cluster config: no service account token at ${SA_TOKEN} (automountServiceAccountToken off?)`);
    kc.loadFromCluster();
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server) throw new KubeConfigError(`kubeconfig${path ? ` ${path}` : ''} has no current context with a cluster server`);
  try {
    new URL(cluster.server);
  } catch {
    throw new KubeConfigError(`kubeconfig server ${JSON.stringify(cluster.server)} is not a URL`);
  }
  return kc;
}

/** The API server's address when its URL names an IP literal (a podCIDR must never cover it). */
export function apiServerIps(server: string): string[] {
  const host = new URL(server).hostname.replace(/^\[(.*)\]$/, '$1');
  return /^[0-9.]+$/.test(host) || host.includes(':') ? [host] : [];
}

function toApiError(op: string, err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as { code?: unknown; statusCode?: unknown; message?: string; body?: unknown };
  const status = typeof e?.code === 'number' ? e.code : typeof e?.statusCode === 'number' ? e.statusCode : undefined;
  let detail = e?.message ?? String(err);
  if (status !== undefined && typeof e.body === 'string') {
    try {
      detail = (JSON.parse(e.body) as { message?: string }).message ?? detail;
    } catch {
      /* not a Status */
    }
  }
  return new ApiError(op, status, detail.split('\n')[0], { cause: err });
}

export function createNodeApi(kc: KubeConfig): NodeApi {
  const core = kc.makeApiClient(CoreV1Api);
  const watcher = new Watch(kc);
  const server = kc.getCurrentCluster()!.server;
  return {
    server,
    async listNodes() {
      const items: unknown[] = [];
      let cont: string | undefined;
      let rv = '';
      try {
        do {
          const page = await core.listNode({ limit: 500, ...(cont && { _continue: cont }) });
          items.push(...page.items);
          rv = page.metadata?.resourceVersion ?? rv;
          cont = page.metadata?._continue || undefined;
        } while (cont);
      } catch (err) {
        throw toApiError('list nodes', err);
      }
      return { items, resourceVersion: rv };
    },
    watchNodes(resourceVersion, timeoutSeconds, onEvent) {
      let controller: AbortController | undefined;
      let stopped = false;
      const done = new Promise<void>((resolve, reject) => {
        watcher
          .watch(
            '/api/v1/nodes',
            { resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
            (type: string, object: unknown) => onEvent(type as NodeEventType, object),
            (err: unknown) => (err && !stopped ? reject(toApiError('watch nodes', err)) : resolve()),
          )
          .then(
            (c) => {
              controller = c;
              if (stopped) c.abort();
            },
            (err: unknown) => reject(toApiError('watch nodes', err)),
          );
      });
      return {
        done,
        stop() {
          stopped = true;
          controller?.abort();
        },
      };
    },
    async patchNodeStatus(name, body) {
      try {
        await core.patchNodeStatus({ name, body }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
      } catch (err) {
        throw toApiError(`patch nodes/${name}/status`, err);
      }
    },
    async patchNode(name, body) {
      try {
        await core.patchNode({ name, body }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
      } catch (err) {
        throw toApiError(`patch nodes/${name}`, err);
      }
    },
  };
}
