import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { publishFromConfig } from '../../src/publish/index.js';
import { runCli } from '../helpers/cli.js';
import { awsTarget, makeProject } from '../helpers/publish-project.js';
import { withTempDir } from '../helpers/qemu.js';

describe('ferry verify, deregister and prune on the command line', () => {
  it('verifies with --output json, deregisters, then verify fails with a code', async () => {
    await withTempDir(async (dir) => {
      const p = await makeProject(
        dir,
        awsTarget('a', {
          endpoint: 'local',
          account: 'a',
          regions: ['us-east-1'],
          extra: '    retention: {keep: 1}\n',
        }),
      );
      const [out] = await publishFromConfig(await p.config(), {
        ref: 'demo',
        version: '0.0.0-test',
      });
      const ref = `demo@${out!.result!.request.revision!.slice(0, 12)}`;
      const env = { FERRY_CONFIG: `${dir}/ferry.yaml` };

      const ok = await runCli(['verify', ref, '--output', 'json'], env);
      assert.equal(ok.code, 0, ok.stderr + ok.stdout);
      const v = JSON.parse(ok.stdout) as {
        ok: boolean;
        placements: { key: string; status: string; result: { blocks: number } }[];
      };
      assert.equal(v.ok, true);
      assert.equal(v.placements[0]?.key, 'a/us-east-1');
      assert.equal(v.placements[0]?.status, 'ok');
      assert.ok(v.placements[0]!.result.blocks > 0);

      const dry = await runCli(['prune', '--dry-run'], env);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /nothing to prune/);

      const d = await runCli(['deregister', ref, '--targets', 'a'], env);
      assert.equal(d.code, 0, d.stderr);
      assert.match(d.stdout, /deregistered/);
      const again = await runCli(['deregister', ref, '--output', 'json'], env);
      assert.equal(again.code, 0, again.stderr);
      assert.equal((JSON.parse(again.stdout) as { runId: string | null }).runId, null);

      const gone = await runCli(['verify', ref, '--output', 'json'], env);
      assert.equal(gone.code, 1);
      const g = JSON.parse(gone.stdout) as {
        ok: boolean;
        placements: { status: string; error: { code: string } }[];
      };
      assert.equal(g.ok, false);
      assert.equal(g.placements[0]?.error.code, 'FERRY_PUBLISH_IMAGE_NOT_FOUND');

      const usage = await runCli(['verify'], env);
      assert.equal(usage.code, 2);
    });
  });
});
