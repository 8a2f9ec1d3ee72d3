import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { FerryError } from '../errors/index.js';
import { MapReader } from './schema-reader.js';
import { NAME_PATTERN, parseStream, STREAM_KEYS, type StreamConfig } from './stream-config.js';
import { parseTarget, type TargetConfig } from './target-config.js';
import { configInvalid, parseYamlTree, type YamlEntry } from './yaml-tree.js';

/** ferry.yaml: the store, the publish state directory, streams and targets (docs/publish.md). */
export interface FerryConfig {
  /** Where the file was read from, or null when there is none. */
  readonly path: string | null;
  /** A directory (resolved against the file's directory) or a URL (http(s)://, s3://). */
  readonly store?: string;
  /** The publish state directory, resolved: default `.ferry` beside ferry.yaml (or in cwd without one). */
  readonly state: string;
  /** In file order. */
  readonly streams: readonly StreamConfig[];
  /** In file order. */
  readonly targets: readonly TargetConfig[];
}

const KNOWN = ['store', 'state', 'streams', 'targets'] as const;
const MAX_BYTES = 1024 * 1024;
export const MAX_STREAMS = 64;
export const MAX_TARGETS = 64;
export const STATE_DIR = '.ferry';

function location(value: string, baseDir: string, urls: boolean): string {
  if (urls && /^(https?|s3):\/\//.test(value)) return value;
  return isAbsolute(value) ? value : resolve(baseDir, value);
}

function named(map: MapReader, what: string, max: number): YamlEntry[] {
  const entries = map.entries();
  if (entries.length > max)
    throw map.fail(map.line, `${map.name} has ${entries.length} entries; at most ${max}`);
  for (const e of entries)
    if (!NAME_PATTERN.test(e.key))
      throw map.fail(
        e.keyLine,
        `${what} name "${e.key.slice(0, 70)}" must be lowercase letters, digits, ".", "_" and "-", starting with a letter or digit, at most 63`,
      );
  return entries;
}

/**
 * Checks `text` (the contents of `path`) against the schema and resolves
 * paths against the file's directory. Every error is FERRY_CONFIG_INVALID
 * "Cannot read PATH:LINE: reason"; unknown keys are refused at every level
 * (a typo must not silently fall back to a default).
 */
export function parseConfig(text: string, path: string): FerryConfig {
  const baseDir = dirname(resolve(path));
  const empty: FerryConfig = { path, state: join(baseDir, STATE_DIR), streams: [], targets: [] };
  const root = parseYamlTree(text, path);
  if (root === null || (root.kind === 'scalar' && root.value === null)) return empty;
  if (root.kind !== 'map') throw configInvalid(path, root.line, 'the top level must be a mapping');
  const top = new MapReader(path, root, '', 1, KNOWN);
  const store = top.string('store', 'a directory or a URL');
  const state = top.string('state', 'a directory');
  const streamsMap = top.map('streams', null);
  const streams =
    streamsMap === undefined
      ? []
      : named(streamsMap, 'stream', MAX_STREAMS).map((e) =>
          parseStream(
            new MapReader(
              path,
              // `web:` with nothing after it is a stream with every default.
              e.value.kind === 'scalar' && e.value.value === null
                ? { kind: 'map', line: e.keyLine, entries: [] }
                : e.value,
              streamsMap.nameOf(e.key),
              e.keyLine,
              STREAM_KEYS,
            ),
            e.key,
            baseDir,
          ),
        );
  const streamNames = streams.map((s) => s.name);
  const targetsMap = top.map('targets', null);
  const targets =
    targetsMap === undefined
      ? []
      : named(targetsMap, 'target', MAX_TARGETS).map((e) => parseTarget(path, e, streamNames));
  return {
    path,
    ...(store === undefined ? {} : { store: location(store, baseDir, true) }),
    state: state === undefined ? empty.state : location(state, baseDir, false),
    streams,
    targets,
  };
}

/**
 * Reads ferry.yaml: $FERRY_CONFIG, else ./ferry.yaml; none is fine (no
 * streams, no targets, state in `cwd/.ferry`).
 */
export async function loadConfig(cwd: string = process.cwd()): Promise<FerryConfig> {
  const path = process.env.FERRY_CONFIG ?? join(cwd, 'ferry.yaml');
  let text: string;
  try {
    const buf = await readFile(path);
    if (buf.length > MAX_BYTES) throw configInvalid(path, null, 'the file is over 1 MiB');
    text = buf.toString('utf8');
  } catch (error) {
    if (error instanceof FerryError) throw error;
    if (
      (error as NodeJS.ErrnoException).code === 'ENOENT' &&
      process.env.FERRY_CONFIG === undefined
    )
      return { path: null, state: resolve(cwd, STATE_DIR), streams: [], targets: [] };
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `Cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
      { cause: error, details: { path, line: null } },
    );
  }
  return parseConfig(text, path);
}
