/**
 * The real S3 server the S3 tests share: OpenStack Swift with s3api on
 * loopback, started by scripts/swift-s3.sh (which lets parallel test files
 * take turns starting it; $FERRY_SWIFT_PORT and $FERRY_SWIFT_DIR pick
 * another instance). Plus a client whose requests a test can stall, fail,
 * damage or cut off, to stand in for a network fault or a killed process.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

export const haveSwift =
  spawnSync('sh', ['-c', 'command -v swift-proxy-server && command -v memcached']).status === 0;
export const swiftSkip = haveSwift
  ? false
  : 'OpenStack Swift (swift-proxy, memcached) not installed';

const SCRIPT = fileURLToPath(new URL('../../../scripts/swift-s3.sh', import.meta.url));
export const credentials = { accessKeyId: 'test:tester', secretAccessKey: 'testing' };

export interface Swift {
  readonly endpoint: string;
  /** A plain client, for looking at the bucket behind the store's back. */
  readonly client: S3Client;
  newBucket(): Promise<string>;
}

export function startSwift(): Swift {
  const endpoint = execFileSync('bash', [SCRIPT, 'start'], { encoding: 'utf8' }).trim();
  const client = newClient(endpoint);
  return {
    endpoint,
    client,
    async newBucket() {
      const b = `ferry-${randomBytes(6).toString('hex')}`;
      await client.send(new CreateBucketCommand({ Bucket: b }));
      return b;
    },
  };
}

function newClient(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/**
 * Swift stamps LastModified rounded up to the second and its Date header
 * rounded down, so an object is older than a zero grace period by the
 * server's clock only about two seconds after it was written.
 */
export function settle(): Promise<void> {
  return sleep(2100);
}

type Command = string;
type Rule =
  | { kind: 'kill'; command: Command; nth: number; after: boolean }
  | { kind: 'pause'; command: Command; nth: number; gate: Promise<void>; reached: () => void }
  | { kind: 'notImplemented'; command: Command }
  | { kind: 'corrupt'; command: Command; nth: number };

/** The error every request fails with once the "process" is dead. */
export class Killed extends Error {
  override name = 'Killed';
}

/**
 * A client with scripted faults, counted per command name
 * ("DeleteObjectsCommand", "UploadPartCommand"…). After a kill, no request
 * reaches the server any more: what a killed process leaves is what the
 * bucket holds.
 */
export class FaultyClient {
  readonly client: S3Client;
  readonly #rules: Rule[] = [];
  readonly #counts = new Map<Command, number>();
  #dead = false;
  /** Requests of each command in flight now, and the most at once. */
  readonly inFlight = new Map<Command, number>();
  readonly mostInFlight = new Map<Command, number>();

  constructor(endpoint: string) {
    this.client = newClient(endpoint);
    this.client.middlewareStack.add(
      (next, context) => async (args) => {
        const command = context.commandName ?? '?';
        if (this.#dead) throw new Killed('the process was killed');
        const n = (this.#counts.get(command) ?? 0) + 1;
        this.#counts.set(command, n);
        let killAfter = false;
        for (const rule of this.#rules) {
          if (rule.command !== command) continue;
          if (rule.kind === 'notImplemented') {
            throw Object.assign(new Error('not implemented here'), {
              name: 'NotImplemented',
              $metadata: { httpStatusCode: 501 },
            });
          }
          if (rule.nth !== n) continue;
          if (rule.kind === 'kill') {
            if (rule.after) killAfter = true;
            else {
              this.#dead = true;
              throw new Killed(`killed before ${command} #${n}`);
            }
          } else if (rule.kind === 'pause') {
            rule.reached();
            await rule.gate;
          } else {
            const request = args.request as { body?: unknown };
            if (Buffer.isBuffer(request.body)) {
              const damaged = Buffer.from(request.body);
              damaged[damaged.length >> 1]! ^= 0xff;
              request.body = damaged;
            }
          }
        }
        this.inFlight.set(command, (this.inFlight.get(command) ?? 0) + 1);
        this.mostInFlight.set(
          command,
          Math.max(this.mostInFlight.get(command) ?? 0, this.inFlight.get(command)!),
        );
        try {
          const result = await next(args);
          if (killAfter) {
            this.#dead = true;
            throw new Killed(`killed after ${command} #${n}`);
          }
          return result;
        } finally {
          this.inFlight.set(command, this.inFlight.get(command)! - 1);
        }
      },
      { step: 'build', name: 'testFaults' },
    );
  }

  /** The process dies just before (or just after) the nth request of `command`. */
  killAt(command: Command, nth: number, when: 'before' | 'after' = 'before'): this {
    this.#rules.push({ kind: 'kill', command, nth, after: when === 'after' });
    return this;
  }

  /** Holds the nth request of `command` until `release()`; `reached` resolves when it is held. */
  pauseAt(command: Command, nth: number): { reached: Promise<void>; release: () => void } {
    let release!: () => void;
    let reached!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const reachedP = new Promise<void>((r) => {
      reached = r;
    });
    this.#rules.push({ kind: 'pause', command, nth, gate, reached });
    return { reached: reachedP, release };
  }

  /** The server answers every `command` with 501 NotImplemented. */
  refuse(command: Command): this {
    this.#rules.push({ kind: 'notImplemented', command });
    return this;
  }

  /** Flips a byte of the nth request's body after the caller computed its checksums. */
  damage(command: Command, nth: number): this {
    this.#rules.push({ kind: 'corrupt', command, nth });
    return this;
  }

  count(command: Command): number {
    return this.#counts.get(command) ?? 0;
  }
}
