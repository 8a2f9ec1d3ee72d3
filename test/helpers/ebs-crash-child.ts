/**
 * Run as a child process by the EBS crash test: opens an engine on argv[2],
 * starts a snapshot, prints "snap <id>", then puts block(i) at index i with
 * four puts in flight, printing "ack <i>" as each is acknowledged, until it
 * is killed.
 */
import { EbsEngine } from '../../src/cloud/ebs/index.js';
import { block, CTX, sha256b64 } from './ebs.js';

const engine = await EbsEngine.open(process.argv[2]!);
const { snapshotId } = await engine.startSnapshot(CTX, { volumeSize: 1 });
process.stdout.write(`snap ${snapshotId}\n`);
let next = 0;
async function worker(): Promise<void> {
  while (next < 2048) {
    const i = next++;
    const data = block(i);
    await engine.putSnapshotBlock(CTX, {
      snapshotId,
      blockIndex: i,
      data,
      dataLength: data.length,
      checksum: sha256b64(data),
      checksumAlgorithm: 'SHA256',
    });
    process.stdout.write(`ack ${i}\n`);
  }
}
await Promise.all([worker(), worker(), worker(), worker()]);
