// The test cluster's certificates and kubeconfigs, made with the openssl command: one CA that
// signs the apiserver's serving certificate and every client certificate, and the service-account
// signing key pair. EC P-256 keys (fast to make on a loaded machine); RSA for the service-account
// key, the algorithm every Kubernetes token consumer accepts.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
}

export interface KeyPair {
  cert: string;
  key: string;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: Buffer };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.toString().trim() ?? String(err)}`, { cause: err });
  }
}

// A user or group name goes into an openssl -subj string, where '/', '+', '=' and ',' are syntax.
const SUBJECT_NAME = /^[A-Za-z0-9:._@-]+$/;

/** Throws unless the name can be a certificate subject field as it is. */
export function checkSubjectName(what: string, name: string): void {
  if (!SUBJECT_NAME.test(name)) throw new Error(`${what} ${JSON.stringify(name)}: use letters, digits and :._@- only`);
}

function genKey(path: string, cwd: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path], cwd);
}

/** A new CA (key and self-signed certificate) in dir. */
export function createCa(dir: string, commonName: string): Pki {
  const caKey = join(dir, 'ca.key');
  const caCert = join(dir, 'ca.crt');
  const conf = join(dir, 'ca.cnf');
  writeFileSync(
    conf,
    [
      '[req]', 'distinguished_name = dn', 'prompt = no', 'x509_extensions = v3_ca',
      '[dn]', `CN = ${commonName}`,
      '[v3_ca]', 'basicConstraints = critical,CA:TRUE', 'keyUsage = critical,keyCertSign,cRLSign,digitalSignature',
      'subjectKeyIdentifier = hash',
    ].join('\n') + '\n',
  );
  genKey(caKey, dir);
  openssl(['req', '-x509', '-new', '-config', conf, '-key', caKey, '-days', '30', '-out', caCert], dir);
  return { dir, caCert, caKey };
}

export interface CertRequest {
  /** File name stem: NAME.crt and NAME.key in the PKI dir. */
  name: string;
  commonName: string;
  organizations?: string[];
  /** Subject alternative names, e.g. ['IP:127.0.0.1', 'DNS:kubernetes']: makes it a serving cert too. */
  altNames?: string[];
}

/** A key and a certificate signed by the CA: a client certificate, and a serving one with altNames. */
export function issueCert(pki: Pki, req: CertRequest): KeyPair {
  checkSubjectName('user', req.commonName);
  for (const o of req.organizations ?? []) checkSubjectName('group', o);
  const key = join(pki.dir, `${req.name}.key`);
  const cert = join(pki.dir, `${req.name}.crt`);
  const csr = join(pki.dir, `${req.name}.csr`);
  const ext = join(pki.dir, `${req.name}.ext`);
  const subject = `/CN=${req.commonName}${(req.organizations ?? []).map((o) => `/O=${o}`).join('')}`;
  const serving = Boolean(req.altNames?.length);
  writeFileSync(
    ext,
    [
      '[v3]',
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature,keyEncipherment',
      `extendedKeyUsage = ${serving ? 'serverAuth,clientAuth' : 'clientAuth'}`,
      'authorityKeyIdentifier = keyid',
      ...(serving ? [`subjectAltName = ${req.altNames!.join(',')}`] : []),
    ].join('\n') + '\n',
  );
  genKey(key, pki.dir);
  openssl(['req', '-new', '-key', key, '-subj', subject, '-out', csr], pki.dir);
  openssl(
    ['x509', '-req', '-in', csr, '-CA', pki.caCert, '-CAkey', pki.caKey, '-set_serial', `0x${randomBytes(15).toString('hex')}`,
      '-days', '30', '-extfile', ext, '-extensions', 'v3', '-out', cert],
    pki.dir,
  );
  return { cert, key };
}

/** The service-account token signing key pair (private key for signing, public key for checking). */
export function createServiceAccountKeys(dir: string): { key: string; pub: string } {
  const key = join(dir, 'sa.key');
  const pub = join(dir, 'sa.pub');
  openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', key], dir);
  openssl(['pkey', '-in', key, '-pubout', '-out', pub], dir);
  return { key, pub };
}

export interface KubeconfigSpec {
  server: string;
  caFile: string;
  user: string;
  /** A client certificate, or a bearer token. */
  credentials: KeyPair | { token: string };
}

/** Writes a self-contained kubeconfig (certificates inlined) and returns its path. */
export function writeKubeconfig(path: string, spec: KubeconfigSpec): string {
  const b64 = (file: string) => readFileSync(file).toString('base64');
  const user =
    'token' in spec.credentials
      ? { token: spec.credentials.token }
      : { 'client-certificate-data': b64(spec.credentials.cert), 'client-key-data': b64(spec.credentials.key) };
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'pier-test', cluster: { server: spec.server, 'certificate-authority-data': b64(spec.caFile) } }],
    users: [{ name: spec.user, user }],
    contexts: [{ name: 'pier-test', context: { cluster: 'pier-test', user: spec.user } }],
    'current-context': 'pier-test',
  };
  // JSON is YAML: every kubeconfig reader (kubectl, client-go, @kubernetes/client-node) takes it.
  writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  return path;
}
