import { OutputFile } from '../disk/output-file.js';
import { FerryError } from '../errors/index.js';
import type { Manifest, ManifestEntry } from './manifest.js';
import type { ObjectReader } from './store-reader.js';

const BLOCK = 512;
const TYPEFLAG: Record<ManifestEntry['type'], string> = {
  file: '0',
  dir: '5',
  symlink: '2',
  char: '3',
  block: '4',
  fifo: '6',
};

function octal(block: Buffer, at: number, len: number, value: number): boolean {
  const digits = value.toString(8);
  if (digits.length > len - 1) return false;
  block.write(`${digits.padStart(len - 1, '0')}\0`, at, len, 'latin1');
  return true;
}

/** One pax record: "<len> <key>=<value>\n", where len counts itself. */
function paxRecord(key: string, value: Buffer | string): Buffer {
  const body = Buffer.concat([
    Buffer.from(` ${key}=`),
    Buffer.isBuffer(value) ? value : Buffer.from(value),
    Buffer.from('\n'),
  ]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function header(
  name: string,
  e: Pick<ManifestEntry, 'mode' | 'uid' | 'gid'>,
  size: number,
  mtime: number,
  flag: string,
  linkname = '',
  rdev?: { major: number; minor: number },
): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(name, 0, 100, 'utf8');
  octal(b, 100, 8, e.mode);
  octal(b, 108, 8, e.uid);
  octal(b, 116, 8, e.gid);
  octal(b, 124, 12, size);
  octal(b, 136, 12, mtime);
  b.write(flag, 156, 1, 'latin1');
  b.write(linkname, 157, 100, 'utf8');
  b.write('ustar\0', 257, 'latin1');
  b.write('00', 263, 'latin1');
  if (rdev !== undefined) {
    octal(b, 329, 8, rdev.major);
    octal(b, 337, 8, rdev.minor);
  }
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return b;
}

function pad(n: number): Buffer {
  return Buffer.alloc((BLOCK - (n % BLOCK)) % BLOCK);
}

/**
 * The pax (POSIX.1-2001) members of one entry: an extended header when a
 * field does not fit ustar (long names and link targets, sub-second times,
 * extended attributes, ids or sizes past the octal fields), then the ustar
 * header. GNU tar, bsdtar and ferry's own reader take all of it back.
 */
function entryHeaders(e: ManifestEntry): Buffer[] {
  const name = e.path === '' ? './' : e.type === 'dir' ? `${e.path}/` : e.path;
  const ns = BigInt(e.mtime);
  const seconds = ns / 1_000_000_000n;
  const frac = ns % 1_000_000_000n;
  const linkname = e.link ?? e.target ?? '';
  const size = e.type === 'file' && e.link === undefined ? e.size : 0;
  const records: Buffer[] = [];
  if (Buffer.byteLength(name) > 99) records.push(paxRecord('path', name));
  if (Buffer.byteLength(linkname) > 99) records.push(paxRecord('linkpath', linkname));
  if (frac !== 0n || seconds < 0n || seconds > 0o77777777777n) {
    const f = frac < 0n ? -frac : frac;
    records.push(
      paxRecord('mtime', `${seconds}${f === 0n ? '' : `.${f.toString().padStart(9, '0')}`}`),
    );
  }
  if (e.uid > 0o7777777) records.push(paxRecord('uid', String(e.uid)));
  if (e.gid > 0o7777777) records.push(paxRecord('gid', String(e.gid)));
  if (size > 0o77777777777) records.push(paxRecord('size', String(size)));
  for (const [k, v] of Object.entries(e.xattrs ?? {}))
    records.push(paxRecord(`SCHILY.xattr.${k}`, Buffer.from(v, 'base64')));
  const out: Buffer[] = [];
  const clampedSeconds = Number(
    seconds < 0n ? 0n : seconds > 0o77777777777n ? 0o77777777777n : seconds,
  );
  if (records.length > 0) {
    const data = Buffer.concat(records);
    out.push(
      header(`PaxHeaders/${name.slice(-80)}`, e, data.length, clampedSeconds, 'x'),
      data,
      pad(data.length),
    );
  }
  const ustarSize = size > 0o77777777777 ? 0 : size;
  out.push(
    header(
      name.slice(0, 100),
      { mode: e.mode, uid: Math.min(e.uid, 0o7777777), gid: Math.min(e.gid, 0o7777777) },
      ustarSize,
      clampedSeconds,
      e.link !== undefined ? '1' : TYPEFLAG[e.type],
      linkname.slice(0, 100),
      e.rdev,
    ),
  );
  return out;
}

/**
 * Writes a revision as a pax tarball at `path` (temporary file, renamed into
 * place when complete). Ingesting the tarball gives the same revision id.
 */
export async function exportTarball(
  store: { readonly objects: ObjectReader },
  manifest: Manifest,
  path: string,
  options: { overwrite?: boolean; signal?: AbortSignal } = {},
): Promise<{ entries: number; bytes: number; fileSize: number }> {
  const out = await OutputFile.create(path, { overwrite: options.overwrite });
  let pos = 0;
  let bytes = 0;
  const write = async (bufs: Buffer[]): Promise<void> => {
    const nonEmpty = bufs.filter((b) => b.length > 0);
    if (nonEmpty.length === 0) return;
    await out.writev(nonEmpty, pos);
    for (const b of nonEmpty) pos += b.length;
  };
  try {
    for (const e of manifest.entries) {
      if (options.signal?.aborted)
        throw new FerryError('FERRY_ABORTED', 'Cannot export: the operation was aborted');
      await write(entryHeaders(e));
      if (e.type === 'file' && e.link === undefined) {
        let n = 0;
        for await (const chunk of store.objects.read(e.hash!, options.signal)) {
          await write([chunk]);
          n += chunk.length;
        }
        await write([pad(n)]);
        bytes += n;
      }
    }
    await write([Buffer.alloc(2 * BLOCK)]);
    await out.commit();
  } catch (error) {
    await out.discard();
    throw error;
  }
  return { entries: manifest.entries.length, bytes, fileSize: pos };
}
