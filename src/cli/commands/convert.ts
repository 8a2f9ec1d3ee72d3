import {
  convertImage,
  isFormatName,
  WRITABLE_FORMATS,
  type WritableFormat,
} from '../../disk/index.js';
import { FerryError } from '../../errors/index.js';
import { formatBytes, type OutputMode, printJson } from '../output.js';
import { progressRenderer } from '../progress.js';

export const convertHelp = `Usage: ferry convert IN OUT --to FORMAT [--from FORMAT] [--compress]
                     [--subformat fixed|dynamic] [--overwrite] [--buffered]
                     [--output json]

Converts IN to OUT in FORMAT (${WRITABLE_FORMATS.join(', ')}), streaming with
bounded memory and writing only allocated data. OUT appears only when the
conversion succeeded. --subformat applies to vhd (fixed is what Azure takes).
IN is read and OUT written past the page cache (O_DIRECT) where the file
system allows; --buffered reads and writes through it instead.`;

export async function convertCommand(
  args: string[],
  flags: Record<string, string | boolean | undefined>,
  mode: OutputMode,
  signal: AbortSignal,
): Promise<number> {
  const [input, output] = args;
  if (input === undefined || output === undefined || args.length > 2) {
    throw new FerryError('FERRY_USAGE', 'Cannot run convert: give IN and OUT');
  }
  const to = flags.to;
  if (typeof to !== 'string' || !(WRITABLE_FORMATS as readonly string[]).includes(to)) {
    throw new FerryError(
      'FERRY_USAGE',
      `Cannot run convert: --to must be one of ${WRITABLE_FORMATS.join(', ')}`,
    );
  }
  const from = flags.from;
  if (from !== undefined && (typeof from !== 'string' || !isFormatName(from))) {
    throw new FerryError(
      'FERRY_USAGE',
      `Cannot run convert: unknown --from format "${String(from)}"`,
    );
  }
  const sub = flags.subformat;
  if (sub !== undefined && sub !== 'fixed' && sub !== 'dynamic') {
    throw new FerryError('FERRY_USAGE', 'Cannot run convert: --subformat must be fixed or dynamic');
  }
  const progress = progressRenderer(mode === 'human' && process.stderr.isTTY === true);
  try {
    const result = await convertImage(input, output, {
      to: to as WritableFormat,
      ...(typeof from === 'string' && isFormatName(from) ? { from } : {}),
      ...(sub === 'fixed' || sub === 'dynamic' ? { vhdSubformat: sub } : {}),
      compress: flags.compress === true,
      overwrite: flags.overwrite === true,
      directWrites: flags.buffered !== true,
      directReads: flags.buffered !== true,
      allowFlatExtents: flags['allow-flat-extents'] === true,
      signal,
      onEvent: progress.onEvent,
    });
    progress.done();
    if (mode === 'json') printJson({ input, output, ...result });
    else {
      process.stdout.write(
        `${input} (${result.from}) -> ${output} (${result.to}): ${formatBytes(result.fileSize)} written, ` +
          `${formatBytes(result.dataBytes)} of data read in ${result.seconds.toFixed(2)} s\n`,
      );
    }
    return 0;
  } catch (error) {
    progress.done();
    throw error;
  }
}
