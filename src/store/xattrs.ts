import { nativeBinding } from '../disk/seek-data.js';
import { FerryError } from '../errors/index.js';
import { MANIFEST_LIMITS } from './manifest.js';

/** True when this build can read and write extended attributes (the native binding). */
export function xattrsSupported(): boolean {
  const b = nativeBinding();
  return b?.listXattrs !== undefined && b.setXattr !== undefined;
}

/**
 * A path's extended attributes as name -> base64 value, without following a
 * symlink; undefined when it has none or the filesystem cannot hold them.
 */
export function readXattrs(path: string): Record<string, string> | undefined {
  const b = nativeBinding();
  if (b?.listXattrs === undefined) return undefined;
  let list: Array<[string, Buffer]> | null;
  try {
    list = b.listXattrs(path);
  } catch (error) {
    throw new FerryError(
      'FERRY_IO',
      `Cannot read the extended attributes of ${path}: ${(error as Error).message}`,
      {
        details: { path, errno: (error as { code?: string }).code ?? 'EIO' },
        cause: error,
      },
    );
  }
  if (list === null || list.length === 0) return undefined;
  if (list.length > MANIFEST_LIMITS.maxXattrs) {
    throw new FerryError(
      'FERRY_STORE_SOURCE_UNSUPPORTED',
      `Cannot ingest ${path}: over ${MANIFEST_LIMITS.maxXattrs} extended attributes`,
    );
  }
  const out: Record<string, string> = {};
  for (const [name, value] of list.sort((x, y) => (x[0] < y[0] ? -1 : 1)))
    out[name] = value.toString('base64');
  return out;
}

/** Sets the given attributes; returns the names the kernel refused (e.g. trusted.* without root). */
export function writeXattrs(path: string, xattrs: Readonly<Record<string, string>>): string[] {
  const b = nativeBinding();
  const names = Object.keys(xattrs);
  if (b?.setXattr === undefined) return names;
  const refused: string[] = [];
  for (const name of names) {
    try {
      b.setXattr(path, name, Buffer.from(xattrs[name]!, 'base64'));
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EACCES') refused.push(name);
      else
        throw new FerryError(
          'FERRY_IO',
          `Cannot set ${name} on ${path}: ${(error as Error).message}`,
          { cause: error },
        );
    }
  }
  return refused;
}
