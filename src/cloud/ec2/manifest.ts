/**
 * The EC2 bundle manifest (version 2007-10-10) of an instance-store image,
 * as ec2-bundle-image and euca-bundle-image write it: what RegisterImage
 * needs from it (image size, parts, architecture, kernel and ramdisk),
 * read with every field bounded. The manifest is the caller's file: it is
 * parsed without entity expansion and capped in size, part count and
 * field lengths.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { ec2Error } from './errors.js';
import type { Architecture } from './image-record.js';

export interface BundlePart {
  readonly filename: string;
  /** SHA-1 of the part, hex. */
  readonly digest: string;
}

export interface BundleManifest {
  readonly name: string;
  readonly imageType: 'machine' | 'kernel' | 'ramdisk';
  /** Bytes of the unbundled image. */
  readonly imageSize: number;
  readonly bundledSize: number;
  readonly parts: readonly BundlePart[];
  readonly architecture?: Architecture;
  readonly kernelId?: string;
  readonly ramdiskId?: string;
}

export const MAX_MANIFEST_BYTES = 1024 * 1024;
/** 10 MiB parts of a 10 GiB image (EC2's bundle limit) are 1024; leave room for smaller parts. */
export const MAX_PARTS = 10_000;
/** EC2 refuses bundles over 10 GiB unbundled. */
export const MAX_IMAGE_BYTES = 10 * 2 ** 30;

function bad(reason: string): Error {
  return ec2Error('InvalidManifest', `The manifest is not valid: ${reason}`);
}

type Node = Record<string, unknown>;

function child(node: unknown, name: string): unknown {
  return typeof node === 'object' && node !== null && !Array.isArray(node)
    ? (node as Node)[name]
    : undefined;
}

/** An element's text (a bare string, or #text beside attributes). */
function text(node: unknown, what: string, max = 256): string | undefined {
  const v = typeof node === 'string' ? node : child(node, '#text');
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw bad(`${what} is not text`);
  const t = v.trim();
  if (t.length > max) throw bad(`${what} is longer than ${max} characters`);
  return t;
}

function integer(node: unknown, what: string, max: number): number {
  const t = text(node, what, 20);
  if (t === undefined) throw bad(`${what} is missing`);
  if (!/^\d{1,16}$/.test(t)) throw bad(`${what} is not a whole number`);
  const n = Number(t);
  if (!Number.isSafeInteger(n) || n > max) throw bad(`${what} is over ${max}`);
  return n;
}

export function parseManifest(data: Buffer): BundleManifest {
  if (data.length > MAX_MANIFEST_BYTES)
    throw bad(`it is ${data.length} bytes, more than ${MAX_MANIFEST_BYTES}`);
  const xml = data.toString('utf8');
  // Entities are never expanded and DOCTYPEs refused: no billion laughs, no external entities.
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw bad('it has a DOCTYPE');
  if (XMLValidator.validate(xml) !== true) throw bad('it is not well-formed XML');
  const doc = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@',
    parseTagValue: false,
    parseAttributeValue: false,
    processEntities: false,
    isArray: (name) => name === 'part',
  }).parse(xml) as Node;
  const manifest = child(doc, 'manifest');
  if (manifest === undefined) throw bad('the root element is not <manifest>');
  const version = text(child(manifest, 'version'), 'version', 32);
  if (version !== '2007-10-10') throw bad(`version ${version ?? '(none)'} is not 2007-10-10`);
  const machine = child(manifest, 'machine_configuration');
  const image = child(manifest, 'image');
  if (image === undefined) throw bad('<image> is missing');

  const arch = text(child(machine, 'architecture'), 'architecture', 16);
  if (arch !== undefined && !['i386', 'x86_64', 'arm64'].includes(arch))
    throw bad(`architecture ${arch} is not i386, x86_64 or arm64`);
  const kernelId = text(child(machine, 'kernel_id'), 'kernel_id', 32);
  if (kernelId !== undefined && !/^aki-[0-9a-f]{8}([0-9a-f]{9})?$/.test(kernelId))
    throw bad(`kernel_id ${kernelId} is not an aki- id`);
  const ramdiskId = text(child(machine, 'ramdisk_id'), 'ramdisk_id', 32);
  if (ramdiskId !== undefined && !/^ari-[0-9a-f]{8}([0-9a-f]{9})?$/.test(ramdiskId))
    throw bad(`ramdisk_id ${ramdiskId} is not an ari- id`);

  const name = text(child(image, 'name'), 'image name') ?? '';
  const type = text(child(image, 'type'), 'image type', 16) ?? 'machine';
  if (type !== 'machine' && type !== 'kernel' && type !== 'ramdisk')
    throw bad(`image type ${type} is not machine, kernel or ramdisk`);
  const user = text(child(image, 'user'), 'image user', 16);
  if (user !== undefined && !/^\d{12}$/.test(user.replace(/-/g, '')))
    throw bad('image user is not an account id');
  for (const field of [
    'ec2_encrypted_key',
    'user_encrypted_key',
    'ec2_encrypted_iv',
    'user_encrypted_iv',
  ]) {
    const v = text(child(image, field), field, 4096);
    if (v === undefined || !/^[0-9a-fA-F]+$/.test(v)) throw bad(`${field} is missing or not hex`);
  }
  const imageSize = integer(child(image, 'size'), 'image size', MAX_IMAGE_BYTES);
  if (imageSize === 0) throw bad('image size is 0');
  const bundledSize = integer(child(image, 'bundled_size'), 'bundled_size', 2 * MAX_IMAGE_BYTES);

  const partsNode = child(image, 'parts');
  const count = integer(child(partsNode, '@count'), 'parts count', MAX_PARTS);
  const list = child(partsNode, 'part');
  const parts = Array.isArray(list) ? list : [];
  if (parts.length !== count || count === 0)
    throw bad(`parts count says ${count}, but ${parts.length} parts are listed`);
  const out: BundlePart[] = new Array(count);
  for (const p of parts) {
    const index = integer(child(p, '@index'), 'part index', MAX_PARTS - 1);
    if (index >= count || out[index] !== undefined)
      throw bad(`part index ${index} is out of order or repeated`);
    const filename = text(child(p, 'filename'), 'part filename', 255);
    // A part is a sibling of the manifest: a bare file name, never a path.
    if (
      filename === undefined ||
      !/^[A-Za-z0-9._+=-]+$/.test(filename) ||
      filename === '.' ||
      filename === '..'
    )
      throw bad(`part ${index} has no plain file name`);
    const digest = text(child(p, 'digest'), 'part digest', 64);
    if (digest === undefined || !/^[0-9a-fA-F]{40}$/.test(digest))
      throw bad(`part ${index} has no SHA-1 digest`);
    out[index] = { filename, digest: digest.toLowerCase() };
  }
  return {
    name,
    imageType: type,
    imageSize,
    bundledSize,
    parts: out,
    ...(arch === undefined ? {} : { architecture: arch as Architecture }),
    ...(kernelId === undefined ? {} : { kernelId }),
    ...(ramdiskId === undefined ? {} : { ramdiskId }),
  };
}

/** Splits ImageLocation `bucket/path/name.manifest.xml`, refusing what is not a bucket and key. */
export function splitImageLocation(location: string): { bucket: string; key: string } {
  const slash = location.indexOf('/');
  const bucket = slash < 0 ? '' : location.slice(0, slash);
  const key = slash < 0 ? '' : location.slice(slash + 1);
  if (
    !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) ||
    key.length === 0 ||
    key.length > 1024 ||
    !key.endsWith('.xml') ||
    key.split('/').some((s) => s === '' || s === '.' || s === '..')
  )
    throw ec2Error(
      'InvalidManifest',
      `The image location ${location.slice(0, 256)} is not bucket/path/name.manifest.xml.`,
    );
  return { bucket, key };
}
