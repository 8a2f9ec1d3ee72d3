/**
 * One file served over HTTP for Glance's web-download import: Glance fetches
 * the image from ferry instead of ferry pushing it, which suits a Glance
 * that reaches the build host faster than the build host reaches the API.
 * The file is served at one unguessable path (128 random bits) and nothing
 * else; the server stops when the import is done.
 */

import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { FerryError } from '../../errors/index.js';

export interface ServedFile {
  /** The URL Glance is given. */
  readonly url: string;
  /** GETs answered so far (Glance fetches once; a retry twice). */
  readonly fetches: () => number;
  close(): Promise<void>;
}

/**
 * Serves `path` on `listen` (host:port; port 0 picks one). `baseUrl`, when
 * given, is how Glance reaches this host (behind NAT or a name), else the
 * listening address.
 */
export async function serveFile(
  path: string,
  options: { readonly listen: { host: string; port: number }; readonly baseUrl?: string },
): Promise<ServedFile> {
  const size = (await stat(path)).size;
  const route = `/ferry/${randomBytes(16).toString('hex')}/${encodeURIComponent(basename(path))}`;
  let fetches = 0;
  const server = createServer((req, res) => {
    if (req.url !== route || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'Content-Length': '0' }).end();
      return;
    }
    res.writeHead(200, {
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(size),
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    fetches++;
    pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), res).catch(() => {
      res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) =>
      reject(
        new FerryError(
          'FERRY_USAGE',
          `Cannot serve the image for web-download on ${options.listen.host}:${options.listen.port}: ${(e as Error).message}`,
          { cause: e },
        ),
      ),
    );
    server.listen(options.listen.port, options.listen.host, resolve);
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const base = (options.baseUrl ?? `http://${host}:${address.port}`).replace(/\/+$/, '');
  return {
    url: `${base}${route}`,
    fetches: () => fetches,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
