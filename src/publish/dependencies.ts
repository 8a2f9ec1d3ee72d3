/**
 * The publish's real parts: the EBS direct and VM Import runners, block
 * sources over any image ferry reads, inspect for the image facts, and the
 * block digests saved under the image's content hash for the next
 * incremental snapshot.
 */

import { stat } from 'node:fs/promises';
import { ebsDirectRunner } from './aws/ebs-direct-runner.js';
import { type VmImportRunnerOptions, vmImportRunner } from './aws/vm-import-runner.js';
import { blockDigests, writeDigests } from './block-digests.js';
import { openBlockSource } from './block-source.js';
import { imageFacts } from './image-facts.js';
import { type GlanceRunnerOptions, glanceRunner } from './openstack/glance-runner.js';
import type { PublishDependencies } from './publish.js';
import { digestsFile } from './state-paths.js';

export interface DefaultDependenciesOptions {
  readonly version: string;
  readonly verify?: boolean;
  readonly vmImport?: Omit<VmImportRunnerOptions, 'version'>;
  readonly glance?: Omit<GlanceRunnerOptions, 'version'>;
}

export function defaultDependencies(options: DefaultDependenciesOptions): PublishDependencies {
  return {
    runners: {
      'ebs-direct': ebsDirectRunner({ version: options.version, verify: options.verify === true }),
      'vm-import': vmImportRunner({ version: options.version, ...options.vmImport }),
      glance: glanceRunner({ version: options.version, ...options.glance }),
    },
    // A render (it has a map) was written past the page cache: read it the same way.
    openSource: (path, map, signal) =>
      openBlockSource(path, map === null ? { signal } : { map, directReads: true, signal }),
    inspect: async (path, signal) => {
      const { facts, report } = await imageFacts(path, signal);
      return { facts, report };
    },
    saveDigests: async (source, state, signal) => {
      const path = digestsFile(state, source.contentHash);
      if (
        await stat(path).then(
          () => true,
          () => false,
        )
      )
        return;
      const digests = await blockDigests(source, { signal });
      await writeDigests(path, {
        blockCount: source.blockCount,
        contentHash: source.contentHash,
        digests,
      });
    },
  };
}
