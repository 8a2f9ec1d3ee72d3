/**
 * Run as a child process by the instance tests: opens an endpoint on the
 * data directory argv[2] whose image double maps argv[3] (an AMI id) to the
 * snapshot argv[4], prints its URL on a line, and serves until killed.
 */
import { CloudEndpoint } from '../../src/cloud/index.js';
import { ImageDouble } from './instances.js';

const images = new ImageDouble();
images.add(process.argv[3]!, process.argv[4]!);
const endpoint = await CloudEndpoint.open({
  dataDir: process.argv[2]!,
  port: 0,
  instances: { imageForLaunch: images.imageForLaunch },
});
process.stdout.write(`${await endpoint.listen()}\n`);
