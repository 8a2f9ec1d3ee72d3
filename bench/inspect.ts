/**
 * bench/inspect: `ferry inspect` on a real 2 GiB Debian disk (the corpus's
 * MBR + ext4 + GRUB image, debootstrap bookworm with the cloud kernel) in
 * every format ferry reads, next to libguestfs's virt-inspector on the same
 * files in the same run when it is installed.
 *
 *   npm run bench:inspect [-- --size 2G --runs 3 --dir DIR --json --no-drop-caches]
 *
 * Figures per format: wall time of the whole command (Node start-up
 * included), bytes of the virtual disk inspect read (its own count), and
 * virt-inspector's wall time and the ratio (virt-inspector s / ferry s).
 * The page cache is dropped before every timed run when /proc allows it.
 * Needs the corpus trees (scripts/make-debian-root.sh) and qemu-img.
 */

import { spawnSync } from 'node:child_process';
import { accessSync, constants, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildCorpus, corpusTrees } from '../scripts/inspect-corpus.js';
import { ferryArgs } from './ferry-cli.js';

const DROP_CACHES = '/proc/sys/vm/drop_caches';
const MiB = 1024 * 1024;

interface Row {
  format: string;
  ferrySeconds: number;
  ferryInProcessSeconds: number;
  bytesRead: number;
  distro: string | null;
  kernel: string | null;
  virtInspectorSeconds: number | null;
  virtInspectorDistro: string | null;
  ratio: number | null;
}

function canDropCaches(): boolean {
  try {
    accessSync(DROP_CACHES, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function settle(drop: boolean): void {
  spawnSync('sync');
  if (drop) writeFileSync(DROP_CACHES, '1\n');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

function timed(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): { seconds: number; stdout: string; status: number } {
  const t = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * MiB, env });
  return { seconds: (performance.now() - t) / 1000, stdout: r.stdout ?? '', status: r.status ?? 1 };
}

const haveVirtInspector = spawnSync('sh', ['-c', 'command -v virt-inspector']).status === 0;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: '2G' },
      runs: { type: 'string', default: '3' },
      dir: { type: 'string' },
      json: { type: 'boolean' },
      'no-drop-caches': { type: 'boolean' },
    },
  });
  const found = corpusTrees();
  if ('missing' in found) throw new Error(`bench/inspect: ${found.missing}`);
  const m = /^(\d+)([MG])$/.exec(values.size ?? '2G');
  if (m === null) throw new Error('--size takes e.g. 512M or 2G');
  const size = Number(m[1]) * (m[2] === 'G' ? 1024 : 1) * MiB;
  const runs = Math.max(1, Number(values.runs));
  const drop = values['no-drop-caches'] !== true && canDropCaches();
  const dir = await mkdtemp(join(values.dir ?? tmpdir(), 'ferry-bench-inspect-'));
  try {
    process.stderr.write(`bench: building the corpus (${values.size}) in ${dir}\n`);
    const facts = await buildCorpus(found.trees, dir, { all: true, size });
    const images = facts.filter(
      (f) => f.name === 'mbr-ext4-grub' || f.name.startsWith('mbr-ext4-grub.'),
    );
    const rows: Row[] = [];
    for (const img of images) {
      const ferry: number[] = [];
      const inProcess: number[] = [];
      let bytesRead = 0;
      let distro: string | null = null;
      let kernel: string | null = null;
      for (let i = 0; i < runs; i++) {
        settle(drop);
        const r = timed(process.execPath, ferryArgs('inspect', img.path, '--output', 'json'));
        const report = JSON.parse(r.stdout) as {
          bytesRead: number;
          seconds: number;
          os: { distro: string | null } | null;
          kernels: Array<{ version: string }>;
        };
        ferry.push(r.seconds);
        inProcess.push(report.seconds);
        bytesRead = report.bytesRead;
        distro = report.os?.distro ?? null;
        kernel = report.kernels[0]?.version ?? null;
      }
      let vi: number | null = null;
      let viDistro: string | null = null;
      // virt-inspector has no OVA or VDI-in-OVA reader; it reads the others through qemu.
      if (haveVirtInspector && img.format !== 'ova') {
        const times: number[] = [];
        for (let i = 0; i < runs; i++) {
          settle(drop);
          const qemuFormat = img.format === 'vhd' ? 'vpc' : img.format;
          const r = timed(
            'virt-inspector',
            [`--format=${qemuFormat}`, '-a', img.path, '--no-icon'],
            {
              ...process.env,
              LIBGUESTFS_BACKEND: process.env.LIBGUESTFS_BACKEND ?? 'direct',
              // TCG unless told otherwise: a nested /dev/kvm often aborts qemu.
              LIBGUESTFS_BACKEND_SETTINGS: process.env.LIBGUESTFS_BACKEND_SETTINGS ?? 'force_tcg',
            },
          );
          if (r.status === 0) {
            times.push(r.seconds);
            viDistro = /<distro>([^<]*)<\/distro>/.exec(r.stdout)?.[1] ?? null;
          }
        }
        if (times.length > 0) vi = median(times);
      }
      const f = median(ferry);
      rows.push({
        format: img.format,
        ferrySeconds: f,
        ferryInProcessSeconds: median(inProcess),
        bytesRead,
        distro,
        kernel,
        virtInspectorSeconds: vi,
        virtInspectorDistro: viDistro,
        ratio: vi === null ? null : vi / f,
      });
      process.stderr.write(
        `bench: ${img.format}: ferry ${f.toFixed(3)} s${vi === null ? '' : `, virt-inspector ${vi.toFixed(1)} s`}\n`,
      );
    }
    if (values.json === true) {
      process.stdout.write(`${JSON.stringify({ size, runs, dropCaches: drop, rows }, null, 2)}\n`);
      return;
    }
    const lines = [
      `ferry inspect on a ${values.size} Debian 12 disk (MBR, ext4, GRUB, cloud kernel); median of ${runs}; page cache ${drop ? 'dropped' : 'kept'} before each run`,
      '',
      '| format | ferry s (CLI) | ferry s (in process) | KiB read | distro / kernel | virt-inspector s | ratio |',
      '| --- | --: | --: | --: | --- | --: | --: |',
      ...rows.map(
        (r) =>
          `| ${r.format} | ${r.ferrySeconds.toFixed(3)} | ${r.ferryInProcessSeconds.toFixed(3)} | ${(r.bytesRead / 1024).toFixed(0)} | ${r.distro ?? '-'} / ${r.kernel ?? '-'} | ${r.virtInspectorSeconds === null ? (haveVirtInspector ? 'n/a' : 'not installed') : r.virtInspectorSeconds.toFixed(1)} | ${r.ratio === null ? '-' : `${r.ratio.toFixed(0)}x`} |`,
      ),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
