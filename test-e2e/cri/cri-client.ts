// A CRI client as the kubelet is one: the runtime.v1 RuntimeService and ImageService over gRPC
// on the runtime's unix socket, from the api.proto of k8s.io/cri-api (go-tools.ts), with
// @grpc/grpc-js. Messages keep the proto's snake_case field names (pod_sandbox_id, port_mappings).
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { criApiProto } from './go-tools.ts';

/** A CRI call that failed: the gRPC status code and the runtime's message. */
export class CriError extends Error {
  constructor(
    readonly method: string,
    readonly code: number,
    readonly details: string,
  ) {
    super(`CRI ${method}: ${grpc.status[code] ?? code}: ${details}`);
  }
}

type Unary = (req: object, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: any) => void) => void;

let definition: protoLoader.PackageDefinition | undefined;

function services() {
  definition ??= protoLoader.loadSync(criApiProto(), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(definition) as any;
  return pkg.runtime.v1 as { RuntimeService: grpc.ServiceClientConstructor; ImageService: grpc.ServiceClientConstructor };
}

export interface PortMapping {
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  container_port: number;
  host_port: number;
  host_ip?: string;
}

/** The parts of a PodSandboxConfig the tests set (the proto has more; absent means default). */
export interface PodSandboxConfig {
  metadata: { name: string; uid: string; namespace: string; attempt?: number };
  hostname?: string;
  log_directory?: string;
  port_mappings?: PortMapping[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: { cgroup_parent?: string; security_context?: Record<string, unknown> };
}

export interface ContainerConfig {
  metadata: { name: string; attempt?: number };
  image: { image: string };
  command?: string[];
  args?: string[];
  log_path?: string;
  envs?: Array<{ key: string; value: string }>;
  labels?: Record<string, string>;
  linux?: Record<string, unknown>;
}

export class CriClient {
  private readonly runtime: grpc.Client;
  private readonly image: grpc.Client;

  constructor(readonly socket: string) {
    const { RuntimeService, ImageService } = services();
    const creds = grpc.credentials.createInsecure();
    this.runtime = new RuntimeService(`unix://${socket}`, creds);
    this.image = new ImageService(`unix://${socket}`, creds);
  }

  /** One unary call; rejects with CriError. Generous default deadline: the machine is shared. */
  call<T = any>(service: 'runtime' | 'image', method: string, req: object, timeoutMs = 120_000): Promise<T> {
    const client = (service === 'runtime' ? this.runtime : this.image) as unknown as Record<string, Unary>;
    const fn = client[method];
    if (typeof fn !== 'function') return Promise.reject(new Error(`no CRI method ${service}.${method}`));
    return new Promise((resolve, reject) => {
      fn.call(client, req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(new CriError(method, err.code, err.details || err.message));
        else resolve(res as T);
      });
    });
  }

  version() {
    return this.call<{ version: string; runtime_name: string; runtime_version: string; runtime_api_version: string }>('runtime', 'Version', { version: 'v1' });
  }

  /** Runtime conditions (RuntimeReady, NetworkReady) by type. */
  async conditions(): Promise<Record<string, { status: boolean; reason: string; message: string }>> {
    const r = await this.call('runtime', 'Status', { verbose: false });
    return Object.fromEntries((r.status?.conditions ?? []).map((c: any) => [c.type, { status: c.status, reason: c.reason, message: c.message }]));
  }

  async runPodSandbox(config: PodSandboxConfig): Promise<string> {
    return (await this.call('runtime', 'RunPodSandbox', { config })).pod_sandbox_id;
  }

  stopPodSandbox(id: string) {
    return this.call('runtime', 'StopPodSandbox', { pod_sandbox_id: id });
  }

  removePodSandbox(id: string) {
    return this.call('runtime', 'RemovePodSandbox', { pod_sandbox_id: id });
  }

  async podSandboxStatus(id: string): Promise<any> {
    return (await this.call('runtime', 'PodSandboxStatus', { pod_sandbox_id: id, verbose: true })).status;
  }

  async listPodSandbox(): Promise<Array<{ id: string; metadata: { name: string }; state: string }>> {
    return (await this.call('runtime', 'ListPodSandbox', {})).items;
  }

  /** The pod's IPv4 address as the runtime reports it (from the CNI result). */
  async podIp(id: string): Promise<string> {
    const s = await this.podSandboxStatus(id);
    return s.network?.ip ?? '';
  }

  async createContainer(podId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string> {
    return (await this.call('runtime', 'CreateContainer', { pod_sandbox_id: podId, config, sandbox_config: sandboxConfig })).container_id;
  }

  startContainer(id: string) {
    return this.call('runtime', 'StartContainer', { container_id: id });
  }

  async containerState(id: string): Promise<string> {
    return (await this.call('runtime', 'ContainerStatus', { container_id: id })).status.state;
  }

  /** Runs `cmd` in the container; stdout and stderr as text. */
  async execSync(id: string, cmd: string[], timeoutS = 30): Promise<{ stdout: string; stderr: string; exit_code: number }> {
    const r = await this.call('runtime', 'ExecSync', { container_id: id, cmd, timeout: timeoutS }, (timeoutS + 30) * 1000);
    return { stdout: Buffer.from(r.stdout ?? '').toString(), stderr: Buffer.from(r.stderr ?? '').toString(), exit_code: r.exit_code };
  }

  async imageId(ref: string): Promise<string | undefined> {
    return (await this.call('image', 'ImageStatus', { image: { image: ref } })).image?.id || undefined;
  }

  close(): void {
    this.runtime.close();
    this.image.close();
  }
}
