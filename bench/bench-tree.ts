/**
 * The ~2 GiB root tree the store and render benchmarks share: the corpus's
 * debootstrap root (when scripts/make-debian-root.sh has cached it) plus
 * generated 1 MiB files, and the helpers both time with.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { accessSync, constants, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

export const MiB = 1024 * 1024;
const DROP = '/proc/sys/vm/drop_caches';

export function canDrop(): boolean {
  try {
    accessSync(DROP, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Writes back dirty pages and, when allowed, drops the page cache: every timed step starts cold. */
export function settle(drop: boolean): void {
  spawnSync('sync');
  if (drop) writeFileSync(DROP, '1\n');
}

export function seconds(fn: () => void): number {
  const t = performance.now();
  fn();
  return (performance.now() - t) / 1000;
}

export async function timedAsync<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const r = await fn();
  return [r, (performance.now() - t) / 1000];
}

/** Incompressible, reproducible bytes (AES-CTR of zeros under a fixed key). */
export function noise(length: number, seed: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(seed, 0);
  const c = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), iv);
  return c.update(Buffer.alloc(length));
}

export interface BenchTree {
  readonly tree: string;
  readonly files: number;
  readonly bytes: number;
  /** True when the debootstrap root is part of it. */
  readonly rootfs: boolean;
  readonly extraMib: number;
}

/** Builds the tree at `tree`: the cached Debian root, then `extraMib` generated 1 MiB files and small ones. */
export async function buildBenchTree(tree: string, extraMib: number): Promise<BenchTree> {
  const cache = process.env.FERRY_CORPUS_CACHE ?? join(homedir(), '.cache', 'ferry');
  const root = join(cache, 'debian-12-root');
  let rootfs = false;
  try {
    accessSync(join(root, '.ferry-complete'));
    execFileSync('cp', ['-a', root, tree]);
    rootfs = true;
  } catch {
    await mkdir(tree, { recursive: true });
  }
  for (let i = 0; i < extraMib; i++) {
    const d = join(tree, 'srv', 'data', `d${Math.floor(i / 64)}`);
    if (i % 64 === 0) await mkdir(d, { recursive: true });
    await writeFile(join(d, `blob-${i}`), noise(MiB, i));
    if (i % 4 === 0) await writeFile(join(d, `small-${i}.txt`), `file ${i}\n`.repeat(40));
  }
  const files = Number(
    execFileSync('sh', ['-c', `find ${tree} -type f | wc -l`], { encoding: 'utf8' }).trim(),
  );
  const bytes = Number(execFileSync('du', ['-sb', tree], { encoding: 'utf8' }).split('\t')[0]);
  return { tree, files, bytes, rootfs, extraMib };
}

/** Rewrites ~1 % of the generated files with other bytes; returns how many and how many bytes. */
export async function changeOnePercent(t: BenchTree): Promise<{ count: number; bytes: number }> {
  const count = Math.max(1, Math.round(t.extraMib / 100));
  let bytes = 0;
  for (let k = 0; k < count; k++) {
    const i = Math.floor((k * t.extraMib) / count);
    const b = noise(MiB, 1_000_000 + i);
    await writeFile(join(t.tree, 'srv', 'data', `d${Math.floor(i / 64)}`, `blob-${i}`), b);
    bytes += b.length;
  }
  return { count, bytes };
}

/** The options bench/store and bench/render share. */
export function benchOptions(): {
  extraMib: number;
  dir: string | undefined;
  json: boolean;
  drop: boolean;
  runs: number;
} {
  const { values } = parseArgs({
    options: {
      'extra-mib': { type: 'string', default: '1600' },
      runs: { type: 'string', default: '1' },
      dir: { type: 'string' },
      json: { type: 'boolean' },
      'no-drop-caches': { type: 'boolean' },
    },
  });
  return {
    extraMib: Number(values['extra-mib']),
    dir: values.dir,
    json: values.json === true,
    drop: values['no-drop-caches'] !== true && canDrop(),
    runs: Math.max(1, Math.floor(Number(values.runs) || 1)),
  };
}
