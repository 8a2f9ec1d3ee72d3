import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { LocalStore } from '../../src/store/index.js';
import { runCli } from '../helpers/cli.js';
import { withTempDir } from '../helpers/qemu.js';

describe('ferry.yaml', () => {
  it('names the store, relative to the file, and the store commands use it', async () => {
    await withTempDir(async (dir) => {
      const cfg = join(dir, 'conf', 'ferry.yaml');
      await mkdir(join(dir, 'conf'));
      await writeFile(cfg, '# the team store\nstore: ../team-store\n');
      process.env.FERRY_CONFIG = cfg;
      try {
        assert.deepEqual(await loadConfig(dir), {
          path: cfg,
          store: join(dir, 'team-store'),
          state: join(dir, 'conf', '.ferry'),
          streams: [],
          targets: [],
        });
      } finally {
        delete process.env.FERRY_CONFIG;
      }
      const src = join(dir, 'src');
      await mkdir(src);
      await writeFile(join(src, 'f'), 'x');
      const r = await runCli(['image', 'add', 'a/b', src, '--output', 'json'], {
        FERRY_CONFIG: cfg,
      });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const store = await LocalStore.open(join(dir, 'team-store'));
      assert.equal((await store.revisions('a/b')).length, 1);
    });
  });

  it('refuses malformed files and unknown keys, naming the line', async () => {
    await withTempDir(async (dir) => {
      const cases: Array<[string, RegExp]> = [
        ['store: ./s\nstroe: ./typo\n', /ferry\.yaml:2: unknown key "stroe"/],
        ['store: [1, 2]\n', /ferry\.yaml:1: store must be/],
        ['store: ./a\nstore: ./b\n', /ferry\.yaml:2:/],
        ['- just\n- a list\n', /the top level must be a mapping/],
        ['store: "unterminated\n', /ferry\.yaml:\d+:/],
      ];
      for (const [text, message] of cases) {
        const cfg = join(dir, 'ferry.yaml');
        await writeFile(cfg, text);
        await assert.rejects(loadConfig(dir), (e: { code?: string; message?: string }) => {
          assert.equal(e.code, 'FERRY_CONFIG_INVALID', text);
          assert.match(e.message ?? '', message, text);
          return true;
        });
      }
      // No file at all is not an error.
      assert.deepEqual(await loadConfig(join(dir, 'nowhere')), {
        path: null,
        state: join(dir, 'nowhere', '.ferry'),
        streams: [],
        targets: [],
      });
    });
  });
});
