import { spawn, spawnSync } from 'node:child_process';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

/** Why boot tests cannot run here, or null. */
export function bootTestsMissing(): string | null {
  if (spawnSync('sh', ['-c', 'command -v qemu-system-x86_64']).status !== 0)
    return 'qemu-system-x86_64 missing';
  if (spawnSync('sh', ['-c', `test -r ${OVMF_CODE} && test -r ${OVMF_VARS}`]).status !== 0)
    return 'OVMF (package ovmf) missing';
  return null;
}

/**
 * Boots a raw disk under QEMU (TCG: no KVM needed) with SeaBIOS or OVMF and
 * resolves with the serial console once `until` matches it, or rejects with
 * the console so far after `timeoutMs`. The disk is opened read-only
 * (snapshot=on): the guest's writes never reach the file.
 */
export async function bootAndWatch(
  disk: string,
  firmware: 'bios' | 'uefi',
  until: RegExp,
  scratch: string,
  timeoutMs = 240_000,
): Promise<string> {
  const args = [
    '-m',
    '1024',
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
    const vars = join(scratch, `vars-${process.pid}-${Date.now()}.fd`);
    await copyFile(OVMF_VARS, vars);
    args.push(
      '-drive',
      `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
      '-drive',
      `if=pflash,format=raw,unit=1,file=${vars}`,
    );
  }
  args.push('-drive', `file=${disk},format=raw,if=virtio,snapshot=on`);
  const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let console = '';
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `no match for ${until} within ${timeoutMs} ms; console:\n${console.slice(-3000)}`,
        ),
      );
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => {
      console += d.toString('latin1');
      if (until.test(console)) {
        clearTimeout(timer);
        child.kill('SIGKILL');
        resolve(console);
      }
    });
    child.stderr.on('data', (d: Buffer) => {
      console += d.toString('latin1');
    });
    child.on('exit', () => {
      clearTimeout(timer);
      if (until.test(console)) resolve(console);
      else
        reject(
          new Error(`QEMU exited before ${until} appeared; console:\n${console.slice(-3000)}`),
        );
    });
  });
}
