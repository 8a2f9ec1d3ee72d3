import { readFile } from 'node:fs/promises';
import { FerryError } from '../../errors/index.js';
import {
  defaultStoreDir,
  ImageServer,
  LocalStore,
  loadTokens,
  replicate,
} from '../../store/index.js';
import { formatBytes, type OutputMode, printJson } from '../output.js';
import { storeBackend } from '../store-location.js';

type Flags = Record<string, string | boolean | string[] | undefined>;

export const serveHelp = `Usage: ferry serve [--store DIR] [--listen HOST:PORT] [--tokens FILE] [--anonymous-read]
                   [--tls-cert FILE --tls-key FILE [--client-ca FILE]]

Serves the store over HTTP(S) for ferry replicate and other ferry hosts.
Binds 127.0.0.1:7878 unless told otherwise. --tokens names a JSON file of
[{"name", "token" or "sha256", "scope": "read"|"write"}]; writes always need
a write token, reads a token unless --anonymous-read. With --client-ca,
clients must also present a certificate signed by that CA.`;

export const replicateHelp = `Usage: ferry replicate --from DIR|URL|s3://BUCKET[/PREFIX] --to DIR|URL|s3://... [STREAM ...]
                       [--watch SECONDS]

Copies the revisions the destination lacks, sending only the objects it does
not hold, each verified on both ends. Resumes where an interrupted run
stopped. Tokens: $FERRY_FROM_TOKEN and $FERRY_TO_TOKEN (or $FERRY_TOKEN for both).
An s3:// store uses the AWS SDK's credential chain, and $FERRY_S3_ENDPOINT for
an S3-compatible server (Ceph RGW, Swift s3api).`;

function parseListen(value: string | undefined): { host: string; port: number } {
  if (value === undefined) return { host: '127.0.0.1', port: 7878 };
  const m = /^(.*):(\d{1,5})$/.exec(value);
  const port = Number(m?.[2]);
  if (m === null || port > 65535)
    throw new FerryError('FERRY_USAGE', `Cannot listen on "${value}": give HOST:PORT`);
  return { host: m[1]!.replace(/^\[|\]$/g, '') || '127.0.0.1', port };
}

export async function serveCommand(
  args: string[],
  flags: Flags,
  mode: OutputMode,
  signal: AbortSignal,
): Promise<number> {
  if (args.length > 0)
    throw new FerryError('FERRY_USAGE', 'Cannot run serve: it takes no arguments');
  const store = await LocalStore.open(
    typeof flags.store === 'string' ? flags.store : defaultStoreDir(),
  );
  const tokens = typeof flags.tokens === 'string' ? await loadTokens(flags.tokens) : [];
  const { host, port } = parseListen(typeof flags.listen === 'string' ? flags.listen : undefined);
  const tls =
    typeof flags['tls-cert'] === 'string' && typeof flags['tls-key'] === 'string'
      ? {
          cert: await readFile(flags['tls-cert']),
          key: await readFile(flags['tls-key']),
          ...(typeof flags['client-ca'] === 'string'
            ? { ca: await readFile(flags['client-ca']), requireClientCert: true }
            : {}),
        }
      : undefined;
  const server = new ImageServer(store, {
    host,
    port,
    tokens,
    anonymousRead: flags['anonymous-read'] === true,
    ...(tls === undefined ? {} : { tls }),
    log: (line) => {
      if (mode === 'json') process.stderr.write(`${JSON.stringify({ type: 'access', line })}\n`);
      else process.stderr.write(`${line}\n`);
    },
  });
  const url = await server.listen();
  if (mode === 'json') printJson({ url, store: store.root, tokens: tokens.length });
  else process.stdout.write(`serving ${store.root} at ${url} (${tokens.length} token(s))\n`);
  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await server.close();
  return 0;
}

export async function replicateCommand(
  args: string[],
  flags: Flags,
  mode: OutputMode,
  signal: AbortSignal,
): Promise<number> {
  if (typeof flags.from !== 'string' || typeof flags.to !== 'string') {
    throw new FerryError(
      'FERRY_USAGE',
      'Cannot run replicate: give --from and --to (a directory or a URL each)',
    );
  }
  const from = await storeBackend(
    flags.from,
    process.env.FERRY_FROM_TOKEN ?? process.env.FERRY_TOKEN,
  );
  const to = await storeBackend(flags.to, process.env.FERRY_TO_TOKEN ?? process.env.FERRY_TOKEN);
  const watch = typeof flags.watch === 'string' ? Number(flags.watch) : null;
  if (watch !== null && !(watch > 0))
    throw new FerryError('FERRY_USAGE', 'Cannot run replicate: --watch takes seconds');
  for (;;) {
    const r = await replicate(from, to, { ...(args.length > 0 ? { streams: args } : {}), signal });
    if (mode === 'json') printJson({ from: from.name, to: to.name, ...r });
    else
      process.stdout.write(
        `${from.name} -> ${to.name}: ${r.revisions} revision(s), ${r.objects} object(s) sent (${formatBytes(r.bytes)}), ${r.present} already there\n`,
      );
    if (watch === null || signal.aborted) return 0;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, watch * 1000);
      signal.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          resolve();
        },
        { once: true },
      );
    });
    if (signal.aborted) return 0;
  }
}
