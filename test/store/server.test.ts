import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  hashToken,
  ImageServer,
  ingestDirectory,
  LocalStore,
  localBackend,
  RemoteStore,
  replicate,
} from '../../src/store/index.js';
import { withTempDir } from '../helpers/qemu.js';

const READ = 'read-token-0123456789';
const WRITE = 'write-token-9876543210';

async function tree(dir: string, n: number, changed = -1): Promise<void> {
  await mkdir(join(dir, 'data'), { recursive: true });
  for (let i = 0; i < n; i++) {
    const body = Buffer.alloc(20_000 + i, i % 251);
    if (i === changed) body[0] = 0xee;
    await writeFile(join(dir, 'data', `f${i}`), body);
  }
}

async function withServer(
  dir: string,
  fn: (url: string, store: LocalStore, log: string[]) => Promise<void>,
): Promise<void> {
  const store = await LocalStore.open(join(dir, 'served'));
  const log: string[] = [];
  const server = new ImageServer(store, {
    tokens: [
      { name: 'reader', sha256: hashToken(READ), scope: 'read' },
      { name: 'writer', sha256: hashToken(WRITE), scope: 'write' },
    ],
    log: (l) => log.push(l),
  });
  const url = await server.listen();
  try {
    await fn(url, store, log);
  } finally {
    await server.close();
  }
}

describe('image server and replication', () => {
  it('replicates only what the destination lacks, and a 1 % change sends about 1 % of the bytes', async () => {
    await withTempDir(async (dir) => {
      await withServer(dir, async (url, served) => {
        const local = await LocalStore.open(join(dir, 'local'));
        const v1 = join(dir, 'v1');
        await tree(v1, 100);
        const a = await ingestDirectory(local, v1);
        await local.commit('app', a.revision, v1);
        const remote = new RemoteStore(url, { token: WRITE });
        const first = await replicate(localBackend(local), remote);
        assert.equal(first.revisions, 1);
        assert.equal(first.objects, 101, '100 files and the manifest');
        assert.deepEqual(
          (await served.revisions('app')).map((r) => r.id),
          [a.revision],
        );
        const again = await replicate(localBackend(local), remote);
        assert.deepEqual([again.revisions, again.objects, again.bytes], [0, 0, 0]);
        // One file of a hundred changes.
        const v2 = join(dir, 'v2');
        await tree(v2, 100, 42);
        const b = await ingestDirectory(local, v2);
        await local.commit('app', b.revision, v2);
        const delta = await replicate(localBackend(local), remote);
        const manifestBytes = (await readFile(local.objects.pathOf(b.revision))).length;
        const changedBytes = 20_042;
        assert.equal(delta.objects, 2);
        assert.equal(delta.present, 99);
        assert.ok(
          delta.bytes <= 1.1 * changedBytes + manifestBytes,
          `${delta.bytes} bytes for ${changedBytes} changed`,
        );
        // And back: a fresh store pulls both revisions through the server with a read token.
        const mirror = await LocalStore.open(join(dir, 'mirror'));
        const pulled = await replicate(new RemoteStore(url, { token: READ }), localBackend(mirror));
        assert.equal(pulled.revisions, 2);
        assert.deepEqual(
          (await mirror.revisions('app')).map((r) => r.id),
          [a.revision, b.revision],
        );
        assert.equal(
          (await mirror.revisions('app'))[0]?.created,
          (await local.revisions('app'))[0]?.created,
        );
      });
    });
  });

  it('refuses missing, invalid and read-only tokens, and never logs a token', async () => {
    await withTempDir(async (dir) => {
      await withServer(dir, async (url, _served, log) => {
        const id = 'a'.repeat(128);
        const get = (token?: string) =>
          fetch(
            `${url}/v1/streams`,
            token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } },
          );
        assert.equal((await get()).status, 401);
        assert.equal((await get('wrong-token')).status, 401);
        assert.equal((await get(READ)).status, 200);
        const put = (token: string) =>
          fetch(`${url}/v1/objects/${id}`, {
            method: 'PUT',
            headers: { authorization: `Bearer ${token}` },
            body: 'x',
          });
        assert.equal((await put(READ)).status, 403);
        await assert.rejects(
          new RemoteStore(url, { token: READ }).putObject(
            id,
            1,
            (async function* () {
              yield Buffer.from('x');
            })(),
          ),
          {
            code: 'FERRY_UNAUTHORIZED',
          },
        );
        const all = log.join('\n');
        assert.ok(log.length >= 5);
        for (const secret of [READ, WRITE, 'wrong-token'])
          assert.ok(!all.includes(secret), 'a token reached the log');
        assert.ok(all.includes('reader'), 'the token name is logged instead');
      });
    });
  });

  it('verifies every object written to it and every object read from it', async () => {
    await withTempDir(async (dir) => {
      await withServer(dir, async (url, served) => {
        const remote = new RemoteStore(url, { token: WRITE });
        const data = Buffer.from('the real bytes');
        const { createHash } = await import('node:crypto');
        const id = createHash('sha512').update(data).digest('hex');
        await assert.rejects(
          remote.putObject(
            id,
            5,
            (async function* () {
              yield Buffer.from('lies!');
            })(),
          ),
          {
            code: 'FERRY_STORE_OBJECT_CORRUPT',
          },
        );
        assert.equal(await served.objects.has(id), false, 'nothing stored under a wrong name');
        await remote.putObject(
          id,
          data.length,
          (async function* () {
            yield data;
          })(),
        );
        // Received objects become visible (and durable) at the next commit or read.
        for await (const _ of remote.readObject(id)) {
          // read it once
        }
        assert.equal(await served.objects.has(id), true);
        // Corrupt it on the server's disk: a reader through HTTP must not accept it.
        const path = served.objects.pathOf(id);
        await chmod(path, 0o644);
        await writeFile(path, Buffer.from('the fake bytes'));
        await assert.rejects(
          (async () => {
            for await (const _ of remote.readObject(id)) {
              // read it all
            }
          })(),
          (error: { code?: string }) =>
            error.code === 'FERRY_STORE_OBJECT_CORRUPT' || error.code === 'FERRY_IO',
        );
      });
    });
  });

  it('resumes an interrupted replication without sending anything twice', async () => {
    await withTempDir(async (dir) => {
      await withServer(dir, async (url) => {
        const local = await LocalStore.open(join(dir, 'local'));
        const src = join(dir, 'src');
        await tree(src, 60);
        const a = await ingestDirectory(local, src);
        await local.commit('big', a.revision, src);
        const remote = new RemoteStore(url, { token: WRITE });
        const controller = new AbortController();
        await assert.rejects(
          replicate(localBackend(local), remote, {
            concurrency: 1,
            signal: controller.signal,
            onProgress: (p) => {
              if (p.objects === 20) controller.abort();
            },
          }),
        );
        assert.deepEqual(
          await remote.revisions('big'),
          [],
          'nothing committed before all its objects are there',
        );
        const rest = await replicate(localBackend(local), remote);
        assert.equal(rest.revisions, 1);
        assert.ok(rest.present >= 20, `${rest.present} objects were already there`);
        assert.equal(rest.present + rest.objects, 61, 'each object sent once, plus the manifest');
      });
    });
  });

  it('takes concurrent pushes to one stream and records every revision', async () => {
    await withTempDir(async (dir) => {
      await withServer(dir, async (url, served) => {
        const sources = await Promise.all(
          [0, 1, 2, 3].map(async (i) => {
            const s = await LocalStore.open(join(dir, `src${i}`));
            const d = join(dir, `tree${i}`);
            await tree(d, 3, i);
            const r = await ingestDirectory(s, d);
            await s.commit('shared', r.revision, d);
            return { s, id: r.revision };
          }),
        );
        await Promise.all(
          sources.map(({ s }) =>
            replicate(localBackend(s), new RemoteStore(url, { token: WRITE })),
          ),
        );
        const got = (await served.revisions('shared')).map((r) => r.id).sort();
        assert.deepEqual(got, sources.map((x) => x.id).sort());
      });
    });
  });
});
