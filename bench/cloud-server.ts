/**
 * `ferry cloud serve` as its own process for benchmarks, so that its CPU
 * and peak RSS are its own. FERRY_BENCH_SERVER_NODE_ARGS passes node flags
 * (e.g. --cpu-prof) to it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { cliNodeArgs, FERRY_CLI } from './ferry-cli.js';

export interface Server {
  readonly child: ChildProcess;
  readonly endpoint: string;
}

/** Starts `ferry cloud serve --data DIR` on a free loopback port; resolves with its URL. */
export async function startServer(data: string): Promise<Server> {
  await mkdir(data, { recursive: true });
  const child = spawn(
    process.execPath,
    [
      ...cliNodeArgs(),
      ...(process.env.FERRY_BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''),
      FERRY_CLI,
      'cloud',
      'serve',
      '--data',
      data,
      '--listen',
      '127.0.0.1:0',
      '--output',
      'json',
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const endpoint = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve((JSON.parse(out.slice(0, nl)) as { endpoint: string }).endpoint);
    });
    child.once('exit', (code) => reject(new Error(`ferry cloud serve exited with ${code}`)));
  });
  return { child, endpoint };
}
