import { loadConfig } from '../../config/index.js';
import { FerryError } from '../../errors/index.js';
import { prune } from '../../publish/index.js';
import { type OutputMode, printJson } from '../output.js';
import { type Flags, targetsFlag } from '../publish-flags.js';
import { version } from '../version.js';

export const pruneHelp = `Usage: ferry prune [--targets A,B] [--dry-run] [--output json]

Retention across targets: for each target with retention: {keep: N} in
ferry.yaml, in each of its regions and for each stream it takes, keeps the
newest N images ferry published (by creation date) and deregisters the rest,
deleting their snapshots after them. An image an unfinished publish run holds
is never pruned. --dry-run lists what would go and changes nothing.`;

export async function pruneCommand(
  args: string[],
  flags: Flags,
  mode: OutputMode,
  signal: AbortSignal,
): Promise<number> {
  if (args.length > 0)
    throw new FerryError('FERRY_USAGE', 'Cannot run prune: it takes no arguments');
  const targets = targetsFlag(flags);
  const config = await loadConfig();
  const r = await prune(config, {
    ...(targets === undefined ? {} : { targets }),
    dryRun: flags['dry-run'] === true,
    version: version(),
    signal,
  });
  if (mode === 'json') {
    printJson(r);
    return 0;
  }
  const rev = (x: string | null) => (x ?? '?').slice(0, 12);
  if (r.pruned.length === 0) process.stdout.write('nothing to prune\n');
  for (const c of r.pruned)
    process.stdout.write(
      `${r.dryRun ? 'would remove' : 'removed'} ${c.placement.padEnd(28)} ${c.stream}@${rev(c.revision)} ${c.imageId} (${c.snapshotIds.join(', ')})\n`,
    );
  for (const c of r.skipped)
    process.stdout.write(
      `kept ${c.placement.padEnd(28)} ${c.stream}@${rev(c.revision)} ${c.imageId}: an unfinished run holds it\n`,
    );
  process.stdout.write(
    `${r.kept.length} images kept by retention${r.unlimited.length > 0 ? `; no retention: ${r.unlimited.join(', ')}` : ''}\n`,
  );
  return 0;
}
