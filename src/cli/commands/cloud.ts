import {
  CloudEndpoint,
  DEFAULT_ACCESS_KEY,
  DEFAULT_ACCOUNT,
  DEFAULT_CLOUD_PORT,
  DEFAULT_SECRET,
  defaultCloudDir,
  resetCloud,
} from '../../cloud/index.js';
import { FerryError } from '../../errors/index.js';
import type { OutputMode } from '../output.js';

type Flags = Record<string, string | boolean | string[] | undefined>;

export const cloudHelp = `Usage: ferry cloud serve [--data DIR] [--listen HOST:PORT]
       ferry cloud reset [--data DIR]

serve runs an AWS-compatible endpoint (STS, KMS, EC2 DescribeRegions so far)
that the AWS SDKs and CLI reach with an endpoint override. SigV4 is verified
against the accounts of DIR/config.json; a fresh directory has account
${DEFAULT_ACCOUNT} with access key "${DEFAULT_ACCESS_KEY}" and secret "${DEFAULT_SECRET}" in every region.
Binds 127.0.0.1:${DEFAULT_CLOUD_PORT} unless told otherwise; an address beyond loopback
is refused while the default credentials are enabled.
reset wipes the state (keys, sessions, …) and keeps config.json.
DIR defaults to $FERRY_CLOUD_DATA or ~/.local/share/ferry/cloud. See docs/cloud.md.`;

function parseListen(value: string | undefined): { host: string; port: number } {
  if (value === undefined) return { host: '127.0.0.1', port: DEFAULT_CLOUD_PORT };
  const m = /^(.*):(\d{1,5})$/.exec(value);
  const port = Number(m?.[2]);
  if (m === null || port > 65535)
    throw new FerryError('FERRY_USAGE', `Cannot listen on "${value}": give HOST:PORT`);
  return { host: m[1]!.replace(/^\[|\]$/g, '') || '127.0.0.1', port };
}

function dataDir(flags: Flags): string {
  return typeof flags.data === 'string' ? flags.data : defaultCloudDir();
}

async function serve(flags: Flags, mode: OutputMode, signal: AbortSignal): Promise<number> {
  const { host, port } = parseListen(typeof flags.listen === 'string' ? flags.listen : undefined);
  const data = dataDir(flags);
  const endpoint = await CloudEndpoint.open({
    dataDir: data,
    host,
    port,
    log: (line) => {
      if (mode === 'json') process.stderr.write(`${JSON.stringify({ type: 'access', line })}\n`);
      else process.stderr.write(`${line}\n`);
    },
  });
  const url = await endpoint.listen();
  const defaults = endpoint.accounts.defaultCredentials;
  if (mode === 'json') {
    process.stdout.write(
      `${JSON.stringify({
        endpoint: url,
        data,
        services: endpoint.serviceNames(),
        accounts: endpoint.accounts.ids(),
        defaultCredentials: defaults
          ? {
              accessKeyId: DEFAULT_ACCESS_KEY,
              secretAccessKey: DEFAULT_SECRET,
              account: DEFAULT_ACCOUNT,
            }
          : null,
      })}\n`,
    );
  } else {
    const lines = [
      `ferry cloud: ${url} (data ${data})`,
      `services: ${endpoint.serviceNames().join(', ')}; accounts: ${endpoint.accounts.ids().join(', ')}`,
    ];
    if (defaults) {
      lines.push(
        `default credentials: AWS_ACCESS_KEY_ID=${DEFAULT_ACCESS_KEY} AWS_SECRET_ACCESS_KEY=${DEFAULT_SECRET} (account ${DEFAULT_ACCOUNT})`,
        `try: AWS_ACCESS_KEY_ID=${DEFAULT_ACCESS_KEY} AWS_SECRET_ACCESS_KEY=${DEFAULT_SECRET} AWS_DEFAULT_REGION=us-east-1 aws --endpoint-url ${url} sts get-caller-identity`,
      );
    } else lines.push(`try: aws --endpoint-url ${url} sts get-caller-identity`);
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await endpoint.close();
  return 0;
}

export async function cloudCommand(
  args: string[],
  flags: Flags,
  mode: OutputMode,
  signal: AbortSignal,
): Promise<number> {
  const [sub, ...rest] = args;
  if (rest.length > 0)
    throw new FerryError('FERRY_USAGE', `Cannot run cloud ${sub}: it takes no further arguments`);
  if (sub === 'serve') return serve(flags, mode, signal);
  if (sub === 'reset') {
    const data = dataDir(flags);
    await resetCloud(data);
    if (mode === 'json') process.stdout.write(`${JSON.stringify({ reset: data })}\n`);
    else process.stdout.write(`ferry cloud: state under ${data} wiped (config.json kept)\n`);
    return 0;
  }
  throw new FerryError(
    'FERRY_USAGE',
    'Cannot run cloud: give serve or reset (see ferry cloud --help)',
  );
}
