import { createHash } from 'node:crypto';
import { FerryError } from '../../../errors/index.js';
import type { ByteSource } from '../../byte-source.js';
import { throwIfAborted } from '../../file-source.js';
import { LIMITS } from '../../limits.js';
import { printable } from './member-name.js';
import type { TarMember } from './tar-walk.js';

/** Largest manifest ferry reads. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;
/** Bytes hashed per read. */
const HASH_CHUNK = 4 * 1024 * 1024;

const ALGORITHMS = { SHA1: 'sha1', SHA256: 'sha256', SHA512: 'sha512' } as const;
const HEX_LENGTH = { SHA1: 40, SHA256: 64, SHA512: 128 } as const;
type Algorithm = keyof typeof ALGORITHMS;

export interface ManifestEntry {
  readonly algorithm: Algorithm;
  readonly name: string;
  /** Lower-case hex digest. */
  readonly digest: string;
}

function mismatch(reason: string, details: Record<string, string | number> = {}): FerryError {
  return new FerryError(
    'FERRY_OVA_MANIFEST_MISMATCH',
    `Cannot verify the OVA manifest: ${reason}`,
    {
      details,
    },
  );
}

/** Parses "SHA256(name)= hex" lines (SHA1, SHA256, SHA512); blank lines are skipped. */
export function parseManifest(bytes: Buffer): ManifestEntry[] {
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new FerryError(
      'FERRY_IMAGE_LIMIT',
      `Cannot read the OVA manifest: its ${bytes.length} bytes exceed ${MAX_MANIFEST_BYTES}`,
      { details: { size: bytes.length, cap: MAX_MANIFEST_BYTES } },
    );
  }
  const entries: ManifestEntry[] = [];
  const seen = new Set<string>();
  const lines = bytes.toString('utf8').split(/\r?\n/);
  for (const [i, line] of lines.entries()) {
    if (line.trim() === '') continue;
    const m = /^(SHA1|SHA256|SHA512)\s?\((.{1,255})\)\s?=\s?([0-9a-fA-F]+)\s*$/.exec(line);
    if (m === null) throw mismatch(`line ${i + 1} is not a digest line`, { line: i + 1 });
    const algorithm = m[1] as Algorithm;
    const name = m[2]!;
    const digest = m[3]!.toLowerCase();
    if (digest.length !== HEX_LENGTH[algorithm]) {
      throw mismatch(`line ${i + 1} has a ${algorithm} digest of the wrong length`, {
        line: i + 1,
      });
    }
    if (seen.has(name)) throw mismatch(`"${printable(name)}" is listed twice`);
    seen.add(name);
    entries.push({ algorithm, name, digest });
    if (entries.length > LIMITS.maxOvaMembers) {
      throw new FerryError(
        'FERRY_IMAGE_LIMIT',
        `Cannot read the OVA manifest: it lists more than ${LIMITS.maxOvaMembers} files`,
        { details: { cap: LIMITS.maxOvaMembers } },
      );
    }
  }
  return entries;
}

/** Hashes a member's bytes in bounded chunks, with one read ahead. */
export async function hashMember(
  source: ByteSource,
  member: TarMember,
  algorithm: string,
  signal?: AbortSignal,
): Promise<string> {
  const hash = createHash(algorithm);
  const end = member.offset + member.size;
  const readAt = (at: number) => {
    const p = source.read(at, Math.min(HASH_CHUNK, end - at), signal);
    p.catch(() => {}); // awaited below; this only keeps an abandoned read from going unhandled
    return p;
  };
  let next = member.offset < end ? readAt(member.offset) : undefined;
  for (let at = member.offset; at < end; at += HASH_CHUNK) {
    throwIfAborted(signal);
    const buf = await next!;
    next = at + HASH_CHUNK < end ? readAt(at + HASH_CHUNK) : undefined;
    hash.update(buf);
  }
  return hash.digest('hex');
}

/**
 * Checks every manifest entry against the member it names: a missing member
 * or a differing digest is refused. Returns the names verified.
 */
export async function verifyManifest(
  source: ByteSource,
  entries: readonly ManifestEntry[],
  members: ReadonlyMap<string, TarMember>,
  manifestName: string,
  signal?: AbortSignal,
): Promise<Set<string>> {
  const verified = new Set<string>();
  for (const e of entries) {
    const member = members.get(e.name);
    if (member === undefined || e.name === manifestName) {
      throw mismatch(`it lists "${printable(e.name)}", which is not a member of the OVA`, {
        name: printable(e.name),
      });
    }
    const actual = await hashMember(source, member, ALGORITHMS[e.algorithm], signal);
    if (actual !== e.digest) {
      throw mismatch(
        `the ${e.algorithm} digest of "${printable(e.name)}" is ${actual}, the manifest says ${e.digest}`,
        { name: printable(e.name), algorithm: e.algorithm, expected: e.digest, actual },
      );
    }
    verified.add(e.name);
  }
  return verified;
}
