import { FerryError } from '../errors/index.js';

/** Flags as main.ts parses them. */
export type Flags = Record<string, string | boolean | string[] | undefined>;

/** --targets A,B as a list of names; undefined when not given. */
export function targetsFlag(flags: Flags): string[] | undefined {
  return typeof flags.targets === 'string'
    ? flags.targets.split(',').filter((t) => t !== '')
    : undefined;
}

/** A whole-number flag from 1 to `max` (--concurrency, --parallel); undefined when not given. */
export function countFlag(
  flags: Flags,
  name: string,
  max: number,
  command: string,
): number | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !/^\d+$/.test(v) || n < 1 || n > max)
    throw new FerryError(
      'FERRY_USAGE',
      `Cannot run ${command}: --${name} must be a whole number from 1 to ${max}`,
    );
  return n;
}
