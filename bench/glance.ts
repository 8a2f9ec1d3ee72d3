/**
 * bench/glance: image data into a real Glance (scripts/glance.sh, loopback).
 *
 * (a) 1 GiB of random bytes (nothing to compress, nothing sparse) sent as
 *     raw by ferry's uploadImageData (PUT /file, SHA-512 while streaming,
 *     then the os_hash_value check) against `curl -T FILE` PUT /file on the
 *     same server in the same run: alternated, median of --rounds (3),
 *     MB/s and the ratio (goal >= 0.9).
 * (b) a sparse 1 GiB raw image (--data-percent 10 of it data) sent as raw,
 *     against the same image converted to qcow2 by src/disk (convertImage
 *     reads only its data extents) and then sent: the conversion counts in
 *     the time. Goal: qcow2 end to end faster.
 *
 * Each upload goes to a new image, deleted afterwards.
 *
 *   npm run bench:glance [-- --mib 1024 --rounds 3 --data-percent 10 --dir DIR --json]
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { convertImage } from '../src/disk/index.js';
import { GlanceClient } from '../src/publish/openstack/glance-client.js';
import { uploadImageData } from '../src/publish/openstack/glance-upload.js';
import { unauthenticatedSession } from '../src/publish/openstack/image-session.js';

const MiB = 1024 * 1024;
const SCRIPT = fileURLToPath(new URL('../../scripts/glance.sh', import.meta.url));
/** The identity scripts/glance.sh's test filter gives (its default project). */
const HEADERS = { 'X-Ferry-Test-Roles': 'member,reader' };

const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '1024' },
    rounds: { type: 'string', default: '3' },
    'data-percent': { type: 'string', default: '10' },
    dir: { type: 'string' },
    json: { type: 'boolean' },
  },
});
const size = Number(values.mib) * MiB;
const rounds = Number(values.rounds);
const dataPercent = Number(values['data-percent']);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}
const mbps = (bytes: number, s: number) => bytes / 1e6 / s;

async function writeRandom(path: string, bytes: number): Promise<string> {
  const h = createHash('sha512');
  const f = await open(path, 'w');
  try {
    for (let off = 0; off < bytes; off += 8 * MiB) {
      const b = randomBytes(Math.min(8 * MiB, bytes - off));
      h.update(b);
      await f.write(b, 0, b.length, off);
    }
  } finally {
    await f.close();
  }
  return h.digest('hex');
}

/** A sparse raw file: `percent` of it random data in 1 MiB runs spread evenly, the rest holes. */
async function writeSparse(path: string, bytes: number, percent: number): Promise<void> {
  const f = await open(path, 'w');
  try {
    await f.truncate(bytes);
    const every = Math.round(100 / percent);
    for (let mib = 0; mib * MiB < bytes; mib += every) {
      const b = randomBytes(MiB);
      await f.write(b, 0, b.length, mib * MiB);
    }
  } finally {
    await f.close();
  }
}

async function main(): Promise<void> {
  const url = spawnSync('bash', [SCRIPT, 'start'], { encoding: 'utf8' });
  if (url.status !== 0) throw new Error(`scripts/glance.sh start failed: ${url.stderr}`);
  const base = url.stdout.trim();
  const client = new GlanceClient({ session: unauthenticatedSession(base), headers: HEADERS });
  const dir = values.dir ?? (await mkdtemp(join(tmpdir(), 'ferry-bench-glance-')));
  const created = new Set<string>();
  const newImage = async (format: 'raw' | 'qcow2') => {
    const image = await client.createImage({
      name: `ferry-bench-${randomUUID().slice(0, 8)}`,
      disk_format: format,
      container_format: 'bare',
    });
    created.add(image.id);
    return image.id;
  };
  const drop = async (id: string) => {
    await client.deleteImage(id);
    created.delete(id);
  };
  /** ferry's upload; with `sha512` known (as from the store), no local hash pass. */
  const ferryPut = async (path: string, format: 'raw' | 'qcow2', sha512?: string) => {
    const bytes = (await stat(path)).size;
    const id = await newImage(format);
    const cpu = process.cpuUsage();
    const t = performance.now();
    const r = await uploadImageData(client, id, {
      open: () => createReadStream(path, { highWaterMark: MiB }),
      size: bytes,
      method: 'put',
      ...(sha512 === undefined ? {} : { sha512 }),
    });
    const s = (performance.now() - t) / 1000;
    const used = process.cpuUsage(cpu);
    await drop(id);
    return { s, cpu: (used.user + used.system) / 1e6, sha512: r.sha512 };
  };
  const curlPut = async (path: string) => {
    const id = await newImage('raw');
    const t = performance.now();
    const r = spawnSync(
      'curl',
      [
        '-sS',
        '-f',
        '-o',
        '/dev/null',
        '-X',
        'PUT',
        '-H',
        'Content-Type: application/octet-stream',
        // curl would wait up to 1 s for a "100 Continue" eventlet never sends.
        '-H',
        'Expect:',
        ...Object.entries(HEADERS).flatMap(([k, v]) => ['-H', `${k}: ${v}`]),
        '-T',
        path,
        `${base}/v2/images/${id}/file`,
      ],
      { encoding: 'utf8' },
    );
    const s = (performance.now() - t) / 1000;
    if (r.status !== 0) throw new Error(`curl failed: ${r.stderr}`);
    await drop(id);
    return s;
  };

  try {
    // (a) random raw, ferry vs curl, alternated.
    const random = join(dir, 'random.raw');
    const sha = await writeRandom(random, size);
    readFileSync(random).length; // warm the page cache for both
    const ferry: number[] = [];
    const ferryCpu: number[] = [];
    const known: number[] = [];
    const knownCpu: number[] = [];
    const curl: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const order = i % 2 === 0 ? ['ferry', 'curl', 'known'] : ['known', 'curl', 'ferry'];
      for (const who of order) {
        if (who === 'ferry') {
          const r = await ferryPut(random, 'raw');
          if (r.sha512 !== sha) throw new Error('ferry hashed the file otherwise');
          ferry.push(r.s);
          ferryCpu.push(r.cpu);
        } else if (who === 'known') {
          const r = await ferryPut(random, 'raw', sha);
          known.push(r.s);
          knownCpu.push(r.cpu);
        } else curl.push(await curlPut(random));
      }
    }
    const ferryMb = mbps(size, median(ferry));
    const knownMb = mbps(size, median(known));
    const curlMb = mbps(size, median(curl));

    // (b) sparse raw sent as raw vs converted to qcow2 and sent.
    const sparse = join(dir, 'sparse.raw');
    await writeSparse(sparse, size, dataPercent);
    const asRaw: number[] = [];
    const asQcow2: number[] = [];
    const convertS: number[] = [];
    let qcowBytes = 0;
    for (let i = 0; i < rounds; i++) {
      asRaw.push((await ferryPut(sparse, 'raw')).s);
      const qcow = join(dir, 'sparse.qcow2');
      const t = performance.now();
      await convertImage(sparse, qcow, { to: 'qcow2', from: 'raw', overwrite: true });
      const c = (performance.now() - t) / 1000;
      qcowBytes = (await stat(qcow)).size;
      const u = (await ferryPut(qcow, 'qcow2')).s;
      convertS.push(c);
      asQcow2.push(c + u);
      await rm(qcow, { force: true });
    }

    const result = {
      machine: `${cpus().length} x ${cpus()[0]?.model ?? '?'}`,
      date: new Date().toISOString(),
      sizeMiB: size / MiB,
      rounds,
      random: {
        ferrySeconds: ferry,
        curlSeconds: curl,
        ferryCpuSeconds: ferryCpu,
        knownShaSeconds: known,
        knownShaCpuSeconds: knownCpu,
        ferryMBps: Number(ferryMb.toFixed(1)),
        knownShaMBps: Number(knownMb.toFixed(1)),
        curlMBps: Number(curlMb.toFixed(1)),
        ratio: Number((ferryMb / curlMb).toFixed(3)),
        knownShaRatio: Number((knownMb / curlMb).toFixed(3)),
      },
      sparse: {
        dataPercent,
        rawSeconds: asRaw,
        qcow2Seconds: asQcow2,
        convertSeconds: convertS,
        qcow2MiB: Number((qcowBytes / MiB).toFixed(1)),
        speedup: Number((median(asRaw) / median(asQcow2)).toFixed(2)),
      },
    };
    if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      const f = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' ');
      process.stdout.write(
        [
          `bench/glance on ${result.machine}, ${result.date}`,
          `(a) ${size / MiB} MiB random raw, PUT /file, median of ${rounds}:`,
          `    ferry, hashing     ${result.random.ferryMBps} MB/s (s: ${f(ferry)}; cpu s: ${f(ferryCpu)})`,
          `    ferry, sha512 given ${result.random.knownShaMBps} MB/s (s: ${f(known)}; cpu s: ${f(knownCpu)})`,
          `    curl               ${result.random.curlMBps} MB/s (s: ${f(curl)})`,
          `    ratio ${result.random.ratio} hashing, ${result.random.knownShaRatio} sha512 given (goal >= 0.9)`,
          `(b) ${size / MiB} MiB sparse raw, ${dataPercent} % data:`,
          `    as raw   ${median(asRaw).toFixed(2)} s (s: ${f(asRaw)})`,
          `    as qcow2 ${median(asQcow2).toFixed(2)} s end to end (convert ${f(convertS)} s; ${result.sparse.qcow2MiB} MiB)`,
          `    speedup ${result.sparse.speedup}x`,
          '',
        ].join('\n'),
      );
    }
  } finally {
    for (const id of created) await client.deleteImage(id).catch(() => {});
    client.close();
    if (values.dir === undefined) await rm(dir, { recursive: true, force: true });
  }
}

await main();
