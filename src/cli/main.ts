#!/usr/bin/env -S node --initial-heap-size=64
import { parseArgs } from 'node:util';
import { FerryError } from '../errors/index.js';
import { EXIT, type OutputMode, parseOutputMode, reportError } from './output.js';
import { version } from './version.js';

const HELP = `ferry: get machine images into clouds fast, safely and identically

Usage: ferry <command> [options]

Commands:
  info IMAGE              format, sizes, allocation and format details
  inspect IMAGE           partitions, filesystems, OS, kernels, bootloader; each cloud's verdict
  convert IN OUT --to F   convert between raw, qcow2, vmdk, vhd, vhdx, ova (reads vdi too)
  compare A B             are two images' virtual disks identical?
  image add|ls|show|diff|export|rm
                          the image store: streams of revisions of root file trees
  gc [--keep N]           remove revisions beyond N per stream and unreferenced objects
                          (local and S3 stores)
  serve                   the store over HTTP(S), with bearer tokens
  replicate --from --to   copy missing revisions between stores (directories or URLs)
  cloud serve|reset       a local AWS-compatible endpoint (STS, KMS, EC2) for tests and offline use
  build STREAM --layout fs|disk --out FILE
                          render a revision as a filesystem or a bootable disk, deterministically
  publish [STREAM[@REV]]  render once, publish to every target and region in ferry.yaml at once
                          (--image FILE --name NAME for a disk image; nothing: resume)
  history [STREAM]        every publish run, with timed steps per target and region
  status                  the newest publish run: running, interrupted (resumable), done, failed
  images ls               which revision of each stream is live in each target and region
  verify STREAM@REV       read a published image back in each target and region and compare every block
  deregister STREAM@REV   deregister a revision's images, then delete their snapshots
  prune [--dry-run]       keep each target's retention (newest N per stream and region), remove the rest
  demo [DIR]              make a sample image and run it through every format

Options:
  --output human|json     output for people (default) or for programs
  --help, -h              help for ferry or a command
  --version               ferry's version

Exit codes: 0 success, 1 failure (compare: images differ), 2 usage error.`;

type Flags = Record<string, string | boolean | string[] | undefined>;
type ScalarFlags = Record<string, string | boolean | undefined>;

interface Command {
  help: string;
  run: (args: string[], flags: Flags, mode: OutputMode, signal: AbortSignal) => Promise<number>;
}

/**
 * Commands load on first use, so that a command pays only for the modules it
 * needs (start-up time counts against every conversion).
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  info: async () => {
    const m = await import('./commands/info.js');
    return { help: m.infoHelp, run: (a, f, o) => m.infoCommand(a, f as ScalarFlags, o) };
  },
  inspect: async () => {
    const m = await import('./commands/inspect.js');
    return { help: m.inspectHelp, run: m.inspectCommand };
  },
  convert: async () => {
    const m = await import('./commands/convert.js');
    return {
      help: m.convertHelp,
      run: (a, f, o, s) => m.convertCommand(a, f as ScalarFlags, o, s),
    };
  },
  compare: async () => {
    const m = await import('./commands/compare.js');
    return {
      help: m.compareHelp,
      run: (a, f, o, s) => m.compareCommand(a, f as ScalarFlags, o, s),
    };
  },
  image: async () => {
    const m = await import('./commands/image.js');
    return { help: m.imageHelp, run: m.imageCommand };
  },
  gc: async () => {
    const m = await import('./commands/image.js');
    return { help: m.gcHelp, run: m.gcCommand };
  },
  serve: async () => {
    const m = await import('./commands/serve.js');
    return { help: m.serveHelp, run: m.serveCommand };
  },
  replicate: async () => {
    const m = await import('./commands/serve.js');
    return { help: m.replicateHelp, run: m.replicateCommand };
  },
  cloud: async () => {
    const m = await import('./commands/cloud.js');
    return { help: m.cloudHelp, run: m.cloudCommand };
  },
  build: async () => {
    const m = await import('./commands/build.js');
    return { help: m.buildHelp, run: m.buildCommand };
  },
  publish: async () => {
    const m = await import('./commands/publish.js');
    return { help: m.publishHelp, run: m.publishCommand };
  },
  history: async () => {
    const m = await import('./commands/history.js');
    return { help: m.historyHelp, run: m.historyCommand };
  },
  status: async () => {
    const m = await import('./commands/history.js');
    return { help: m.statusHelp, run: m.statusCommand };
  },
  images: async () => {
    const m = await import('./commands/history.js');
    return { help: m.imagesHelp, run: m.imagesCommand };
  },
  verify: async () => {
    const m = await import('./commands/verify.js');
    return { help: m.verifyHelp, run: m.verifyCommand };
  },
  deregister: async () => {
    const m = await import('./commands/deregister.js');
    return { help: m.deregisterHelp, run: m.deregisterCommand };
  },
  prune: async () => {
    const m = await import('./commands/prune.js');
    return { help: m.pruneHelp, run: m.pruneCommand };
  },
  demo: async () => {
    const m = await import('./commands/demo.js');
    return { help: m.demoHelp, run: m.demoCommand };
  },
};

export async function main(argv: string[]): Promise<number> {
  let mode: OutputMode = 'human';
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
        output: { type: 'string', short: 'o' },
        to: { type: 'string' },
        from: { type: 'string' },
        'from-a': { type: 'string' },
        'from-b': { type: 'string' },
        subformat: { type: 'string' },
        compress: { type: 'boolean' },
        overwrite: { type: 'boolean' },
        buffered: { type: 'boolean' },
        'allow-flat-extents': { type: 'boolean' },
        target: { type: 'string', multiple: true },
        strict: { type: 'boolean' },
        store: { type: 'string' },
        keep: { type: 'string' },
        grace: { type: 'string' },
        'dry-run': { type: 'boolean' },
        listen: { type: 'string' },
        data: { type: 'string' },
        tokens: { type: 'string' },
        'anonymous-read': { type: 'boolean' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'client-ca': { type: 'string' },
        watch: { type: 'string' },
        layout: { type: 'string' },
        out: { type: 'string' },
        format: { type: 'string' },
        size: { type: 'string' },
        margin: { type: 'string' },
        fs: { type: 'string' },
        boot: { type: 'string' },
        firmware: { type: 'string' },
        table: { type: 'string' },
        base: { type: 'string' },
        'zero-freed': { type: 'boolean' },
        label: { type: 'string' },
        'kernel-out': { type: 'string' },
        'initrd-out': { type: 'string' },
        image: { type: 'string' },
        name: { type: 'string' },
        targets: { type: 'string' },
        verify: { type: 'boolean' },
        concurrency: { type: 'string' },
        parallel: { type: 'string' },
      },
    });
    mode = parseOutputMode(values.output);
    if (values.version === true) {
      process.stdout.write(
        mode === 'json' ? `${JSON.stringify({ version: version() })}\n` : `ferry ${version()}\n`,
      );
      return EXIT.ok;
    }
    const [name, ...args] = positionals;
    if (name === undefined) {
      process.stdout.write(`${HELP}\n`);
      return values.help === true ? EXIT.ok : EXIT.usage;
    }
    const load = COMMANDS[name];
    if (load === undefined)
      throw new FerryError(
        'FERRY_USAGE',
        `Cannot run "${name}": no such command (see ferry --help)`,
      );
    const command = await load();
    if (values.help === true) {
      process.stdout.write(`${command.help}\n`);
      return EXIT.ok;
    }
    const controller = new AbortController();
    const onSignal = () => controller.abort(new Error('interrupted'));
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      return await command.run(args, values, mode, controller.signal);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  } catch (error) {
    if (
      error instanceof TypeError &&
      (error as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS') === true
    ) {
      return reportError(
        new FerryError('FERRY_USAGE', `Cannot parse arguments: ${error.message}`),
        mode,
      );
    }
    return reportError(error, mode);
  }
}

process.exitCode = await main(process.argv.slice(2));
