import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type PublishOutput, runDemo } from '../../publish/index.js';
import { formatBytes, type OutputMode, printJson } from '../output.js';
import { publishProgress } from '../publish-progress.js';
import { version } from '../version.js';

export const demoHelp = `Usage: ferry demo [DIR] [--output json]

The main job on the embedded default, the local cloud: writes DIR/ferry.yaml
(a stream from the sample tree in examples/demo-rootfs, two accounts x two
regions, encrypted), ingests the tree, renders it as a disk and publishes it
to all four at once; then changes one file and publishes the new revision
incrementally. Prints the image ids, bytes sent and timings. DIR defaults to
a new temporary directory; run "ferry history" or "ferry images ls" in it
afterwards.`;

function summary(label: string, out: PublishOutput): string {
  const r = out.result;
  if (r === null) return '';
  const lines = [
    `${label}: revision ${r.request.revision?.slice(0, 12) ?? '?'}, ${r.ok ? 'published' : 'FAILED'} in ${r.seconds.toFixed(2)} s (run ${r.runId})`,
  ];
  if (r.render !== null)
    lines.push(
      `  render: ${formatBytes(r.render.bytes)} disk in ${r.render.seconds.toFixed(2)} s${r.render.base === null ? '' : `, ${r.render.changedChunks} of ${r.render.totalChunks} 512 KiB chunks changed`}`,
    );
  for (const p of r.placements) {
    const o = p.outcome;
    lines.push(
      o === null
        ? `  ${p.key.padEnd(22)} failed: ${p.error?.message ?? ''}`
        : `  ${p.key.padEnd(22)} ${o.imageId}  ${formatBytes(o.bytesSent).padStart(9)} sent, ${o.blocksSent} blocks${o.parentSnapshotId === null ? '' : ` (incremental on ${o.parentSnapshotId})`}  ${p.seconds.toFixed(2)} s`,
    );
  }
  return lines.join('\n');
}

export async function demoCommand(
  args: string[],
  _flags: unknown,
  mode: OutputMode,
  signal: AbortSignal,
): Promise<number> {
  const dir = args[0] ?? (await mkdtemp(join(tmpdir(), 'ferry-demo-')));
  const progress = publishProgress(mode === 'json' ? 'human' : mode, process.stderr.isTTY === true);
  const r = await runDemo(dir, { signal, version: version(), onEvent: (e) => progress.onEvent(e) });
  progress.done();
  const ok = r.first.result?.ok === true && r.second.result?.ok === true;
  const sent = (o: PublishOutput) =>
    (o.result?.placements ?? []).reduce((n, p) => n + (p.outcome?.bytesSent ?? 0), 0);
  if (mode === 'json')
    printJson({ dir, config: r.config, first: r.first.result, second: r.second.result, ok });
  else
    process.stdout.write(
      `${summary('first publish', r.first)}\n${summary('incremental publish', r.second)}\n` +
        `bytes sent: ${formatBytes(sent(r.first))} then ${formatBytes(sent(r.second))}\n` +
        `state in ${dir} (cd there: ferry history, ferry images ls; ferry cloud serve --data ${join(dir, 'state', 'cloud')})\n`,
    );
  return ok ? 0 : 1;
}
