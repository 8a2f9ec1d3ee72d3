import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Runs qemu-img with arguments; resolves with stdout, rejects with its stderr. */
export async function qemuImg(...args: string[]): Promise<string> {
  const { stdout } = await run('qemu-img', args, { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** qemu-img compare exit status: 0 identical, 1 different. Other statuses throw. */
export async function qemuCompare(
  a: string,
  b: string,
  fa?: string,
  fb?: string,
): Promise<{ identical: boolean; output: string }> {
  const args = ['compare', ...(fa ? ['-f', fa] : []), ...(fb ? ['-F', fb] : []), a, b];
  try {
    const { stdout } = await run('qemu-img', args);
    return { identical: true, output: stdout };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    if (e.code === 1) return { identical: false, output: e.stdout ?? '' };
    throw new Error(`qemu-img compare failed: ${e.stderr ?? String(error)}`);
  }
}

/** qemu-img check; resolves true when the image is clean. */
export async function qemuCheck(
  path: string,
  format: string,
): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout } = await run('qemu-img', ['check', '-f', format, path]);
    return { ok: true, output: stdout };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

export async function qemuInfo(path: string, format?: string): Promise<Record<string, unknown>> {
  return JSON.parse(
    await qemuImg('info', '--output=json', ...(format ? ['-f', format] : []), path),
  ) as Record<string, unknown>;
}

/** A temporary directory removed after `fn`, pass or fail. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-test-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
