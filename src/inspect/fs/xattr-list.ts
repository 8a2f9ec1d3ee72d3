import { FerryError } from '../../errors/index.js';

/** One extended attribute, named and encoded as Linux's llistxattr / lgetxattr give it. */
export interface Xattr {
  /** The full name, namespace prefix included ("user.foo", "system.posix_acl_access"). */
  readonly name: string;
  readonly value: Buffer;
}

/**
 * Caps on the extended attributes read from one node of a hostile
 * filesystem. They are Linux's own (XATTR_NAME_MAX, XATTR_SIZE_MAX,
 * XATTR_LIST_MAX) and the store's (MANIFEST_LIMITS.maxXattrs and
 * maxXattrBytes, checked equal by a test), so a node read from an image
 * carries no more than the same node read from a mounted directory could.
 * The bytes of one node's values are bounded by maxCount × maxValueBytes.
 */
export const XATTR_LIMITS = {
  /** Attributes on one node. */
  maxCount: 128,
  /** Bytes of one full name. */
  maxNameBytes: 255,
  /** Bytes of one value. */
  maxValueBytes: 64 * 1024,
  /** Bytes of all names of one node, each with its NUL (what llistxattr returns). */
  maxListBytes: 64 * 1024,
} as const;

/**
 * Collects the attributes of one node while a driver decodes them: refuses
 * (FERRY_FS_LIMIT) more than the caps allow and (FERRY_FS_CORRUPT) a name
 * that is empty, holds a NUL or appears twice. `subject` names the node in
 * messages ("ext inode 12").
 */
export class XattrList {
  readonly #subject: string;
  readonly #items = new Map<string, Buffer>();
  #listBytes = 0;

  constructor(subject: string) {
    this.#subject = subject;
  }

  get size(): number {
    return this.#items.size;
  }

  /** A coded error about this node's attributes ("Cannot read the extended attributes of …: reason"). */
  error(
    code: 'FERRY_FS_CORRUPT' | 'FERRY_FS_LIMIT',
    reason: string,
    details: Record<string, number | string> = {},
  ): FerryError {
    return new FerryError(
      code,
      `Cannot read the extended attributes of ${this.#subject}: ${reason}`,
      {
        details: { node: this.#subject, ...details },
      },
    );
  }

  /** Checks a value's size before it is read (a remote block, another inode). */
  checkValueSize(name: string, size: number): void {
    if (size > XATTR_LIMITS.maxValueBytes) {
      throw this.error('FERRY_FS_LIMIT', `the value of ${name.slice(0, 80)} is ${size} bytes`, {
        size,
        max: XATTR_LIMITS.maxValueBytes,
      });
    }
  }

  add(name: string, value: Buffer): void {
    const nameBytes = Buffer.byteLength(name);
    if (nameBytes === 0 || name.includes('\0'))
      throw this.error('FERRY_FS_CORRUPT', 'an attribute name is empty or holds a NUL byte');
    if (nameBytes > XATTR_LIMITS.maxNameBytes) {
      throw this.error('FERRY_FS_LIMIT', `an attribute name is ${nameBytes} bytes`, {
        nameBytes,
        max: XATTR_LIMITS.maxNameBytes,
      });
    }
    this.checkValueSize(name, value.length);
    if (this.#items.has(name))
      throw this.error('FERRY_FS_CORRUPT', `the attribute ${name.slice(0, 80)} appears twice`);
    if (this.#items.size >= XATTR_LIMITS.maxCount) {
      throw this.error('FERRY_FS_LIMIT', `it has more than ${XATTR_LIMITS.maxCount} attributes`, {
        max: XATTR_LIMITS.maxCount,
      });
    }
    this.#listBytes += nameBytes + 1;
    if (this.#listBytes > XATTR_LIMITS.maxListBytes) {
      throw this.error(
        'FERRY_FS_LIMIT',
        `its attribute names exceed ${XATTR_LIMITS.maxListBytes} bytes`,
        {
          max: XATTR_LIMITS.maxListBytes,
        },
      );
    }
    this.#items.set(name, value);
  }

  /** The attributes, sorted by name (JavaScript string order, as the store sorts them). */
  list(): Xattr[] {
    return [...this.#items.entries()]
      .sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))
      .map(([name, value]) => ({ name, value }));
  }
}
