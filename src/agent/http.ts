// /metrics and /healthz on the metrics address. /healthz is for a liveness probe: it fails
// only when the agent's loop is stuck (no reconcile pass for three resync intervals), never
// because the API server is away: restarting the agent would not bring it back.
import { createServer, type Server } from 'node:http';
import type { Registry } from './metrics.ts';

export interface HealthSource {
  /** When the last reconcile pass ended (or the agent started). */
  lastPass(): number;
  /** How old lastPass may get before the loop counts as stuck, in ms. */
  stuckAfterMs: number;
  /** A line for humans: API reachability, readiness. */
  summary(): string;
}

/** The process's own figures, as client libraries export them: memory, CPU, heap. */
function processMetrics(m: Registry): void {
  const mem = process.memoryUsage();
  const cpu = process.cpuUsage();
  m.set('process_resident_memory_bytes', 'Resident memory size in bytes', mem.rss);
  m.set('process_cpu_seconds_total', 'User and system CPU time spent, in seconds', (cpu.user + cpu.system) / 1e6);
  m.set('nodejs_heap_size_total_bytes', 'V8 heap size in bytes', mem.heapTotal);
  m.set('nodejs_heap_size_used_bytes', 'V8 heap used in bytes', mem.heapUsed);
  m.set('nodejs_external_memory_bytes', 'Memory of C++ objects bound to JavaScript objects, in bytes', mem.external);
}

export function startHttp(addr: { host: string; port: number }, metrics: Registry, health: HealthSource): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      processMetrics(metrics);
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(metrics.render());
    } else if (path === '/healthz') {
      const stuck = Date.now() - health.lastPass() > health.stuckAfterMs;
      res.writeHead(stuck ? 503 : 200, { 'content-type': 'text/plain; charset=utf-8' }).end(`${stuck ? 'stuck' : 'ok'}: ${health.summary()}\n`);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('pier agent: /metrics, /healthz\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
