// The nft goldens (src/nft/testdata/golden-*.json) were made by the builders they test, so they
// prove only that the builders did not change. This file checks them against an oracle the
// builders did not write: each golden is applied to a real kernel in a throwaway netns, the
// hand-written rulesets of src/nft/testdata/kernel/*.nft (nft's own language, each object and
// rule saying what it is for) are loaded into another, and what the two kernels list must be
// the same. Also what the goldens' commands must do when run twice or against a stale element.
// The rules' effect on real traffic is nat-traffic.test.ts's part.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './cni-harness.ts';
import { Cleanup, uniquePrefix } from './helpers.ts';
import { listTable, type NftItem } from './nft-state.ts';

const GOLDEN = join(ROOT, 'src/nft/testdata');
const HAND = join(GOLDEN, 'kernel');
const prefix = uniquePrefix();
const cleanup = new Cleanup();
const scratch = mkdtempSync(join(tmpdir(), `${prefix}-golden-`));
cleanup.add(() => rmSync(scratch, { recursive: true, force: true }));
after(() => cleanup.runAll());

let kernels = 0;

/** A throwaway netns: a kernel of its own to apply rules to and list them from. */
class Kernel {
  readonly ns = `${prefix}-k${kernels++}`;

  constructor() {
    cleanup.addNetns(this.ns);
    const r = spawnSync('ip', ['netns', 'add', this.ns], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  }

  /** Applies golden files' commands as one `nft -j -f` transaction; nft's status and stderr. */
  tryGoldens(...names: string[]): { status: number | null; stderr: string } {
    const cmds = names.flatMap((n) => JSON.parse(readFileSync(join(GOLDEN, n), 'utf8')) as unknown[]);
    const file = join(scratch, `${this.ns}.json`);
    writeFileSync(file, JSON.stringify({ nftables: [{ metainfo: { json_schema_version: 1 } }, ...cmds] }));
    return spawnSync('ip', ['netns', 'exec', this.ns, 'nft', '-j', '-f', file], { encoding: 'utf8' });
  }

  goldens(...names: string[]): this {
    const r = this.tryGoldens(...names);
    assert.equal(r.status, 0, `${names.join(' + ')}: ${r.stderr}`);
    return this;
  }

  /** Loads hand-written nft files, in order. */
  hand(...names: string[]): this {
    for (const n of names) {
      const r = spawnSync('ip', ['netns', 'exec', this.ns, 'nft', '-f', join(HAND, n)], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${n}: ${r.stderr}`);
    }
    return this;
  }

  nft(cmd: string): this {
    const r = spawnSync('ip', ['netns', 'exec', this.ns, 'nft', cmd], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${cmd}: ${r.stderr}`);
    return this;
  }

  /**
   * What the kernel lists for table inet `table`, comparable across netns: without handles
   * (numbered per netns in creation order) and with set elements sorted (a hash set lists in
   * its own order). Rules keep their order: it matters.
   */
  table(table: string): unknown[] {
    const items = listTable(this.ns, table);
    assert.ok(items, `table inet ${table} exists in ${this.ns}`);
    return items.filter((i) => !i.metainfo).map(canonical);
  }
}

function canonical(item: NftItem): unknown {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v === null || typeof v !== 'object') return v;
    return Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'handle').map(([k, x]) => [k, strip(x)]));
  };
  const out = strip(item) as Record<string, any>;
  const s = out.set ?? out.map;
  if (s?.elem) s.elem = [...s.elem].sort((a: unknown, b: unknown) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  return out;
}

/** The two kernels list the same table; on a difference, the items that differ, side by side. */
function assertSameTable(built: Kernel, hand: Kernel, table: string): void {
  const a = built.table(table);
  const b = hand.table(table);
  const differ = Array.from({ length: Math.max(a.length, b.length) }, (_, i) => i)
    .filter((i) => JSON.stringify(a[i]) !== JSON.stringify(b[i]));
  assert.deepEqual(differ.map((i) => a[i]), differ.map((i) => b[i]),
    `table inet ${table}, items ${differ.join(', ')}: as the golden made them (actual) and as written by hand (expected)`);
}

describe('nft goldens against hand-written rulesets, in a real kernel', () => {
  it('golden-network-dual.json makes the network of network-dual.nft', () => {
    assertSameTable(new Kernel().goldens('golden-network-dual.json'), new Kernel().hand('network-dual.nft'), 'pier');
  });

  it('golden-network-v4-nomasq.json makes the network of network-v4-nomasq.nft', () => {
    assertSameTable(new Kernel().goldens('golden-network-v4-nomasq.json'), new Kernel().hand('network-v4-nomasq.nft'), 'pier_test');
  });

  it('golden-attachment-add(-long).json add exactly attachment A\'s and B\'s elements and claims', () => {
    const built = new Kernel().goldens('golden-network-dual.json', 'golden-attachment-add.json', 'golden-attachment-add-long.json');
    const hand = new Kernel().hand('network-dual.nft', 'elements-a.nft', 'claims-a.nft', 'elements-b.nft');
    assertSameTable(built, hand, 'pier');

    // A second ADD of A is refused whole: its host ports are taken (by itself). Nothing changes.
    const again = built.tryGoldens('golden-attachment-add.json');
    assert.notEqual(again.status, 0, 'a second ADD of the same host ports must fail');
    assert.match(again.stderr, /File exists/);
    assertSameTable(built, hand, 'pier');
  });

  it('golden-attachment-add.json takes over a stale element of the same address', () => {
    // An attachment that never got its DEL left 10.88.0.2 under its own name.
    const built = new Kernel().goldens('golden-network-dual.json')
      .nft('add element inet pier podaddrs4_podnet_3aa0627f { 10.88.0.2 comment "ghost/eth0" }')
      .goldens('golden-attachment-add.json');
    assertSameTable(built, new Kernel().hand('network-dual.nft', 'elements-a.nft', 'claims-a.nft'), 'pier');
  });

  it('golden-attachment-del.json removes A\'s listed elements, twice without error, and leaves B and A\'s claims', () => {
    const built = new Kernel().goldens('golden-network-dual.json', 'golden-attachment-add.json', 'golden-attachment-add-long.json');
    built.goldens('golden-attachment-del.json');
    // It lists A's elements as ADD made them, not its claims: those are the recorded DEL's part.
    const hand = new Kernel().hand('network-dual.nft', 'elements-b.nft', 'claims-a.nft');
    assertSameTable(built, hand, 'pier');
    built.goldens('golden-attachment-del.json');
    assertSameTable(built, hand, 'pier');
  });

  it('golden-attachment-del-recorded.json removes A with its claims and leaves B', () => {
    const built = new Kernel().goldens('golden-network-dual.json', 'golden-attachment-add.json', 'golden-attachment-add-long.json');
    built.goldens('golden-attachment-del-recorded.json');
    assertSameTable(built, new Kernel().hand('network-dual.nft', 'elements-b.nft'), 'pier');
  });

  it('golden-attachment-del-recorded.json fails whole when another pod holds A\'s port now', () => {
    // A's entries vanished without its DEL and a new pod took 8080/tcp: the recorded DEL
    // expects A's address as the value, finds another, and must not remove the new holder's.
    const built = new Kernel().goldens('golden-network-dual.json')
      .nft('add element inet pier hostports4_any_addr_podnet_3aa0627f { tcp . 8080 comment "heir/eth0" : 10.88.0.9 }')
      .nft('add element inet pier hostports4_any_port_podnet_3aa0627f { tcp . 8080 comment "heir/eth0" : 80 }');
    const before = built.table('pier');
    const r = built.tryGoldens('golden-attachment-del-recorded.json');
    assert.notEqual(r.status, 0, 'the DEL must fail rather than remove the heir\'s entries');
    assert.match(r.stderr, /File exists/);
    assert.deepEqual(built.table('pier'), before);
  });
});
