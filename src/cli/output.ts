import { FerryError, isFerryError } from '../errors/index.js';

export type OutputMode = 'human' | 'json';

/** Exit codes: 0 success, 1 failure (or "different" for compare), 2 usage error. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

export function parseOutputMode(value: string | undefined): OutputMode {
  if (value === undefined || value === 'human' || value === 'text') return 'human';
  if (value === 'json') return 'json';
  throw new FerryError('FERRY_USAGE', `Cannot use --output ${value}: choose human or json`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Prints an error (human text on stderr, or a JSON object on stdout) and returns the exit code. */
export function reportError(error: unknown, mode: OutputMode): number {
  const fe = isFerryError(error)
    ? error
    : new FerryError(
        'FERRY_INTERNAL',
        `Cannot continue: ${error instanceof Error ? error.message : String(error)}`,
        {
          cause: error,
        },
      );
  if (mode === 'json') printJson({ error: fe.toJSON() });
  else {
    process.stderr.write(`ferry: ${fe.message} [${fe.code}]\n`);
    if (fe.hint !== undefined) process.stderr.write(`hint: ${fe.hint}\n`);
    if (fe.code === 'FERRY_INTERNAL' && error instanceof Error && error.stack !== undefined) {
      process.stderr.write(`${error.stack}\n`);
    }
  }
  return fe.code === 'FERRY_USAGE' ? EXIT.usage : EXIT.failure;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[i]}`;
}
