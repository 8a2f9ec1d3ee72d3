/**
 * Keys every target type has, read the same way: `retention` (how many
 * images of a stream to keep) and `streams` (which streams go there).
 */
import { type MapReader, scalarString } from './schema-reader.js';
import { configInvalid } from './yaml-tree.js';

/** As many as a file can define. */
const MAX_STREAMS_PER_TARGET = 64;

/** `retention: {keep: N}`; absent: keep every image. */
export function parseRetention(map: MapReader): { readonly keep: number } | undefined {
  const r = map.map('retention', ['keep']);
  if (r === undefined) return undefined;
  r.required('keep');
  return { keep: r.integer('keep', 1, 1000)! };
}

/** `streams: [...]`, each defined in the file, none twice; absent: every stream. */
export function parseTargetStreams(map: MapReader, streams: readonly string[]): string[] {
  const picked = map.list('streams', MAX_STREAMS_PER_TARGET, (node, n) => {
    const s = scalarString(map.path, node, n, 'a stream name');
    if (!streams.includes(s))
      throw configInvalid(map.path, node.line, `${n}: no stream "${s}" is defined`);
    return s;
  });
  if (picked !== undefined && new Set(picked).size !== picked.length)
    throw map.fail(map.get('streams')!.value.line, `${map.nameOf('streams')} names a stream twice`);
  return picked ?? [...streams];
}
