/**
 * What this host can run guests with: qemu-system-x86_64 and qemu-img on
 * PATH, whether KVM works (else TCG), OVMF for UEFI, and setpriv to tie
 * QEMU's life to ferry's.
 *
 * /dev/kvm opening is not enough: under some nested hypervisors it opens
 * and guests then hang in the firmware or the boot loader. So KVM is used
 * only when a probe guest (a boot sector that writes "OK" to COM1) prints
 * under it and QEMU does not warn that the host's KVM lacks CPU features of
 * its baseline model (seen on a host whose KVM then hung real guests).
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdir, rm, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

export interface HostTools {
  /** qemu-system-x86_64, or null: instances are recorded but do not boot. */
  readonly qemu: string | null;
  readonly qemuImg: string | null;
  readonly kvm: boolean;
  /** OVMF code and variable template, or null when UEFI cannot boot here. */
  readonly ovmf: { readonly code: string; readonly vars: string } | null;
  /** util-linux setpriv, to give QEMU a parent-death signal. */
  readonly setpriv: string | null;
}

async function usable(path: string, mode: number): Promise<boolean> {
  try {
    await access(path, mode);
    return true;
  } catch {
    return false;
  }
}

/** The first executable `name` on PATH. */
export async function which(name: string): Promise<string | null> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, name);
    if (await usable(p, constants.X_OK)) return p;
  }
  return null;
}

export async function detectHostTools(
  /** A directory of ferry's own for the KVM probe's disk. */
  scratch?: string,
  overrides: {
    readonly qemu?: string | null;
    readonly kvm?: boolean;
    readonly ovmf?: { readonly code: string; readonly vars: string } | null;
  } = {},
): Promise<HostTools> {
  const qemu = overrides.qemu !== undefined ? overrides.qemu : await which('qemu-system-x86_64');
  const qemuImg = qemu === null ? null : await which('qemu-img');
  const kvm =
    overrides.kvm ??
    (qemu !== null &&
      scratch !== undefined &&
      (await usable('/dev/kvm', constants.R_OK | constants.W_OK)) &&
      (await probeKvm(qemu, scratch)));
  let ovmf = overrides.ovmf !== undefined ? overrides.ovmf : { code: OVMF_CODE, vars: OVMF_VARS };
  if (
    ovmf !== null &&
    !((await usable(ovmf.code, constants.R_OK)) && (await usable(ovmf.vars, constants.R_OK)))
  )
    ovmf = null;
  return {
    // Without qemu-img there is no overlay to boot from, so QEMU alone is of no use.
    qemu: qemuImg === null ? null : qemu,
    qemuImg,
    kvm,
    ovmf,
    setpriv: await which('setpriv'),
  };
}

/** 16-bit code: out 'O' then 'K' to port 0x3f8, then halt forever. */
const PROBE_CODE = [0xba, 0xf8, 0x03, 0xb0, 0x4f, 0xee, 0xb0, 0x4b, 0xee, 0xf4, 0xeb, 0xfd];
const PROBE_MS = 8000;
const probes = new Map<string, Promise<boolean>>();

/** Does a guest run under KVM here? (Asked once per QEMU binary and process.) */
export function probeKvm(qemu: string, scratch: string): Promise<boolean> {
  let p = probes.get(qemu);
  if (p === undefined) {
    p = runProbe(qemu, scratch).catch(() => false);
    probes.set(qemu, p);
  }
  return p;
}

async function runProbe(qemu: string, scratch: string): Promise<boolean> {
  await mkdir(scratch, { recursive: true });
  const disk = join(scratch, `kvm-probe-${process.pid}.img`);
  const sector = Buffer.alloc(512);
  Buffer.from(PROBE_CODE).copy(sector);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  await writeFile(disk, sector);
  try {
    return await new Promise<boolean>((resolve) => {
      const child = spawn(
        qemu,
        [
          '-no-user-config',
          '-nodefaults',
          '-display',
          'none',
          '-m',
          '16',
          '-accel',
          'kvm',
          '-serial',
          'stdio',
          '-drive',
          `file=${disk.replace(/,/g, ',,')},format=raw,if=ide`,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      let err = '';
      child.stderr.setEncoding('latin1');
      child.stderr.on('data', (t: string) => {
        err = (err + t).slice(-4096);
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), PROBE_MS);
      child.stdout.setEncoding('latin1');
      child.stdout.on('data', (t: string) => {
        out += t;
        if (out.includes('OK')) child.kill('SIGKILL');
      });
      child.on('error', () => resolve(false));
      child.on('close', () => {
        clearTimeout(timer);
        resolve(out.includes('OK') && !/doesn't support requested feature/.test(err));
      });
    });
  } finally {
    await rm(disk, { force: true });
  }
}
