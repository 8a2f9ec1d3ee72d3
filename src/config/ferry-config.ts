import { readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { FerryError } from '../errors/index.js';

/** What ferry.yaml configures today: the store. Publishing adds streams and targets. */
export interface FerryConfig {
  /** Where the file was read from, or null when there is none. */
  readonly path: string | null;
  /** A directory (resolved against the file's directory) or a URL (http(s)://, s3://). */
  readonly store?: string;
}

const KNOWN = new Set(['store', 'streams', 'targets']);
const MAX_BYTES = 1024 * 1024;

function invalid(path: string, line: number | null, reason: string): FerryError {
  return new FerryError(
    'FERRY_CONFIG_INVALID',
    `Cannot read ${path}${line === null ? '' : `:${line}`}: ${reason}`,
    {
      details: { path, line },
    },
  );
}

/**
 * Reads ferry.yaml: $FERRY_CONFIG, else ./ferry.yaml; none is fine. Errors
 * name the line. Unknown top-level keys are refused (a typo must not silently
 * fall back to defaults).
 */
export async function loadConfig(cwd: string = process.cwd()): Promise<FerryConfig> {
  const path = process.env.FERRY_CONFIG ?? join(cwd, 'ferry.yaml');
  let text: string;
  try {
    const buf = await readFile(path);
    if (buf.length > MAX_BYTES) throw invalid(path, null, 'the file is over 1 MiB');
    text = buf.toString('utf8');
  } catch (error) {
    if (error instanceof FerryError) throw error;
    if (
      (error as NodeJS.ErrnoException).code === 'ENOENT' &&
      process.env.FERRY_CONFIG === undefined
    )
      return { path: null };
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `Cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
      { cause: error },
    );
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  const lineOf = (offset: number | undefined) =>
    offset === undefined ? null : lines.linePos(offset).line;
  const first = doc.errors[0];
  if (first !== undefined)
    throw invalid(path, lineOf(first.pos[0]), first.message.split('\n')[0] ?? 'malformed YAML');
  const root = doc.contents;
  if (root === null) return { path };
  const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalid(path, 1, 'the top level must be a mapping');
  const range = (key: string): number | null => {
    const pair = (
      doc.contents as {
        items?: Array<{ key?: { value?: unknown; range?: [number, number, number] } }>;
      }
    ).items?.find((p) => p.key?.value === key);
    return lineOf(pair?.key?.range?.[0]);
  };
  for (const key of Object.keys(value))
    if (!KNOWN.has(key)) throw invalid(path, range(key), `unknown key "${key}"`);
  const store = (value as { store?: unknown }).store;
  if (store === undefined) return { path };
  if (typeof store !== 'string' || store === '')
    throw invalid(path, range('store'), 'store must be a directory or a URL');
  const resolved =
    /^(https?|s3):\/\//.test(store) || isAbsolute(store) ? store : resolve(join(path, '..'), store);
  return { path, store: resolved };
}
