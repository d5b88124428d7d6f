#!/usr/bin/env node
// Packs a root filesystem directory into an OCI image archive (an `oci-layout` file, `index.json`
// and `blobs/sha256/...`, as one tar), the format `ctr images import`, `podman load` and
// `skopeo copy oci-archive:` read. No registry, no daemon, no dependency: the image is FROM
// scratch, one layer holding the directory as it is.
//
// Usage:
//   node scripts/oci-image.mjs --rootfs DIR --name REF --out FILE
//        [--entrypoint JSON-ARRAY] [--cmd JSON-ARRAY] [--env K=V]... [--workdir DIR]
//        [--label K=V]... [--user USER] [--expose PORT/PROTO]... [--arch amd64] [--os linux]
//        [--created ISO-TIME] [--no-gzip]
//
// REF is the full image name (`localhost/pier/pause:1`); it goes into index.json both as
// `io.containerd.image.name` (what containerd names the imported image) and as
// `org.opencontainers.image.ref.name`, whole, as `podman save --format oci-archive` writes it:
// a tool that reads only the OCI annotation gets the full name (podman 4.3 without the
// containerd one names a bare tag `localhost/1:latest`).
//
// Reproducible: entries are sorted, owned by 0:0, dated --created (default: SOURCE_DATE_EPOCH,
// else 1970-01-01), and gzip carries no time stamp; the same inputs give the same digests. Regular
// files, directories, symlinks and hard links are packed (modes kept); sockets, FIFOs and device
// nodes are refused (a runtime makes /dev itself). Prints the manifest digest on stdout.
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, lstatSync, openSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

// ---------------------------------------------------------------- tar (POSIX ustar + pax)

const BLOCK = 512;

/** A header field: `text` as bytes, NUL-padded to `len` (longer input is the caller's bug). */
function field(buf, off, len, text) {
  const b = Buffer.from(text, 'utf8');
  if (b.length > len) throw new Error(`tar: ${JSON.stringify(text)} does not fit in ${len} bytes`);
  b.copy(buf, off);
}

/** An octal number field with its NUL terminator. */
function octal(buf, off, len, n) {
  field(buf, off, len, `${n.toString(8).padStart(len - 1, '0')}\0`);
}

/** One 512-byte ustar header. `name` and `linkname` must fit (the pax record carries longer ones). */
function header({ name, mode, size, mtime, type, linkname = '' }) {
  const h = Buffer.alloc(BLOCK);
  field(h, 0, 100, name);
  octal(h, 100, 8, mode & 0o7777);
  octal(h, 108, 8, 0); // uid
  octal(h, 116, 8, 0); // gid
  octal(h, 124, 12, size);
  octal(h, 136, 12, mtime);
  h.fill(0x20, 148, 156); // the checksum counts its own field as spaces
  field(h, 156, 1, type);
  field(h, 157, 100, linkname);
  field(h, 257, 6, 'ustar');
  field(h, 263, 2, '00');
  field(h, 265, 32, 'root');
  field(h, 297, 32, 'root');
  let sum = 0;
  for (const byte of h) sum += byte;
  field(h, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

const pad = (n) => Buffer.alloc((BLOCK - (n % BLOCK)) % BLOCK);

/** A pax record `LEN key=value\n`, LEN counting itself. */
function paxRecord(key, value) {
  const body = Buffer.byteLength(` ${key}=${value}\n`);
  let len = body;
  while (String(len).length + body !== len) len = String(len).length + body;
  return `${len} ${key}=${value}\n`;
}

const fits = (s) => Buffer.byteLength(s) <= 100;

/**
 * A tar stream (as one Buffer) from entries `{name, type: 'file'|'dir'|'symlink'|'link', mode,
 * data?, linkname?}`, in the order given, closed by two zero blocks.
 */
export function tar(entries, mtime = 0) {
  const parts = [];
  const typeFlag = { file: '0', link: '1', symlink: '2', dir: '5' };
  for (const e of entries) {
    const data = e.type === 'file' ? e.data : Buffer.alloc(0);
    const linkname = e.linkname ?? '';
    // Names over 100 bytes travel in a pax extended header ('x') before the entry.
    const pax = [!fits(e.name) && paxRecord('path', e.name), !fits(linkname) && paxRecord('linkpath', linkname)].filter(Boolean).join('');
    if (pax) {
      const body = Buffer.from(pax);
      parts.push(header({ name: 'PaxHeader', mode: 0o644, size: body.length, mtime, type: 'x' }), body, pad(body.length));
    }
    const short = (s) => (fits(s) ? s : Buffer.from(s).subarray(0, 100).toString('latin1').replace(/[^\x20-\x7e]/g, '_'));
    parts.push(header({ name: short(e.name), mode: e.mode, size: data.length, mtime, type: typeFlag[e.type], linkname: short(linkname) }));
    if (data.length) parts.push(data, pad(data.length));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------- the layer

/** Every entry under `root`, sorted, as layer paths (`bin/`, `bin/sh`), hard links detected. */
export function rootfsEntries(root) {
  const out = [];
  const seen = new Map(); // dev:ino -> first path, for hard links
  const walk = (dir, rel) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const relPath = rel ? `${rel}/${name}` : name;
      const st = lstatSync(path);
      const mode = st.mode & 0o7777;
      if (st.isDirectory()) {
        out.push({ name: `${relPath}/`, type: 'dir', mode });
        walk(path, relPath);
      } else if (st.isSymbolicLink()) {
        out.push({ name: relPath, type: 'symlink', mode, linkname: readlinkSync(path) });
      } else if (st.isFile()) {
        const id = `${st.dev}:${st.ino}`;
        if (st.nlink > 1 && seen.has(id)) out.push({ name: relPath, type: 'link', mode, linkname: seen.get(id) });
        else {
          seen.set(id, relPath);
          out.push({ name: relPath, type: 'file', mode, data: readFileSync(path) });
        }
      } else {
        throw new Error(`${path}: sockets, FIFOs and device nodes cannot go into the image`);
      }
    }
  };
  walk(root, '');
  return out;
}

// ---------------------------------------------------------------- the image

const sha256 = (buf) => `sha256:${createHash('sha256').update(buf).digest('hex')}`;
const json = (o) => Buffer.from(JSON.stringify(o));

const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
};

/**
 * The archive (a tar Buffer) and the manifest digest for an image of `rootfs` (or of `entries`,
 * the layer's tar entries in order, as `tar()` takes them) with the given image config.
 * `o`: {rootfs | entries, name, entrypoint?, cmd?, env?, workdir?, labels?, user?,
 * exposedPorts?, arch?, os?, created?, gzip?}.
 */
export function buildOciArchive(o) {
  const created = o.created ?? new Date(Number(process.env.SOURCE_DATE_EPOCH ?? 0) * 1000).toISOString();
  const mtime = Math.floor(Date.parse(created) / 1000);
  const layerTar = tar(o.entries ?? rootfsEntries(o.rootfs), mtime);
  const gzip = o.gzip ?? true;
  // level 9 and no header time: the same tree gives the same blob.
  const layer = gzip ? gzipSync(layerTar, { level: 9 }) : layerTar;
  const config = {
    created,
    architecture: o.arch ?? 'amd64',
    os: o.os ?? 'linux',
    config: {
      ...(o.user && { User: o.user }),
      ...(o.exposedPorts?.length && { ExposedPorts: Object.fromEntries(o.exposedPorts.map((p) => [p.includes('/') ? p : `${p}/tcp`, {}])) }),
      ...(o.env?.length && { Env: o.env }),
      ...(o.entrypoint && { Entrypoint: o.entrypoint }),
      ...(o.cmd && { Cmd: o.cmd }),
      ...(o.workdir && { WorkingDir: o.workdir }),
      ...(o.labels && Object.keys(o.labels).length && { Labels: o.labels }),
    },
    rootfs: { type: 'layers', diff_ids: [sha256(layerTar)] },
    history: [{ created, created_by: 'scripts/oci-image.mjs: the root filesystem as one layer' }],
  };
  const configBlob = json(config);
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    config: { mediaType: MEDIA.config, digest: sha256(configBlob), size: configBlob.length },
    layers: [{ mediaType: gzip ? MEDIA.layerGzip : MEDIA.layer, digest: sha256(layer), size: layer.length }],
    ...(o.labels && Object.keys(o.labels).length && { annotations: o.labels }),
  };
  const manifestBlob = json(manifest);
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA.index,
    manifests: [
      {
        mediaType: MEDIA.manifest,
        digest: sha256(manifestBlob),
        size: manifestBlob.length,
        platform: { architecture: config.architecture, os: config.os },
        annotations: { 'io.containerd.image.name': o.name, 'org.opencontainers.image.ref.name': o.name },
      },
    ],
  };
  const blob = (buf) => ({ name: `blobs/sha256/${sha256(buf).slice('sha256:'.length)}`, type: 'file', mode: 0o644, data: buf });
  const archive = tar(
    [
      { name: 'blobs/', type: 'dir', mode: 0o755 },
      { name: 'blobs/sha256/', type: 'dir', mode: 0o755 },
      blob(configBlob),
      blob(layer),
      blob(manifestBlob),
      { name: 'index.json', type: 'file', mode: 0o644, data: json(index) },
      { name: 'oci-layout', type: 'file', mode: 0o644, data: json({ imageLayoutVersion: '1.0.0' }) },
    ],
    mtime,
  );
  return { archive, digest: sha256(manifestBlob) };
}

/**
 * Writes `buf` to `out` beside it and renames it into place (fsynced first): a reader never sees
 * half an archive, and a failed write leaves no temp file.
 */
export function writeArchive(out, buf) {
  const tmp = `${out}.tmp-${process.pid}`;
  try {
    const fd = openSync(tmp, 'w', 0o644);
    try {
      for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, out);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

// ---------------------------------------------------------------- command line

function parseArgs(argv) {
  const o = { env: [], labels: {}, exposedPorts: [] };
  const jsonArray = (flag, v) => {
    let a;
    try {
      a = JSON.parse(v);
    } catch {
      throw new Error(`${flag} takes a JSON array of strings, e.g. '["/pause"]'`);
    }
    if (!Array.isArray(a) || a.some((x) => typeof x !== 'string')) throw new Error(`${flag} takes a JSON array of strings`);
    return a;
  };
  const keyValue = (flag, v) => {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new Error(`${flag} takes KEY=VALUE, got ${JSON.stringify(v)}`);
    return [v.slice(0, eq), v.slice(eq + 1)];
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--no-gzip') {
      o.gzip = false;
      continue;
    }
    const v = argv[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    if (a === '--rootfs') o.rootfs = v;
    else if (a === '--name') o.name = v;
    else if (a === '--out') o.out = v;
    else if (a === '--entrypoint') o.entrypoint = jsonArray(a, v);
    else if (a === '--cmd') o.cmd = jsonArray(a, v);
    else if (a === '--env') o.env.push(keyValue(a, v).join('='));
    else if (a === '--workdir') o.workdir = v;
    else if (a === '--label') {
      const [k, val] = keyValue(a, v);
      o.labels[k] = val;
    } else if (a === '--user') o.user = v;
    else if (a === '--expose') o.exposedPorts.push(v);
    else if (a === '--arch') o.arch = v;
    else if (a === '--os') o.os = v;
    else if (a === '--created') {
      if (Number.isNaN(Date.parse(v))) throw new Error(`--created takes an ISO time, got ${JSON.stringify(v)}`);
      o.created = new Date(v).toISOString();
    } else throw new Error(`unknown argument ${a}`);
  }
  for (const req of ['rootfs', 'name', 'out']) if (!o[req]) throw new Error(`--${req} is required`);
  return o;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  try {
    const o = parseArgs(process.argv.slice(2));
    const { archive, digest } = buildOciArchive(o);
    writeArchive(o.out, archive);
    console.log(digest);
  } catch (err) {
    console.error(`oci-image: ${err instanceof Error ? err.message : err}`);
    process.exit(1);
  }
}
