/**
 * A TCP proxy for upload faults: it forwards bytes between a client and a
 * server unchanged, except on connections whose request line is a PUT of
 * image data (…/file or …/stage), where a rule may
 *
 * - reset: after `afterBytes` of the request body, reset the client's
 *   connection and close the server's (the server sees an upload cut short);
 * - flip: invert one byte of the request body at offset `afterBytes`
 *   (data damaged on the way, with the length intact).
 *
 * Each rule fires on its first `times` matching connections.
 */

import type { AddressInfo } from 'node:net';
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface TcpFault {
  readonly kind: 'reset' | 'flip';
  readonly afterBytes: number;
  readonly times: number;
}

export class TcpFaultProxy {
  readonly #server: Server;
  readonly #target: { host: string; port: number };
  readonly #sockets = new Set<Socket>();
  #faults: Array<TcpFault & { used: number }> = [];
  /** Upload connections seen, and faults injected. */
  uploads = 0;
  injected = 0;

  private constructor(target: URL) {
    this.#target = { host: target.hostname, port: Number(target.port || 80) };
    this.#server = createServer((client) => this.#handle(client));
  }

  static async start(target: string): Promise<TcpFaultProxy> {
    const proxy = new TcpFaultProxy(new URL(target));
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Replaces the rules. */
  inject(...faults: TcpFault[]): this {
    this.#faults = faults.map((f) => ({ ...f, used: 0 }));
    return this;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #handle(client: Socket): void {
    const server = connect(this.#target.port, this.#target.host);
    this.#sockets.add(client);
    this.#sockets.add(server);
    client.once('close', () => this.#sockets.delete(client));
    server.once('close', () => this.#sockets.delete(server));
    client.on('error', () => server.destroy());
    server.on('error', () => client.destroy());
    server.pipe(client);

    let head: Buffer | null = Buffer.alloc(0);
    let fault: (TcpFault & { used: number }) | null = null;
    let body = 0;
    client.on('data', (chunk: Buffer) => {
      let data = chunk;
      if (head !== null) {
        // Until the end of the headers: decide whether this is an upload.
        head = Buffer.concat([head, data]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0 && head.length < 65536) return;
        const line = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
        if (/^PUT \S*\/(file|stage) /.test(line)) {
          this.uploads++;
          fault = this.#faults.find((f) => f.used < f.times) ?? null;
          if (fault !== null) {
            fault.used++;
            this.injected++;
          }
        }
        const bodyStart = end < 0 ? head.length : end + 4;
        server.write(head.subarray(0, bodyStart));
        data = head.subarray(bodyStart);
        head = null;
      }
      if (fault !== null && fault.kind === 'reset' && body + data.length >= fault.afterBytes) {
        const keep = data.subarray(0, Math.max(0, fault.afterBytes - body));
        server.write(keep, () => {
          server.destroy();
          client.resetAndDestroy();
        });
        fault = null;
        client.pause();
        return;
      }
      if (
        fault !== null &&
        fault.kind === 'flip' &&
        body <= fault.afterBytes &&
        fault.afterBytes < body + data.length
      ) {
        data = Buffer.from(data);
        const i = fault.afterBytes - body;
        data[i] = (data[i] ?? 0) ^ 0xff;
        fault = null;
      }
      body += data.length;
      if (data.length > 0 && !server.write(data)) {
        client.pause();
        server.once('drain', () => client.resume());
      }
    });
    client.on('end', () => server.end());
  }
}
