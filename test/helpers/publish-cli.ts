/**
 * `ferry publish` as a child process for the kill -9 tests: started in a
 * project directory, its exit code (null when it was killed), and a small
 * seeded generator so a failing trial can be run again.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Runs `ferry publish ARGS --output json` in `cwd` (its ferry.yaml); a non-zero exit prints stderr's tail. */
export function publishCli(
  cwd: string,
  args: readonly string[],
): { child: ChildProcess; done: Promise<number | null> } {
  const child = spawn(process.execPath, [CLI, 'publish', ...args, '--output', 'json'], {
    cwd,
    env: { ...process.env, FERRY_CONFIG: join(cwd, 'ferry.yaml') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  child.stdout?.resume();
  const done = new Promise<number | null>((resolve) =>
    child.on('exit', (code, signal) => {
      if (signal === null && code !== 0)
        process.stderr.write(`publish exited ${code}: ${err.slice(-2000)}\n`);
      resolve(signal === null ? code : null);
    }),
  );
  return { child, done };
}
