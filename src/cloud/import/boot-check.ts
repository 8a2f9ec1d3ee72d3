/**
 * The booting step: the converted disk boots under QEMU (TCG, so no KVM is
 * needed) from a copy written out of the snapshot, opened with snapshot=on
 * so not even that copy changes. "booted" is the serial console showing the
 * guest reached userspace; a guest that does not within the timeout is
 * killed and the task fails, as AWS's FirstBootFailure does, instead of
 * booting forever.
 */
import { spawn, spawnSync } from 'node:child_process';
import { constants } from 'node:fs';
import { copyFile, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '../../errors/index.js';
import { BLOCK_SIZE, type EbsEngine } from '../ebs/index.js';
import type { BootOptions, ImportContext } from './dependencies.js';

/**
 * Userspace, as a serial console shows it: a getty's login prompt,
 * systemd's targets, or the kernel handing over to init.
 */
export const DEFAULT_BOOT_PATTERN =
  /(?:login: |Reached target |Run \/s?bin\/init as init process|Run \/init as init process)/;
export const DEFAULT_BOOT_TIMEOUT_MS = 10 * 60_000;
const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
/** The console kept for the failure report (its tail). */
const CONSOLE_KEEP = 64 * 1024;

export type BootOutcome =
  | { readonly result: 'booted'; readonly console: string }
  | { readonly result: 'timeout'; readonly console: string }
  | { readonly result: 'exited'; readonly console: string; readonly code: number | null }
  | { readonly result: 'skipped'; readonly reason: string };

/** Why the boot cannot run here, or null when it can. */
export function bootUnavailable(options: BootOptions, firmware: 'bios' | 'uefi'): string | null {
  if (options.enabled === false) return 'booting is turned off for this endpoint';
  const qemu = options.qemu ?? 'qemu-system-x86_64';
  if (spawnSync(qemu, ['--version'], { stdio: 'ignore' }).status !== 0)
    return `${qemu} is not installed`;
  if (firmware === 'uefi') {
    const code = options.ovmfCode ?? OVMF_CODE;
    const vars = options.ovmfVars ?? OVMF_VARS;
    const ok = spawnSync('test', ['-r', code, '-a', '-r', vars]).status === 0;
    if (!ok) return `the UEFI firmware (${code}, ${vars}) is not installed`;
  }
  return null;
}

/** Writes the snapshot's blocks into a sparse raw file (the boot disk). */
async function materialise(
  engine: EbsEngine,
  ctx: ImportContext,
  snapshotId: string,
  volumeSize: number,
  path: string,
  signal: AbortSignal,
): Promise<void> {
  const fh = await open(
    path,
    constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW,
    0o600,
  );
  try {
    await fh.truncate(volumeSize * 1024 * 1024 * 1024);
    for (const [index] of await engine.snapshotBlocks(ctx, snapshotId)) {
      if (signal.aborted) throw new FerryError('FERRY_ABORTED', 'The import was cancelled');
      const block = await engine.readBlock(ctx, snapshotId, index);
      await fh.write(block, 0, BLOCK_SIZE, index * BLOCK_SIZE);
    }
  } finally {
    await fh.close();
  }
}

/**
 * Boots the snapshot; `scratch` is a directory of the data directory for the
 * boot disk and the UEFI variable store, removed afterwards.
 */
export async function bootSnapshot(
  engine: EbsEngine,
  ctx: ImportContext,
  snapshot: { readonly id: string; readonly volumeSize: number },
  firmware: 'bios' | 'uefi',
  options: BootOptions,
  scratch: string,
  signal: AbortSignal,
): Promise<BootOutcome> {
  const unavailable = bootUnavailable(options, firmware);
  if (unavailable !== null) return { result: 'skipped', reason: unavailable };
  const disk = join(scratch, 'boot-disk.raw');
  const vars = join(scratch, 'uefi-vars.fd');
  try {
    await materialise(engine, ctx, snapshot.id, snapshot.volumeSize, disk, signal);
    const args = [
      '-nodefaults',
      '-m',
      String(options.memoryMiB ?? 512),
      '-display',
      'none',
      '-no-reboot',
      '-monitor',
      'none',
      '-serial',
      'stdio',
      '-accel',
      'tcg',
    ];
    if (firmware === 'uefi') {
      await copyFile(options.ovmfVars ?? OVMF_VARS, vars);
      args.push(
        '-drive',
        `if=pflash,format=raw,unit=0,readonly=on,file=${options.ovmfCode ?? OVMF_CODE}`,
        '-drive',
        `if=pflash,format=raw,unit=1,file=${vars}`,
      );
    }
    args.push('-drive', `file=${disk},format=raw,if=virtio,snapshot=on`);
    return await watch(options.qemu ?? 'qemu-system-x86_64', args, options, signal);
  } finally {
    await rm(disk, { force: true });
    await rm(vars, { force: true });
  }
}

function watch(
  qemu: string,
  args: string[],
  options: BootOptions,
  signal: AbortSignal,
): Promise<BootOutcome> {
  const pattern = options.pattern ?? DEFAULT_BOOT_PATTERN;
  const timeoutMs = options.timeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS;
  return new Promise<BootOutcome>((resolve, reject) => {
    const child = spawn(qemu, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let console = '';
    let settled = false;
    const finish = (outcome: BootOutcome | Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      child.kill('SIGKILL');
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const onAbort = (): void =>
      finish(new FerryError('FERRY_ABORTED', 'The import was cancelled while booting'));
    const timer = setTimeout(() => finish({ result: 'timeout', console }), timeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort();
    const take = (d: Buffer): void => {
      console = (console + d.toString('latin1')).slice(-CONSOLE_KEEP);
      if (pattern.test(console)) finish({ result: 'booted', console });
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', (error) => finish(error));
    child.on('exit', (code) => {
      if (pattern.test(console)) finish({ result: 'booted', console });
      else finish({ result: 'exited', console, code });
    });
  });
}
