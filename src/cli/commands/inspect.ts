import { isFormatName, openImage } from '../../disk/index.js';
import { FerryError } from '../../errors/index.js';
import { type InspectReport, inspectImage, TARGETS, type Target } from '../../inspect/index.js';
import { formatBytes, type OutputMode, printJson } from '../output.js';

export const inspectHelp = `Usage: ferry inspect IMAGE [--target T ...] [--strict] [--from FORMAT] [--output json]

Reads the partition table, filesystems, OS, kernels, bootloader and
configuration from the image bytes (no mounting, no root, no VM) and predicts
what each target will say, in the cloud's own words where it has them.
Targets: ${TARGETS.join(', ')} (default: all). --strict exits 1 when a
selected target fails.`;

type Flags = Record<string, string | boolean | string[] | undefined>;

function render(r: InspectReport): string {
  const lines: string[] = [];
  const mark = { pass: 'pass', warn: 'WARN', fail: 'FAIL' } as const;
  lines.push(`${r.image}: ${r.format}, ${formatBytes(r.virtualSize)}`);
  lines.push(
    `verdicts: ${Object.entries(r.verdicts)
      .map(([t, v]) => `${t} ${mark[v]}`)
      .join(', ')}`,
  );
  const blocking = r.findings.filter((f) => f.severity === 'error');
  const rest = r.findings.filter((f) => f.severity !== 'error');
  if (blocking.length > 0) {
    lines.push('', 'Blocks import:');
    for (const f of blocking) {
      lines.push(`  ${f.code} (${f.targets.join(', ')}): ${f.message}`);
      if (f.cloudMessage !== null) lines.push(`      the cloud says: ${f.cloudMessage}`);
    }
  }
  if (rest.length > 0) {
    lines.push('', 'Worth fixing:');
    for (const f of rest)
      lines.push(
        `  ${f.severity === 'warning' ? 'warning' : 'note   '} ${f.code} (${f.targets.join(', ')}): ${f.message}`,
      );
  }
  lines.push('', `partition table: ${r.partitionTable.type}`);
  for (const p of r.partitionTable.partitions) {
    lines.push(
      `  ${String(p.index).padStart(2)}  ${formatBytes(p.start).padStart(9)} +${formatBytes(p.size).padEnd(9)} ${p.type.padEnd(22)} ${p.bootable ? 'boot ' : '     '}${p.filesystem ?? ''}`,
    );
  }
  for (const f of r.filesystems) {
    lines.push(
      `filesystem: ${f.partition === null ? 'whole disk' : `partition ${f.partition}`} ${f.type} uuid=${f.uuid ?? '-'} label=${f.label ?? '-'}${f.readable ? '' : ' (not looked inside)'}`,
    );
  }
  if (r.os === null) lines.push('os: none found');
  else
    lines.push(
      `os: ${r.os.prettyName ?? r.os.distro ?? r.os.type} (${r.os.type}, ${r.os.distro ?? '?'} ${r.os.version ?? '?'}, ${r.os.arch ?? '?'})`,
    );
  for (const k of r.kernels)
    lines.push(
      `kernel: ${k.version} ${k.arch}${k.default ? ' (default)' : ''} initrd=${k.initrd ?? 'none'}`,
    );
  lines.push(
    `bootloader: ${r.bootloader.type}, firmware: ${r.bootloader.firmware.join('+') || 'none'}`,
  );
  lines.push(
    `cloud-init: ${r.cloudInit ? 'yes' : 'no'}, serial console: ${r.serialConsole ? 'yes' : 'no'}`,
  );
  lines.push(`read ${formatBytes(r.bytesRead)} in ${r.seconds.toFixed(3)} s`);
  return `${lines.join('\n')}\n`;
}

export async function inspectCommand(
  args: string[],
  flags: Flags,
  mode: OutputMode,
  signal: AbortSignal,
): Promise<number> {
  const path = args[0];
  if (path === undefined || args.length > 1)
    throw new FerryError('FERRY_USAGE', 'Cannot run inspect: give exactly one IMAGE');
  const raw = flags.target;
  const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [String(raw)];
  const targets = list.flatMap((t) => t.split(',')).filter((t) => t !== '');
  for (const t of targets) {
    if (!(TARGETS as readonly string[]).includes(t))
      throw new FerryError(
        'FERRY_USAGE',
        `Cannot run inspect: unknown target "${t}" (${TARGETS.join(', ')})`,
      );
  }
  const from = flags.from;
  if (from !== undefined && (typeof from !== 'string' || !isFormatName(from))) {
    throw new FerryError('FERRY_USAGE', `Cannot run inspect: unknown format "${String(from)}"`);
  }
  const image = await openImage(path, {
    ...(typeof from === 'string' && isFormatName(from) ? { format: from } : {}),
    signal,
  });
  try {
    const report = await inspectImage(image, path, {
      ...(targets.length > 0 ? { targets: targets as Target[] } : {}),
      signal,
    });
    if (mode === 'json') printJson(report);
    else process.stdout.write(render(report));
    const failed = Object.values(report.verdicts).includes('fail');
    return flags.strict === true && failed ? 1 : 0;
  } finally {
    await image.close();
  }
}
