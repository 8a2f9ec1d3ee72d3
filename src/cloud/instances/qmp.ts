/**
 * A QMP client over a connected stream (QEMU's monitor in control mode):
 * line-delimited JSON, the greeting, qmp_capabilities, then commands
 * answered in order. Events are passed to `onEvent`.
 */
import type { Duplex } from 'node:stream';

interface Waiter {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/** A QMP line longer than this is not QEMU talking: drop the connection. */
const MAX_LINE = 1024 * 1024;

export class QmpClient {
  private buffered = '';
  private readonly waiters: Waiter[] = [];
  private greeted: Waiter | undefined;
  private closed: Error | undefined;

  constructor(
    private readonly stream: Duplex,
    private readonly onEvent: (event: string, data: Record<string, unknown>) => void = () => {},
  ) {
    stream.setEncoding('utf8');
    stream.on('data', (text: string) => this.receive(text));
    stream.on('error', (e: Error) => this.fail(e));
    stream.on('close', () => this.fail(new Error('QMP connection closed')));
  }

  /** Waits for QEMU's greeting and leaves capabilities negotiation mode. */
  async handshake(): Promise<void> {
    await new Promise<unknown>((resolve, reject) => {
      if (this.closed !== undefined) reject(this.closed);
      else this.greeted = { resolve, reject };
    });
    await this.execute('qmp_capabilities');
  }

  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.closed !== undefined) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.stream.write(
        `${JSON.stringify(args === undefined ? { execute: command } : { execute: command, arguments: args })}\n`,
      );
    });
  }

  private receive(text: string): void {
    this.buffered += text;
    if (this.buffered.length > MAX_LINE && !this.buffered.includes('\n')) {
      this.fail(new Error('QMP line too long'));
      this.stream.destroy();
      return;
    }
    let nl = this.buffered.indexOf('\n');
    while (nl >= 0) {
      const line = this.buffered.slice(0, nl).trim();
      this.buffered = this.buffered.slice(nl + 1);
      if (line !== '') this.message(line);
      nl = this.buffered.indexOf('\n');
    }
  }

  private message(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if ('QMP' in msg) {
      this.greeted?.resolve(msg);
      this.greeted = undefined;
    } else if (typeof msg.event === 'string') {
      this.onEvent(msg.event, (msg.data ?? {}) as Record<string, unknown>);
    } else if ('return' in msg || 'error' in msg) {
      const w = this.waiters.shift();
      if (w === undefined) return;
      if ('error' in msg) {
        const e = msg.error as { desc?: string } | undefined;
        w.reject(new Error(`QMP: ${e?.desc ?? 'error'}`));
      } else w.resolve(msg.return);
    }
  }

  private fail(error: Error): void {
    if (this.closed !== undefined) return;
    this.closed = error;
    this.greeted?.reject(error);
    this.greeted = undefined;
    for (const w of this.waiters.splice(0)) w.reject(error);
  }
}
