import { loadConfig } from '../../config/index.js';
import { FerryError } from '../../errors/index.js';
import { verifyPublished } from '../../publish/index.js';
import { type OutputMode, printJson } from '../output.js';

export const verifyHelp = `Usage: ferry verify STREAM@REV [--targets A,B] [--concurrency N] [--output json]

Reads the revision's published image back in every target and region that
takes the stream (its root snapshot, block by block, through EBS direct) and
compares it with the block digests of the render that was published
(state/digests/HASH.json). Per placement: ok, or how many blocks differ, are
missing or should be empty. Exit 1 when any differs or cannot be read.`;

type Flags = Record<string, string | boolean | string[] | undefined>;

export async function verifyCommand(
  args: string[],
  flags: Flags,
  mode: OutputMode,
  signal: AbortSignal,
): Promise<number> {
  if (args.length !== 1 || args[0] === undefined)
    throw new FerryError('FERRY_USAGE', 'Cannot run verify: give one STREAM@REV');
  const targets =
    typeof flags.targets === 'string'
      ? flags.targets.split(',').filter((t) => t !== '')
      : undefined;
  const c = flags.concurrency;
  if (
    c !== undefined &&
    (typeof c !== 'string' || !/^\d+$/.test(c) || Number(c) < 1 || Number(c) > 256)
  )
    throw new FerryError(
      'FERRY_USAGE',
      'Cannot run verify: --concurrency must be a whole number from 1 to 256',
    );
  const config = await loadConfig();
  const r = await verifyPublished(config, {
    ref: args[0],
    ...(targets === undefined ? {} : { targets }),
    ...(c === undefined ? {} : { concurrency: Number(c) }),
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
