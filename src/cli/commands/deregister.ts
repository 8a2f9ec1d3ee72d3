import { loadConfig } from '../../config/index.js';
import { FerryError } from '../../errors/index.js';
import { deregisterPublished } from '../../publish/index.js';
import { type OutputMode, printJson } from '../output.js';
import { type Flags, targetsFlag } from '../publish-flags.js';
import { version } from '../version.js';

export const deregisterHelp = `Usage: ferry deregister STREAM@REV [--targets A,B] [--output json]

Takes the revision's image down in every target and region that takes the
stream: the image is deregistered, then its snapshots are deleted (in that
order: an image's snapshot cannot be deleted while the image uses it). The
removal is journaled as a run, so ferry images ls drops it and ferry history
shows it. Nothing there is not an error.`;

export async function deregisterCommand(
  args: string[],
  flags: Flags,
  mode: OutputMode,
  signal: AbortSignal,
): Promise<number> {
  if (args.length !== 1 || args[0] === undefined)
    throw new FerryError('FERRY_USAGE', 'Cannot run deregister: give one STREAM@REV');
  const targets = targetsFlag(flags);
  const config = await loadConfig();
  const r = await deregisterPublished(config, {
    ref: args[0],
    ...(targets === undefined ? {} : { targets }),
    version: version(),
    signal,
  });
  if (mode === 'json') printJson(r);
  else {
    const head = `${r.stream}@${r.revision.slice(0, 12)}`;
    if (r.removed.length === 0)
      process.stdout.write(
        `${head}: nothing to deregister (no image of it in ${r.absent.length} placements)\n`,
      );
    else {
      process.stdout.write(`run ${r.runId ?? ''}: ${head} deregistered\n`);
      for (const x of r.removed)
        process.stdout.write(
          `  ${x.placement.padEnd(28)} ${x.imageId}${x.deregistered ? '' : ' (already gone)'}; deleted ${x.deletedSnapshots.join(', ') || 'no snapshot'}\n`,
        );
      for (const a of r.absent) process.stdout.write(`  ${a.padEnd(28)} not there\n`);
    }
  }
  return 0;
}
