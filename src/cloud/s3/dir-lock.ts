import { withLock } from '../../store/store-lock.js';

export interface HeldLock {
  release(): Promise<void>;
}

/**
 * Takes the lock file at `path` (the store's protocol: O_EXCL with our pid;
 * a lock left by a killed process of this host is taken over) and holds it
 * until released, so that two servers never share an S3 directory.
 */
export async function holdDirLock(path: string): Promise<HeldLock> {
  let taken!: () => void;
  const ready = new Promise<void>((resolve) => {
    taken = resolve;
  });
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const holding = withLock(
    path,
    async () => {
      taken();
      await released;
    },
    { timeoutMs: 0 },
  );
  await Promise.race([ready, holding]);
  return {
    release: async () => {
      release();
      await holding;
    },
  };
}
