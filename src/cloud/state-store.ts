/**
 * The local cloud's state: one JSON document per account, region and service
 * under DATA/state/ACCOUNT/REGION/SERVICE.json (region "global" for what is
 * not regional, such as STS sessions). Every change is written whole and
 * atomically (temporary file, fsync, rename), so a kill -9 leaves either the
 * old document or the new one. Changes to one document are applied one at a
 * time, in order.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '../errors/index.js';
import { writeFileAtomic } from '../store/local-store.js';
import { isRegion } from './regions.js';

export const GLOBAL_REGION = 'global';

export class StateStore {
  readonly root: string;
  private readonly docs = new Map<string, unknown>();
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(root: string) {
    this.root = root;
  }

  private path(account: string, region: string, service: string): string {
    if (
      !/^\d{12}$/.test(account) ||
      !(region === GLOBAL_REGION || isRegion(region)) ||
      !/^[a-z0-9-]+$/.test(service)
    ) {
      throw new FerryError(
        'FERRY_INTERNAL',
        `Cannot locate the state of ${account}/${region}/${service}: not an account, region and service`,
      );
    }
    return join(this.root, account, region, `${service}.json`);
  }

  private async load<T>(path: string, init: () => T): Promise<T> {
    if (this.docs.has(path)) return this.docs.get(path) as T;
    let doc: T;
    try {
      doc = JSON.parse(await readFile(path, 'utf8')) as T;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') doc = init();
      else if (error instanceof SyntaxError)
        throw new FerryError('FERRY_CLOUD_STATE_CORRUPT', `Cannot read ${path}: not JSON`, {
          cause: error,
          hint: 'ferry cloud reset wipes the state',
        });
      else
        throw new FerryError('FERRY_IO', `Cannot read ${path}: ${(error as Error).message}`, {
          cause: error,
        });
    }
    if (!this.docs.has(path)) this.docs.set(path, doc);
    return this.docs.get(path) as T;
  }

  /** The current document (never mutate it: change it through update). */
  async read<T>(
    account: string,
    region: string,
    service: string,
    init: () => T,
  ): Promise<Readonly<T>> {
    const path = this.path(account, region, service);
    await this.queues.get(path);
    return this.load(path, init);
  }

  /**
   * Applies `change` to a copy of the document and stores the copy; when
   * `change` throws, the document stays as it was. Returns what `change` returns.
   */
  update<T, R>(
    account: string,
    region: string,
    service: string,
    init: () => T,
    change: (doc: T) => R,
  ): Promise<R> {
    const path = this.path(account, region, service);
    const run = async (): Promise<R> => {
      const copy = structuredClone(await this.load(path, init));
      const result = change(copy);
      await writeFileAtomic(path, `${JSON.stringify(copy)}\n`);
      this.docs.set(path, copy);
      return result;
    };
    const previous = this.queues.get(path) ?? Promise.resolve();
    const next = previous.then(run, run);
    const tail = next.catch(() => {});
    this.queues.set(path, tail);
    void tail.then(() => {
      if (this.queues.get(path) === tail) this.queues.delete(path);
    });
    return next;
  }
}
