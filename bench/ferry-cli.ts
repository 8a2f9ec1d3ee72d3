/**
 * How the benchmarks run the ferry CLI: `node` with the flags of the CLI's
 * own `#!/usr/bin/env -S node ...` line (V8 heap sizing), then the built
 * entry point, so that a benchmark measures the CLI as `npx ferry` runs it.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const FERRY_CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

/** The node flags on the CLI's shebang line. */
export function cliNodeArgs(): string[] {
  const first = readFileSync(FERRY_CLI, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\S*env -S node(.*)$/.exec(first);
  return m === null ? [] : (m[1] ?? '').split(' ').filter((a) => a !== '');
}

/** The argument list for `process.execPath` that runs `ferry ARGS...`. */
export function ferryArgs(...args: string[]): string[] {
  return [...cliNodeArgs(), FERRY_CLI, ...args];
}
