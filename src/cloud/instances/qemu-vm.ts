/**
 * One guest under QEMU: qemu-system-x86_64 with the instance type's vCPUs
 * and memory, KVM when /dev/kvm opens (TCG otherwise, and as KVM's
 * fallback), SeaBIOS or OVMF, the instance's qcow2 overlay as a virtio disk,
 * no display and no network. QMP and the serial port are sockets QEMU
 * inherits (fds 3 and 4), so no socket path is ever made and nothing else
 * can connect to the monitor. Under setpriv QEMU gets SIGKILL when ferry
 * dies, so a killed endpoint leaves no guest running.
 */
import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import type { ConsoleLog } from './console-log.js';
import type { HostTools } from './host-tools.js';
import { QmpClient } from './qmp.js';

export interface VmSpec {
  readonly instanceId: string;
  /** The instance's writable qcow2 overlay (absolute path). */
  readonly disk: string;
  readonly vcpus: number;
  readonly memoryMiB: number;
  /** OVMF code and this instance's own variable store; null: SeaBIOS. */
  readonly uefi: { readonly code: string; readonly vars: string } | null;
}

export interface VmExit {
  readonly code: number | null;
  readonly signal: string | null;
  /** QEMU reported a guest-initiated shutdown (the guest powered off). */
  readonly guestShutdown: boolean;
  /** The end of QEMU's stderr, for the state reason when it fails. */
  readonly stderr: string;
}

const STDERR_KEPT = 4096;
const HANDSHAKE_MS = 30_000;
const QUIT_GRACE_MS = 5_000;

/** A QEMU option value: commas are doubled so a path cannot add options. */
function optionValue(text: string): string {
  return text.replace(/,/g, ',,');
}

/** QEMU's command line for `spec` (without setpriv). */
export function qemuArgs(spec: VmSpec, tools: Pick<HostTools, 'kvm'>): string[] {
  const args = [
    '-name',
    optionValue(spec.instanceId),
    '-no-user-config',
    '-nodefaults',
    '-display',
    'none',
    '-m',
    String(spec.memoryMiB),
    '-smp',
    String(spec.vcpus),
    ...(tools.kvm ? ['-accel', 'kvm', '-accel', 'tcg'] : ['-accel', 'tcg']),
    '-chardev',
    'socket,id=qmp,fd=3,server=off',
    '-mon',
    'chardev=qmp,mode=control',
    '-chardev',
    'socket,id=serial0,fd=4,server=off',
    '-serial',
    'chardev:serial0',
  ];
  if (spec.uefi !== null)
    args.push(
      '-drive',
      `if=pflash,format=raw,unit=0,readonly=on,file=${optionValue(spec.uefi.code)}`,
      '-drive',
      `if=pflash,format=raw,unit=1,file=${optionValue(spec.uefi.vars)}`,
    );
  args.push('-drive', `file=${optionValue(spec.disk)},format=qcow2,if=virtio,cache=writeback`);
  return args;
}

export class QemuVm {
  readonly pid: number;
  /** Resolves once QEMU has exited and its console output is all in. */
  readonly exited: Promise<VmExit>;
  private readonly qmp: QmpClient;
  private done = false;

  private constructor(pid: number, qmp: QmpClient, exited: Promise<VmExit>) {
    this.pid = pid;
    this.qmp = qmp;
    this.exited = exited;
    void exited.then(() => {
      this.done = true;
    });
  }

  get running(): boolean {
    return !this.done;
  }

  /** Starts QEMU and resolves once its monitor answers; rejects with QEMU's stderr. */
  static async start(spec: VmSpec, tools: HostTools, console: ConsoleLog): Promise<QemuVm> {
    if (tools.qemu === null) throw new Error('qemu-system-x86_64 is not installed');
    const args = qemuArgs(spec, tools);
    const [cmd, argv] =
      tools.setpriv === null
        ? [tools.qemu, args]
        : [tools.setpriv, ['--pdeathsig', 'KILL', '--', tools.qemu, ...args]];
    const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
    let stderr = '';
    let guestShutdown = false;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (t: string) => {
      stderr = (stderr + t).slice(-STDERR_KEPT);
    });
    const serial = child.stdio[4] as Socket | null;
    serial?.on('data', (d: Buffer) => console.append(d));
    serial?.on('error', () => {});
    const exited = new Promise<VmExit>((resolve) => {
      child.on('error', (e) => {
        stderr += `\n${e.message}`;
      });
      child.on('close', (code, signal) => {
        resolve({ code, signal, guestShutdown, stderr: stderr.trim() });
      });
    });
    const qmp = new QmpClient(child.stdio[3] as Socket, (event, data) => {
      if (event === 'SHUTDOWN' && data.guest === true) guestShutdown = true;
    });
    if (child.pid === undefined) {
      const e = await exited;
      throw new Error(`QEMU did not start: ${e.stderr}`);
    }
    const vm = new QemuVm(child.pid, qmp, exited);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        qmp.handshake(),
        exited.then((e) => {
          throw new Error(`QEMU exited (${e.signal ?? e.code}): ${e.stderr}`);
        }),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('QEMU did not answer on QMP')), HANDSHAKE_MS);
        }),
      ]);
    } catch (error) {
      vm.kill();
      const e = await exited;
      throw new Error(`${(error as Error).message}${e.stderr === '' ? '' : `: ${e.stderr}`}`);
    } finally {
      clearTimeout(timer);
    }
    return vm;
  }

  /**
   * Stops the guest: ACPI power button (unless `force`), up to `timeoutMs`
   * for the guest to power off, then QMP quit (QEMU flushes the overlay),
   * then SIGKILL.
   */
  async shutdown(timeoutMs: number, force = false): Promise<VmExit> {
    if (!force) {
      await this.qmp.execute('system_powerdown').catch(() => {});
      if (await this.exitsWithin(timeoutMs)) return this.exited;
    }
    await this.qmp.execute('quit').catch(() => {});
    if (await this.exitsWithin(QUIT_GRACE_MS)) return this.exited;
    this.kill();
    return this.exited;
  }

  kill(): void {
    if (this.done) return;
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }

  private async exitsWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      this.exited.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
    clearTimeout(timer);
    return r;
  }
}
