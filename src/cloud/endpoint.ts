/**
 * The local cloud as a whole: the accounts config and state of one data
 * directory, its services (STS, KMS, EC2, EBS direct, S3), and the HTTP server
 * in front of them.
 */

import { join } from 'node:path';
import { FerryError } from '../errors/index.js';
import {
  Accounts,
  DEFAULT_ACCESS_KEY,
  DEFAULT_ACCOUNT,
  DEFAULT_SECRET,
  loadCloudConfig,
} from './accounts.js';
import { stateDir } from './data-dir.js';
import { blockReceiver, EbsEngine, ebsService, MAX_REQUEST_BODY } from './ebs/index.js';
import {
  Ec2Cloud,
  type Images,
  importRegistrar,
  type ManifestReader,
  type TagRegistry,
} from './ec2/index.js';
import { ec2Service } from './ec2.js';
import { EC2_BASE_ACTIONS } from './ec2-regions.js';
import { type ImportDependencies, VmImport, vmImportActions } from './import/index.js';
import { launchable } from './instance-images.js';
import { Instances, type InstancesOptions, instanceActions } from './instances/index.js';
import { kmsService } from './kms.js';
import { canUse, KmsKeys } from './kms-keys.js';
import { S3Storage, s3Service } from './s3/index.js';
import { s3ManifestReader, s3ObjectLookup } from './s3-readers.js';
import { CloudServer, type CloudService, type SigningIdentity } from './server.js';
import { Sessions } from './sessions.js';
import { StateStore } from './state-store.js';
import { stsService } from './sts.js';

export const DEFAULT_CLOUD_PORT = 7879;

export interface CloudEndpointOptions {
  readonly dataDir: string;
  /** Default 127.0.0.1; anything but loopback is refused while test/test is enabled. */
  readonly host?: string;
  /** Default 7879; 0 picks a free port. */
  readonly port?: number;
  readonly now?: () => number;
  readonly log?: (line: string) => void;
  /**
   * VM Import: where it reads disk images (default: this endpoint's S3),
   * where it registers AMIs (default: this endpoint's images), boot checks
   * and concurrency; false turns the import actions off.
   */
  readonly vmImport?: Partial<ImportDependencies> | false;
  /** Reads an instance-store image's bundle manifest (default: from this endpoint's S3). */
  readonly readManifest?: ManifestReader;
  /** How long a CopyImage copy stays pending (ms). */
  readonly imageCopyDelayMs?: number;
  /** Instances: the image registry's imageForLaunch, cache and QEMU settings. */
  readonly instances?: InstancesOptions;
}

/** Is `host` a loopback address (or localhost)? */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return (
    h === 'localhost' ||
    h === '::1' ||
    /^127\.\d+\.\d+\.\d+$/.test(h) ||
    /^::ffff:127\.\d+\.\d+\.\d+$/.test(h)
  );
}

export class CloudEndpoint {
  readonly dataDir: string;
  readonly accounts: Accounts;
  readonly state: StateStore;
  readonly sessions: Sessions;
  readonly kms: KmsKeys;
  readonly ebs: EbsEngine;
  readonly vmImport: VmImport | undefined;
  /** EC2 images: registerImage (import tasks), imageForLaunch (the instance runner). */
  readonly images: Images;
  /** EC2 tags: components register their resource kinds (instances, import tasks) here. */
  readonly tags: TagRegistry;
  /** S3's objects; other components read them through s3.objectFile (ownership checked). */
  readonly s3: S3Storage;
  readonly instances: Instances;
  private readonly server: CloudServer;
  private url: string | undefined;

  private constructor(
    options: CloudEndpointOptions,
    accounts: Accounts,
    state: StateStore,
    sessions: Sessions,
    kms: KmsKeys,
    ebs: EbsEngine,
    ec2: Ec2Cloud,
    vmImport: VmImport | undefined,
    s3: S3Storage,
    instances: Instances,
  ) {
    const now = options.now ?? Date.now;
    this.dataDir = options.dataDir;
    this.accounts = accounts;
    this.state = state;
    this.sessions = sessions;
    this.kms = kms;
    this.ebs = ebs;
    this.vmImport = vmImport;
    this.images = ec2.images;
    this.tags = ec2.tags;
    this.s3 = s3;
    this.instances = instances;
    this.tags.register(instances.taggable());
    if (vmImport !== undefined) {
      this.tags.register(vmImport.taggable('image'));
      this.tags.register(vmImport.taggable('snapshot'));
    }
    this.server = new CloudServer({
      host: options.host ?? '127.0.0.1',
      port: options.port ?? DEFAULT_CLOUD_PORT,
      now,
      resolveKey: (id) => this.resolveKey(id),
      ...(options.log === undefined ? {} : { log: options.log }),
    });
    this.server.register(stsService({ accounts, sessions, now }));
    this.server.register(kmsService(this.kms));
    this.server.register(
      ec2Service({
        ...EC2_BASE_ACTIONS,
        ...ec2.actions(),
        ...instanceActions(instances),
        ...(vmImport === undefined ? {} : vmImportActions(vmImport)),
      }),
    );
    this.server.register({
      name: 'ebs',
      protocol: 'rest-json',
      maxBodyBytes: MAX_REQUEST_BODY,
      handler: ebsService(ebs),
      receiver: blockReceiver((digest) => ebs.recentBlock(digest)),
    });
    // Bodies stream to disk (objects can be GiBs): the cap does not apply.
    this.server.register({
      name: 's3',
      protocol: 'rest-xml',
      maxBodyBytes: 0,
      streaming: true,
      handler: s3Service(s3),
    });
  }

  /** Reads the data directory's config and state; refuses an unsafe listen address. */
  static async open(options: CloudEndpointOptions): Promise<CloudEndpoint> {
    const config = await loadCloudConfig(options.dataDir);
    const accounts = new Accounts(config);
    const host = options.host ?? '127.0.0.1';
    if (accounts.defaultCredentials && !isLoopback(host))
      throw new FerryError(
        'FERRY_CLOUD_UNSAFE_LISTEN',
        `Cannot listen on ${host}: the default credentials (${DEFAULT_ACCESS_KEY}/${DEFAULT_SECRET}) are enabled, so anyone who reaches the port could use account ${DEFAULT_ACCOUNT}`,
        {
          details: { host },
          hint: 'set "defaultCredentials": false in the data directory\'s config.json and configure accounts with their own keys, or listen on 127.0.0.1',
        },
      );
    const state = new StateStore(stateDir(options.dataDir));
    const sessions = await Sessions.open(state, accounts.ids());
    const kms = new KmsKeys(state, options.now ?? Date.now);
    // Encrypted snapshots use the account's alias/aws/ebs key unless they name one, and
    // a key is usable only by the accounts its policy allows (AWS managed keys: their own).
    const ebs = await EbsEngine.open(join(stateDir(options.dataDir), 'ebs'), {
      ...(options.now === undefined ? {} : { now: options.now }),
      ...(config.ebs.pendingSnapshotLimit === undefined
        ? {}
        : { pendingSnapshotLimit: config.ebs.pendingSnapshotLimit }),
      ...(config.ebs.rateLimits === undefined ? {} : { rateLimits: config.ebs.rateLimits }),
      defaultKmsKeyArn: async (account, region) => (await kms.defaultEbsKey(account, region)).arn,
      canUseKey: async (ctx, arn) => {
        const m = /^arn:aws:kms:([a-z0-9-]+):(\d{12}):key\/(.+)$/.exec(arn);
        if (m === null) return false;
        const key = (await kms.keys(m[2]!, m[1]!)).find((k) => k.arn === arn);
        return key !== undefined && canUse(key, ctx.account);
      },
    });
    const ec2 = new Ec2Cloud({
      state,
      ebs,
      kms,
      accounts,
      ...(options.now === undefined ? {} : { now: options.now }),
      ...(options.readManifest === undefined ? {} : { readManifest: options.readManifest }),
      ...(options.imageCopyDelayMs === undefined ? {} : { copyDelayMs: options.imageCopyDelayMs }),
    });
    let s3: S3Storage;
    try {
      s3 = await S3Storage.open(join(stateDir(options.dataDir), 's3'), {
        ...(options.now === undefined ? {} : { now: options.now }),
      });
    } catch (error) {
      await ebs.close();
      throw error;
    }
    // Instances boot from root snapshots of the EBS engine, cached under DATA/cache.
    let instances: Instances;
    try {
      instances = await Instances.open(
        { dataDir: options.dataDir, state, engine: ebs, now: options.now ?? Date.now },
        {
          ...options.instances,
          imageForLaunch:
            options.instances?.imageForLaunch ?? ((c, id) => launchable(ec2.images, c, id)),
        },
      );
    } catch (error) {
      await ebs.close();
      await s3.close();
      throw error;
    }
    // Import tasks resume (or are cleaned up) as soon as their engine is there.
    if (options.readManifest === undefined) ec2.images.setManifestReader(s3ManifestReader(s3));
    const vmImport =
      options.vmImport === false
        ? undefined
        : await VmImport.open({
            ...options.vmImport,
            objectFile: options.vmImport?.objectFile ?? s3ObjectLookup(s3),
            registerImage: options.vmImport?.registerImage ?? importRegistrar(ec2.images),
            state,
            engine: ebs,
            workDir: join(stateDir(options.dataDir), 'vm-import'),
            ...(options.now === undefined ? {} : { now: options.now }),
            ...(options.log === undefined ? {} : { log: options.log }),
          });
    return new CloudEndpoint(
      options,
      accounts,
      state,
      sessions,
      kms,
      ebs,
      ec2,
      vmImport,
      s3,
      instances,
    );
  }

  /** Adds a service (one per SigV4 service name; a later one replaces an earlier one). */
  register(service: CloudService): void {
    this.server.register(service);
  }

  serviceNames(): string[] {
    return this.server.serviceNames();
  }

  private resolveKey(accessKeyId: string): SigningIdentity | undefined {
    const key = this.accounts.byAccessKey(accessKeyId);
    if (key !== undefined)
      return {
        secretAccessKey: key.secretAccessKey,
        account: key.account,
        principal: `arn:aws:iam::${key.account}:root`,
      };
    const session = this.sessions.lookup(accessKeyId);
    if (session === undefined) return undefined;
    return {
      secretAccessKey: session.secretAccessKey,
      account: session.account,
      principal: session.principal,
      sessionToken: session.sessionToken,
      expiration: session.expiration,
    };
  }

  /** Starts serving; resolves to the endpoint URL. */
  async listen(): Promise<string> {
    this.url = await this.server.listen();
    return this.url;
  }

  get endpoint(): string | undefined {
    return this.url;
  }

  async close(): Promise<void> {
    await this.server.close();
    await this.vmImport?.close();
    await this.instances.close();
    await this.ebs.close();
    await this.s3.close();
  }
}
