import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { Decompress } from 'fzstd';
import { FerryError } from '../errors/index.js';

export type Compression = 'none' | 'gzip' | 'xz' | 'zstd';

/** Output may exceed input by this ratio only while under BOMB_FLOOR bytes. */
export const MAX_RATIO = 1000;
const BOMB_FLOOR = 256 * 1024 * 1024;

/** The compression of a file, from its first bytes (never from its name). */
export async function detectCompression(path: string): Promise<Compression> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(6);
    await fh.read(head, 0, 6, 0);
    if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
    if (head.equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
    if (head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
    return 'none';
  } finally {
    await fh.close();
  }
}

/** A decompressor's failure as FERRY_DECOMPRESS (ferry's own errors pass through). */
function decompressFailure(path: string, error: unknown): FerryError {
  if (error instanceof FerryError) return error;
  return new FerryError(
    'FERRY_DECOMPRESS',
    `Cannot decompress ${path}: ${(error as Error).message}`,
    {
      cause: error,
    },
  );
}

function bomb(inBytes: number, outBytes: number): FerryError {
  return new FerryError(
    'FERRY_DECOMPRESS',
    `Cannot decompress the archive: ${inBytes} bytes inflate past ${outBytes} (over ${MAX_RATIO}:1; a decompression bomb?)`,
    { details: { inBytes, outBytes } },
  );
}

/**
 * The decompressed bytes of `path`, streamed, with a bomb guard: once the
 * output passes 256 MiB it may not exceed 1000 x the compressed bytes read.
 * gzip through zlib, zstd through fzstd, xz through Debian's xz(1).
 */
export async function* decompressedStream(
  path: string,
  signal?: AbortSignal,
): AsyncGenerator<Buffer> {
  const kind = await detectCompression(path);
  let inBytes = 0;
  let outBytes = 0;
  const counted = async function* (): AsyncGenerator<Buffer> {
    for await (const c of createReadStream(path, {
      highWaterMark: 1024 * 1024,
      ...(signal ? { signal } : {}),
    })) {
      inBytes += (c as Buffer).length;
      yield c as Buffer;
    }
  };
  const guard = (chunk: Buffer): Buffer => {
    outBytes += chunk.length;
    if (outBytes > BOMB_FLOOR && outBytes > inBytes * MAX_RATIO) throw bomb(inBytes, outBytes);
    return chunk;
  };
  if (kind === 'none') {
    yield* counted();
    return;
  }
  if (kind === 'gzip') {
    const gunzip = createGunzip();
    const feed = (async () => {
      try {
        for await (const c of counted())
          if (!gunzip.write(c)) await new Promise((r) => gunzip.once('drain', r));
        gunzip.end();
      } catch (error) {
        gunzip.destroy(error as Error);
      }
    })();
    try {
      for await (const c of gunzip) yield guard(c as Buffer);
    } catch (error) {
      throw decompressFailure(path, error);
    } finally {
      gunzip.destroy();
      await feed;
    }
    return;
  }
  if (kind === 'zstd') {
    const out: Buffer[] = [];
    const d = new Decompress((data) => {
      out.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    });
    try {
      for await (const c of counted()) {
        d.push(c);
        while (out.length > 0) yield guard(out.shift()!);
      }
      d.push(new Uint8Array(0), true);
      while (out.length > 0) yield guard(out.shift()!);
    } catch (error) {
      throw decompressFailure(path, error);
    }
    return;
  }
  const xz = spawn('xz', ['-dc', '--', path], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(signal ? { signal } : {}),
  });
  let stderr = '';
  xz.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    xz.once('error', reject);
    xz.once('close', resolve);
  });
  exited.catch(() => {});
  // xz reads the file itself: the whole compressed size counts from the start.
  inBytes = (await stat(path)).size;
  try {
    for await (const c of xz.stdout) yield guard(c as Buffer);
  } finally {
    if (xz.exitCode === null) xz.kill();
  }
  const code = await exited.catch((error: unknown) => {
    throw new FerryError(
      'FERRY_DECOMPRESS',
      `Cannot decompress ${path}: xz could not run (${(error as Error).message})`,
      {
        cause: error,
        hint: 'Install xz-utils',
      },
    );
  });
  if (code !== 0)
    throw new FerryError(
      'FERRY_DECOMPRESS',
      `Cannot decompress ${path}: ${stderr.trim() || `xz exited ${code}`}`,
    );
}
