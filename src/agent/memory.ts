// Gives the memory of a burst back to the kernel. A list of every Node (500 nodes: a few MB of
// JSON, the typed client's models, the first pass's netlink batch) leaves V8's heap and glibc's
// malloc arenas holding pages the idle agent never uses again: V8 collects its garbage late (the
// agent is mostly idle, so nothing pushes it) and free() keeps the pages of holes between live
// chunks. Measured with 503 nodes (scratch runs of the agent restarted against one API server):
// anonymous RSS 38.3 MB with a full collection alone, 27.5 MB with a collection then
// malloc_trim(0). It runs once per list, never per watch event, and costs one full collection.
import { closeSync, openSync, readFileSync, readSync, realpathSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MADV_DONTNEED, madvise, mallocTrim } from '../netlink/libc.ts';

let gc: (() => void) | undefined;

/** V8's full collection. `--expose-gc` set at run time installs `gc` in contexts made after it. */
function collect(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}

/** A full V8 collection, then malloc_trim; RSS before and after, in MB, for the log. */
export function reclaimMemory(): { rssMbBefore: number; rssMbAfter: number } {
  const before = process.memoryUsage.rss();
  collect();
  mallocTrim();
  const mb = (b: number) => Math.round((b / 1048576) * 10) / 10;
  return { rssMbBefore: mb(before), rssMbAfter: mb(process.memoryUsage.rss()) };
}

const PT_LOAD = 1;
const PT_NOTE = 4;
const ET_DYN = 3;
const PAGE = 4096n;

/**
 * Where the single executable's NODE_SEA_BLOB note (the startup snapshot and the assets, put
 * there by postject) lies in this process, as [start, end) addresses; undefined when `exe` has
 * no such note. `maps` (/proc/self/maps) gives the load address of a position-independent
 * executable.
 */
export function seaBlobRange(exe: string, maps: string): [bigint, bigint] | undefined {
  const fd = openSync(exe, 'r');
  try {
    const read = (pos: number, len: number) => {
      const b = Buffer.alloc(len);
      readSync(fd, b, 0, len, pos);
      return b;
    };
    const eh = read(0, 64);
    if (eh.readUInt32BE(0) !== 0x7f454c46 || eh[4] !== 2 || eh[5] !== 1) return undefined; // ELF64, little-endian
    const phoff = Number(eh.readBigUInt64LE(32));
    const phentsize = eh.readUInt16LE(54);
    const ph = read(phoff, phentsize * eh.readUInt16LE(56));
    let firstLoad: bigint | undefined;
    for (let i = 0; i * phentsize < ph.length; i++) {
      const p = i * phentsize;
      const type = ph.readUInt32LE(p);
      const vaddr = ph.readBigUInt64LE(p + 16);
      if (type === PT_LOAD && firstLoad === undefined) firstLoad = vaddr & ~(PAGE - 1n);
      if (type !== PT_NOTE) continue;
      const offset = Number(ph.readBigUInt64LE(p + 8));
      const size = Number(ph.readBigUInt64LE(p + 32));
      const align = Number(ph.readBigUInt64LE(p + 48)) > 4 ? 8 : 4;
      const up = (n: number) => Math.ceil(n / align) * align;
      for (let pos = offset; pos + 12 <= offset + size; ) {
        const h = read(pos, 12);
        const namesz = h.readUInt32LE(0);
        const descsz = h.readUInt32LE(4);
        const desc = pos + 12 + up(namesz);
        if (read(pos + 12, namesz).toString('latin1') === 'NODE_SEA_BLOB\0') {
          const start = vaddr + BigInt(desc - offset);
          const bias = eh.readUInt16LE(16) === ET_DYN ? loadBias(exe, maps, firstLoad ?? 0n) : 0n;
          return [bias + start, bias + start + BigInt(descsz)];
        }
        pos = desc + up(descsz);
      }
    }
    return undefined;
  } finally {
    closeSync(fd);
  }
}

function loadBias(exe: string, maps: string, firstLoad: bigint): bigint {
  const path = realpathSync(exe);
  for (const line of maps.split('\n')) {
    const [range, , offset, , , file] = line.split(/\s+/);
    if (file === path && BigInt(`0x${offset}`) === 0n) return BigInt(`0x${range.split('-')[0]}`) - firstLoad;
  }
  throw new Error(`${path} is not mapped`);
}

/**
 * Drops this process's pages of the single executable's SEA blob; its size in MB (0 when not a
 * SEA). Node copies the startup snapshot out of the blob as it starts, and `pier agent` copies
 * its bundle out of it (an asset) before it runs, so the ~8.5 MB of clean file pages touched
 * then are never read again, yet they stayed in the agent's RSS for its whole life. They stay in
 * the page cache, for the next process; should anything read them again, it faults them back.
 */
export function releaseSeaBlobPages(): number {
  const range = seaBlobRange('/proc/self/exe', readFileSync('/proc/self/maps', 'utf8'));
  if (!range) return 0;
  // Whole pages inside the blob only: the pages it shares with other data stay.
  const start = (range[0] + PAGE - 1n) & ~(PAGE - 1n);
  const end = range[1] & ~(PAGE - 1n);
  if (end <= start) return 0;
  madvise(start, end - start, MADV_DONTNEED);
  return Math.round(Number(end - start) / 104857.6) / 10;
}
