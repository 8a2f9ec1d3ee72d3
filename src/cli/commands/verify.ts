import { loadConfig } from '../../config/index.js';
import { FerryError } from '../../errors/index.js';
import { verifyPublished } from '../../publish/index.js';
import { type OutputMode, printJson } from '../output.js';
import { countFlag, type Flags, targetsFlag } from '../publish-flags.js';

export const verifyHelp = `Usage: ferry verify STREAM@REV [--targets A,B] [--concurrency N] [--output json]

Reads the revision's published image back in every target and region that
takes the stream (its root snapshot, block by block, through EBS direct) and
compares it with the block digests of the render that was published
(state/digests/HASH.json). Per placement: ok, or how many blocks differ, are
missing or should be empty. Exit 1 when any differs or cannot be read.`;

export async function verifyCommand(
  args: string[],
  flags: Flags,
  mode: OutputMode,
  signal: AbortSignal,
): Promise<number> {
  if (args.length !== 1 || args[0] === undefined)
    throw new FerryError('FERRY_USAGE', 'Cannot run verify: give one STREAM@REV');
  const targets = targetsFlag(flags);
  const concurrency = countFlag(flags, 'concurrency', 256, 'verify');
  const config = await loadConfig();
  const r = await verifyPublished(config, {
    ref: args[0],
    ...(targets === undefined ? {} : { targets }),
    ...(concurrency === undefined ? {} : { concurrency }),
    signal,
  });
  if (mode === 'json') printJson(r);
  else {
    process.stdout.write(`${r.stream}@${r.revision.slice(0, 12)}: ${r.ok ? 'ok' : 'DIFFERS'}\n`);
    for (const p of r.placements) {
      const what =
        p.status === 'error'
          ? `error: ${p.error?.message ?? ''} [${p.error?.code ?? ''}]`
          : p.status === 'ok'
            ? `ok, ${p.result?.blocks ?? 0} blocks`
            : `${p.result?.mismatches.length ?? 0} blocks differ, ${p.result?.missing.length ?? 0} missing, ${p.result?.extra.length ?? 0} should be empty (first: ${[...(p.result?.mismatches ?? []), ...(p.result?.missing ?? []), ...(p.result?.extra ?? [])].sort((a, b) => a - b)[0] ?? '-'})`;
      process.stdout.write(
        `  ${p.key.padEnd(28)} ${p.imageId ?? '-'} ${p.snapshotId ?? '-'}  ${what}  ${p.seconds.toFixed(1)} s\n`,
      );
    }
  }
  return r.ok ? 0 : 1;
}
