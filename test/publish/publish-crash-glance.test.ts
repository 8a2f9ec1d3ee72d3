/**
 * kill -9 of `ferry publish` to Glance at random points (while converting,
 * creating, uploading, sharing), then the next `ferry publish`: every
 * revision ends as exactly one active image per target, nothing is left
 * queued, uploading or saving, and no converted file stays behind.
 * FERRY_KILL_TRIALS sets the number of trials (default 20; CI runs a few).
 */

import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { GLANCE_PROPERTY } from '../../src/publish/openstack/glance-properties.js';
import { glanceSkip, startGlance } from '../helpers/glance.js';
import { killAndResume } from '../helpers/publish-cli.js';
import { makeProject } from '../helpers/publish-project.js';
import { withTempDir } from '../helpers/qemu.js';

const TRIALS = Number(process.env.FERRY_KILL_TRIALS ?? 20);

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
      const killed = await killAndResume({
        dir,
        tree: p.tree,
        runs: p.state.runs,
        ref: stream,
        trials: TRIALS,
        seed: Number(process.env.FERRY_KILL_SEED ?? 20261203),
        minMs: 300,
        spreadMs: 7000,
      });
      t.diagnostic(`${killed} of ${TRIALS} publishes were killed and resumed`);

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
