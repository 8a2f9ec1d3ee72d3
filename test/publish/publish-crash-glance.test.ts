/**
 * kill -9 of `ferry publish` to Glance at random points (while converting,
 * creating, uploading, sharing), then the next `ferry publish`: every
 * revision ends as exactly one active image per target, nothing is left
 * queued, uploading or saving, and no converted file stays behind.
 * FERRY_KILL_TRIALS sets the number of trials (default 20; CI runs a few).
 */

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadRuns } from '../../src/publish/index.js';
import { GLANCE_PROPERTY } from '../../src/publish/openstack/glance-properties.js';
import { glanceSkip, startGlance } from '../helpers/glance.js';
import { makeProject } from '../helpers/publish-project.js';
import { withTempDir } from '../helpers/qemu.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const TRIALS = Number(process.env.FERRY_KILL_TRIALS ?? 20);

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function publish(
  cwd: string,
  args: string[],
): { child: ChildProcess; done: Promise<number | null> } {
  const child = spawn(process.execPath, [CLI, 'publish', ...args, '--output', 'json'], {
    cwd,
    env: { ...process.env, FERRY_CONFIG: join(cwd, 'ferry.yaml') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  child.stdout?.resume();
  const done = new Promise<number | null>((resolve) =>
    child.on('exit', (code, signal) => {
      if (signal === null && code !== 0)
        process.stderr.write(`publish exited ${code}: ${err.slice(-2000)}\n`);
      resolve(signal === null ? code : null);
    }),
  );
  return { child, done };
}

describe('publish to Glance: kill -9 at random points, then resume', { skip: glanceSkip }, () => {
  it(`${TRIALS} trials: one active image per revision and target, nothing half made`, {
    timeout: 900_000,
  }, async (t) => {
    const glance = startGlance();
    await withTempDir(async (dir) => {
      const stream = `crash${Date.now().toString(36)}`;
      const p = await makeProject(
        dir,
        `  q:\n    type: openstack\n    endpoint: ${glance.url}\n    diskFormat: qcow2\n  r:\n    type: openstack\n    endpoint: ${glance.url}\n    diskFormat: raw\n    upload: glance-direct\n`,
        `  ${stream}:\n    source: ./tree\n    layout: disk\n    boot: none\n`,
      );
      const next = random(Number(process.env.FERRY_KILL_SEED ?? 20261203));
      let killed = 0;
      for (let trial = 0; trial < TRIALS; trial++) {
        await writeFile(join(p.tree, 'var/lib/ferry-demo/build-info'), `build: ${trial}\n`);
        const run = publish(dir, [stream]);
        const delay = 300 + Math.floor(next() * 7000);
        const timer = setTimeout(() => run.child.kill('SIGKILL'), delay);
        const code = await run.done;
        clearTimeout(timer);
        if (code === null) {
          killed++;
          // Half the time the bare command resumes (when the kill left a run); else the same command again.
          const runs = await loadRuns(p.state.runs);
          const bare = trial % 2 === 1 && runs.some((r) => r.outcome === 'unfinished');
          assert.equal(
            await publish(dir, bare ? [] : [stream]).done,
            0,
            `trial ${trial}: the resume failed (killed after ${delay} ms)`,
          );
          if (bare) assert.equal(await publish(dir, [stream]).done, 0);
        } else assert.equal(code, 0, `trial ${trial} failed`);
      }
      t.diagnostic(`${killed} of ${TRIALS} publishes were killed and resumed`);
      assert.ok(killed >= Math.min(TRIALS, 3), `only ${killed} of ${TRIALS} runs were killed`);
      const runs = await loadRuns(p.state.runs);
      assert.ok(runs.every((r) => r.outcome !== 'unfinished' && r.outcome !== 'aborted'));

      const client = glance.client();
      try {
        const images = await client.listImages(
          { [GLANCE_PROPERTY.stream]: stream },
          { pageSize: 100 },
        );
        for (const target of ['q', 'r']) {
          const mine = images.filter((i) => i.properties[GLANCE_PROPERTY.target] === target);
          const states = mine
            .filter((i) => i.status !== 'active')
            .map((i) => `${i.id} ${i.status}`);
          assert.deepEqual(states, [], `${target}: nothing queued, uploading or saving`);
          const revisions = mine.map((i) => i.properties[GLANCE_PROPERTY.revision]);
          assert.equal(new Set(revisions).size, mine.length, `${target}: a revision twice`);
          assert.equal(mine.length, TRIALS, `${target}: one image per revision`);
        }
        for (const image of images) await client.deleteImage(image.id);
      } finally {
        client.close();
      }
      const left = (await readdir(p.state.renders)).filter((f) => f.startsWith('glance-'));
      assert.deepEqual(left, [], 'no converted file left');
    });
  });
});
