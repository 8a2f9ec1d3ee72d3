/**
 * A recording HTTP proxy for conformance tests: it forwards every request to
 * the endpoint unchanged (headers included, so SigV4 signatures still hold)
 * and keeps each exchange, bodies included, for checking against the
 * service models afterwards. Clients (SDK, AWS CLI, boto3) point at it.
 */
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type Server,
} from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Exchange {
  readonly method: string;
  /** The raw request target: path and query, still percent-encoded. */
  readonly url: string;
  readonly requestHeaders: IncomingHttpHeaders;
  readonly requestBody: Buffer;
  readonly status: number;
  readonly responseHeaders: IncomingHttpHeaders;
  readonly responseBody: Buffer;
}

/** Bodies larger than this are not kept (blocks and objects: only their size matters here). */
const KEEP_BYTES = 1024 * 1024;

function collect(stream: NodeJS.ReadableStream, forward: (chunk: Buffer) => void): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      forward(chunk);
      size += chunk.length;
      if (size <= KEEP_BYTES) chunks.push(chunk);
    });
    stream.once('end', () => resolve(size <= KEEP_BYTES ? Buffer.concat(chunks) : Buffer.alloc(0)));
    stream.once('error', reject);
  });
}

export class RecordingProxy {
  readonly exchanges: Exchange[] = [];
  private readonly server: Server;
  private readonly target: URL;

  constructor(endpoint: string) {
    this.target = new URL(endpoint);
    this.server = createServer((req, res) => {
      const upstream = httpRequest(
        {
          host: this.target.hostname,
          port: this.target.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          collect(up, (c) => res.write(c))
            .then((responseBody) => {
              res.end();
              this.exchanges.push({
                method: req.method ?? 'GET',
                url: req.url ?? '/',
                requestHeaders: req.headers,
                requestBody,
                status: up.statusCode ?? 0,
                responseHeaders: up.headers,
                responseBody,
              });
            })
            .catch(() => res.destroy());
        },
      );
      upstream.once('error', () => res.destroy());
      let requestBody: Buffer = Buffer.alloc(0);
      collect(req, (c) => upstream.write(c))
        .then((b) => {
          requestBody = b;
          upstream.end();
        })
        .catch(() => upstream.destroy());
    });
  }

  /** Starts listening on loopback; resolves to the URL clients should use. */
  listen(): Promise<string> {
    return new Promise((resolve) => {
      this.server.listen(0, '127.0.0.1', () => {
        const a = this.server.address() as AddressInfo;
        resolve(`http://127.0.0.1:${a.port}`);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
