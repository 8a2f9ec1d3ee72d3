import { loadConfig } from '../../config/index.js';
import { FerryError } from '../../errors/index.js';
import {
  formatPlan,
  type PlacementOutcome,
  type PublishEvent,
  publishFromConfig,
} from '../../publish/index.js';
import { formatBytes, type OutputMode, printJson } from '../output.js';
import { countFlag, type Flags, targetsFlag } from '../publish-flags.js';
import { publishProgress } from '../publish-progress.js';
import { version } from '../version.js';

export const publishHelp = `Usage: ferry publish [STREAM[@REV]] [--image FILE --name NAME] [--targets A,B]
                     [--dry-run] [--verify] [--concurrency N] [--parallel N] [--output json]

Publishes a stream revision (rendered once as a disk) or a disk image file in
any format ferry reads to every target in ferry.yaml that takes it, each
target in each of its regions at once.
  STREAM          ingest the stream's source (when ferry.yaml gives one and it
                  changed), then publish the newest revision
  STREAM@REV      publish that revision as it is in the store
  --image FILE    publish this disk image under --name NAME
  (nothing)       resume the runs a crash or Ctrl-C left unfinished
  --targets A,B   only these targets
  --dry-run       print the plan and do nothing
  --verify        read each new snapshot back and compare every block
  --concurrency N blocks in flight per target and region (default 16)
  --parallel N    targets x regions at once (default 8)
A run that stops (kill -9, a power cut) is resumed by the next ferry publish
from its journal; a re-run of a finished publish finds its images by their
tags and does nothing twice. --output json prints JSON lines: one per event,
then the result.`;

function usage(reason: string): FerryError {
  return new FerryError('FERRY_USAGE', `Cannot run publish: ${reason}`);
}

export async function publishCommand(
  args: string[],
  flags: Flags,
  mode: OutputMode,
  signal: AbortSignal,
): Promise<number> {
  if (args.length > 1) throw usage('give one STREAM[@REV]');
  const image = typeof flags.image === 'string' ? flags.image : undefined;
  const name = typeof flags.name === 'string' ? flags.name : undefined;
  if (image !== undefined && args.length > 0) throw usage('give STREAM[@REV] or --image, not both');
  if (image !== undefined && name === undefined) throw usage('--image needs --name NAME');
  if (image === undefined && name !== undefined) throw usage('--name goes with --image');
  const targets = targetsFlag(flags);
  const concurrency = countFlag(flags, 'concurrency', 256, 'publish');
  const parallel = countFlag(flags, 'parallel', 64, 'publish');
  const config = await loadConfig();
  const progress = publishProgress(mode, process.stderr.isTTY === true);
  try {
    const outputs = await publishFromConfig(config, {
      ...(args[0] === undefined ? {} : { ref: args[0] }),
      ...(image === undefined || name === undefined ? {} : { image: { path: image, name } }),
      ...(targets === undefined ? {} : { targets }),
      dryRun: flags['dry-run'] === true,
      verify: flags.verify === true,
      ...(concurrency === undefined ? {} : { concurrency }),
      ...(parallel === undefined ? {} : { parallel }),
      version: version(),
      signal,
      onEvent: (e: PublishEvent) => progress.onEvent(e),
    });
    progress.done();
    let ok = true;
    for (const out of outputs) {
      if (out.result === null) {
        if (mode === 'json') printJson({ plan: out.plan });
        else process.stdout.write(formatPlan(out.plan));
        continue;
      }
      const r = out.result;
      ok &&= r.ok;
      if (mode === 'json') {
        process.stdout.write(
          `${JSON.stringify({ type: 'result', ...r, ingested: out.ingested })}\n`,
        );
        continue;
      }
      const head = `${r.request.stream}${r.request.revision === null ? '' : `@${r.request.revision.slice(0, 12)}`}`;
      process.stdout.write(
        `${r.resumed ? 'resumed ' : ''}run ${r.runId}: ${head} ${r.ok ? 'published' : 'FAILED'} in ${r.seconds.toFixed(1)} s\n`,
      );
      if (out.ingested !== null)
        process.stdout.write(
          `  ingested ${out.ingested.files} files: revision ${out.ingested.revision.slice(0, 12)}${out.ingested.unchanged ? ' (unchanged)' : ''}\n`,
        );
      if (r.render !== null && !r.render.reused)
        process.stdout.write(
          `  rendered ${formatBytes(r.render.bytes)} in ${r.render.seconds.toFixed(1)} s${r.render.base === null ? '' : `, ${r.render.changedChunks} of ${r.render.totalChunks} chunks changed`}\n`,
        );
      for (const p of r.placements) {
        if (p.outcome !== null) {
          const o = p.outcome;
          process.stdout.write(
            `  ${p.key.padEnd(28)} ${o.imageId}  ${o.existing ? 'already there' : sentText(o)}  ${p.seconds.toFixed(1)} s\n`,
          );
        } else
          process.stdout.write(
            `  ${p.key.padEnd(28)} failed: ${p.error?.message ?? ''} [${p.error?.code ?? ''}]${p.cleanedUp.length > 0 ? `; removed ${p.cleanedUp.join(', ')}` : ''}\n`,
          );
      }
    }
    return ok ? 0 : 1;
  } finally {
    progress.done();
  }
}

/** What a placement sent: bytes, and for block uploads the blocks sent and skipped. */
function sentText(o: PlacementOutcome): string {
  const bytes = `${formatBytes(o.bytesSent)} sent`;
  // Glance uploads whole files: no blocks to count.
  if (o.blocksSent === 0 && o.blocksSkipped === 0) return bytes;
  const parent = o.parentSnapshotId === null ? '' : `, incremental on ${o.parentSnapshotId}`;
  return `${bytes} (${o.blocksSent} blocks, ${o.blocksSkipped} skipped${parent})`;
}
