/**
 * `ferry publish` as a child process for the kill -9 tests: started in a
 * project directory, its exit code (null when it was killed), a small
 * seeded generator so a failing trial can be run again, and the trials
 * themselves (killAndResume).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadRuns } from '../../src/publish/index.js';

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

/**
 * `trials` publishes of `ref` in the project at `dir`, each after a change
 * to the tree's build-info file (a new revision) and each killed with
 * SIGKILL after a random delay in [minMs, minMs + spreadMs), the range
 * narrowed to the length of a publish that finished first. A killed one is
 * resumed, half the time by a bare `ferry publish` when the kill left an
 * unfinished run, else by the same command. Every publish that was not
 * killed, and every resume, must exit 0; at least min(trials, 3) must have
 * been killed, and in the end no run in `runs` may be unfinished or
 * aborted. Returns how many were killed.
 */
export async function killAndResume(options: {
  readonly dir: string;
  readonly tree: string;
  readonly runs: string;
  readonly ref: string;
  readonly trials: number;
  readonly seed: number;
  readonly minMs: number;
  readonly spreadMs: number;
}): Promise<number> {
  const { dir, ref } = options;
  const next = seeded(options.seed);
  let killed = 0;
  // The kill lands in [lo, hi): hi shrinks to the length of a publish that
  // finished before its kill, so that on a fast machine the kills still fall
  // inside a publish instead of after it.
  let hi = options.minMs + options.spreadMs;
  for (let trial = 0; trial < options.trials; trial++) {
    await writeFile(join(options.tree, 'var/lib/ferry-demo/build-info'), `build: ${trial}\n`);
    const began = performance.now();
    const run = publishCli(dir, [ref]);
    const lo = Math.min(options.minMs, hi / 2);
    const delay = Math.floor(lo + next() * (hi - lo));
    const timer = setTimeout(() => run.child.kill('SIGKILL'), delay);
    const code = await run.done;
    clearTimeout(timer);
    if (code !== null) hi = Math.min(hi, performance.now() - began);
    if (code === null) {
      killed++;
      const bare =
        trial % 2 === 1 && (await loadRuns(options.runs)).some((r) => r.outcome === 'unfinished');
      assert.equal(
        await publishCli(dir, bare ? [] : [ref]).done,
        0,
        `trial ${trial}: the resume failed (killed after ${delay} ms)`,
      );
      if (bare) assert.equal(await publishCli(dir, [ref]).done, 0);
    } else assert.equal(code, 0, `trial ${trial} failed`);
  }
  const trials = options.trials;
  assert.ok(killed >= Math.min(trials, 3), `only ${killed} of ${trials} runs were killed`);
  const runs = await loadRuns(options.runs);
  assert.ok(runs.every((r) => r.outcome !== 'unfinished' && r.outcome !== 'aborted'));
  return killed;
}
