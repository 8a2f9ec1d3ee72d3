import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { FerryError } from '../../../errors/index.js';
import { LIMITS } from '../../limits.js';

/** A References/File entry. */
export interface OvfFile {
  readonly id: string;
  readonly href: string;
  /** ovf:size, or null when absent. */
  readonly size: number | null;
  readonly chunked: boolean;
  /** ovf:compression (e.g. "gzip"), or "" when absent or "identity". */
  readonly compression: string;
}

/** A DiskSection/Disk entry. */
export interface OvfDisk {
  readonly diskId: string;
  readonly fileRef: string | null;
  /** Capacity in bytes, or null when it is missing or not a plain number. */
  readonly capacity: number | null;
  readonly format: string;
}

export interface OvfController {
  readonly kind: 'ide' | 'scsi' | 'sata' | 'nvme' | 'other';
  readonly subtype: string;
}

export interface OvfNic {
  readonly type: string;
  readonly connection: string;
}

export interface OvfSystem {
  readonly name: string;
  readonly os: { readonly id: string; readonly osType: string; readonly description: string };
  readonly cpus: number | null;
  readonly memoryMiB: number | null;
  readonly nics: readonly OvfNic[];
  readonly controllers: readonly OvfController[];
}

export interface OvfDescriptor {
  readonly files: readonly OvfFile[];
  readonly disks: readonly OvfDisk[];
  readonly networks: readonly string[];
  /** The first VirtualSystem, or null when the envelope has none. */
  readonly system: OvfSystem | null;
  readonly virtualSystems: number;
}

/** Longest text value ferry keeps from the descriptor (it is untrusted). */
const MAX_TEXT = 256;
/** Most entries of each list ferry walks. */
const MAX_ENTRIES = 4096;

function badOvf(reason: string, details: Record<string, string | number> = {}): FerryError {
  return new FerryError('FERRY_OVA_BAD_OVF', `Cannot read the OVF descriptor: ${reason}`, {
    details,
  });
}

type Node = Record<string, unknown>;

function isNode(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An own property of a parsed element (never an inherited one). */
function get(node: unknown, key: string): unknown {
  return isNode(node) && Object.hasOwn(node, key) ? node[key] : undefined;
}

function list(v: unknown): unknown[] {
  if (v === undefined || v === null) return [];
  const arr = Array.isArray(v) ? v : [v];
  if (arr.length > MAX_ENTRIES) throw badOvf(`a list has more than ${MAX_ENTRIES} entries`);
  return arr;
}

/** Decodes the five predefined XML entities and character references (no expansion). */
function decodeEntities(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});/g, (m, e: string) => {
    switch (e) {
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'amp':
        return '&';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
    }
    const code = e[1] === 'x' ? Number.parseInt(e.slice(2), 16) : Number.parseInt(e.slice(1), 10);
    return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : m;
  });
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are replaced
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/** Untrusted text: entities decoded, control characters replaced, length capped. */
function clean(raw: string): string {
  return decodeEntities(raw.slice(0, 4 * MAX_TEXT))
    .replace(CONTROL, ' ')
    .trim()
    .slice(0, MAX_TEXT);
}

/** Text content of an element or an attribute value, exactly (entities decoded). */
function raw(v: unknown): string {
  if (typeof v === 'string') return decodeEntities(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const t = get(v, '#text');
  return typeof t === 'string' ? decodeEntities(t) : '';
}

function text(v: unknown): string {
  return clean(raw(v));
}

function attr(node: unknown, name: string): string | undefined {
  const v = get(node, `@_${name}`);
  return v === undefined ? undefined : raw(v);
}

function plainInt(s: string | undefined): number | null {
  if (s === undefined || !/^\s*[0-9]{1,16}\s*$/.test(s)) return null;
  const n = Number(s.trim());
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * The multiplier of a DMTF programmatic unit such as "byte", "byte * 2^30",
 * "byte * 10^9", or the OVF 0.9 names "KiloBytes", "MegaBytes", "GigaBytes".
 */
export function unitMultiplier(units: string | undefined): number | null {
  if (units === undefined || units.trim() === '') return 1;
  const u = units.trim();
  const named: Record<string, number> = {
    byte: 1,
    bytes: 1,
    kilobytes: 2 ** 10,
    megabytes: 2 ** 20,
    gigabytes: 2 ** 30,
    terabytes: 2 ** 40,
    mb: 2 ** 20,
    gb: 2 ** 30,
  };
  const n = named[u.toLowerCase()];
  if (n !== undefined && Object.hasOwn(named, u.toLowerCase())) return n;
  const m = /^byte\s*\*\s*(2|10)\s*\^\s*([0-9]{1,2})$/i.exec(u);
  if (m === null) return null;
  const v = Number(m[1]) ** Number(m[2]);
  return Number.isSafeInteger(v) ? v : null;
}

function scaled(value: string | undefined, units: string | undefined): number | null {
  const n = plainInt(value);
  const mult = unitMultiplier(units);
  if (n === null || mult === null) return null;
  const v = n * mult;
  return Number.isSafeInteger(v) ? v : null;
}

const CONTROLLER_KINDS: Record<string, OvfController['kind']> = {
  '5': 'ide',
  '6': 'scsi',
  '20': 'sata',
};

function readSystem(vs: unknown): OvfSystem {
  const osSection = get(vs, 'OperatingSystemSection');
  const os = {
    id: clean(attr(osSection, 'id') ?? ''),
    osType: clean(attr(osSection, 'osType') ?? ''),
    description: text(get(osSection, 'Description')),
  };
  let cpus: number | null = null;
  let memoryMiB: number | null = null;
  const nics: OvfNic[] = [];
  const controllers: OvfController[] = [];
  for (const hw of list(get(vs, 'VirtualHardwareSection'))) {
    const items = [
      ...list(get(hw, 'Item')),
      ...list(get(hw, 'StorageItem')),
      ...list(get(hw, 'EthernetPortItem')),
    ];
    for (const item of items) {
      const type = text(get(item, 'ResourceType'));
      const sub = text(get(item, 'ResourceSubType'));
      if (type === '3' && cpus === null) {
        cpus = plainInt(raw(get(item, 'VirtualQuantity')));
      } else if (type === '4' && memoryMiB === null) {
        const bytes = scaled(
          raw(get(item, 'VirtualQuantity')),
          raw(get(item, 'AllocationUnits')) || 'byte * 2^20',
        );
        memoryMiB = bytes === null ? null : Math.floor(bytes / 2 ** 20);
      } else if (type === '10') {
        nics.push({ type: sub, connection: text(get(item, 'Connection')) });
      } else if (Object.hasOwn(CONTROLLER_KINDS, type)) {
        controllers.push({ kind: CONTROLLER_KINDS[type]!, subtype: sub });
      } else if (type === '1' && /nvme/i.test(sub)) {
        controllers.push({ kind: 'nvme', subtype: sub });
      }
    }
  }
  return {
    name: text(get(vs, 'Name')) || clean(attr(vs, 'id') ?? ''),
    os,
    cpus,
    memoryMiB,
    nics,
    controllers,
  };
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  removeNSPrefix: true,
  processEntities: false,
  htmlEntities: false,
  parseTagValue: false,
  parseAttributeValue: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  allowBooleanAttributes: false,
  trimValues: true,
  maxNestedTags: 64,
});

/**
 * Parses an OVF descriptor (at most LIMITS.maxOvfBytes). Document type
 * declarations are refused outright, so no entity can ever be expanded.
 */
export function parseOvf(bytes: Buffer): OvfDescriptor {
  if (bytes.length > LIMITS.maxOvfBytes) {
    throw new FerryError(
      'FERRY_IMAGE_LIMIT',
      `Cannot read the OVF descriptor: its ${bytes.length} bytes exceed the ${LIMITS.maxOvfBytes}-byte cap`,
      { details: { size: bytes.length, cap: LIMITS.maxOvfBytes } },
    );
  }
  let xml = bytes.toString('utf8');
  if (xml.charCodeAt(0) === 0xfeff) xml = xml.slice(1);
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) {
    throw badOvf('it has a document type declaration (entities are refused)');
  }
  const valid = XMLValidator.validate(xml, { allowBooleanAttributes: false });
  if (valid !== true) {
    throw badOvf(`it is not well-formed XML (${clean(valid.err.msg)} at line ${valid.err.line})`, {
      line: valid.err.line,
    });
  }
  let doc: unknown;
  try {
    doc = parser.parse(xml);
  } catch (error) {
    throw badOvf(`it cannot be parsed (${clean(String((error as Error)?.message ?? error))})`);
  }
  const env = get(doc, 'Envelope');
  if (!isNode(env)) throw badOvf('it has no Envelope element');

  const files: OvfFile[] = [];
  for (const f of list(get(get(env, 'References'), 'File'))) {
    const href = attr(f, 'href');
    const id = attr(f, 'id');
    if (href === undefined || id === undefined) throw badOvf('a File has no href or id');
    const sizeText = attr(f, 'size');
    const size = sizeText === undefined ? null : plainInt(sizeText);
    if (sizeText !== undefined && size === null) {
      throw badOvf(`the File "${clean(href)}" has an invalid size`);
    }
    const compression = attr(f, 'compression')?.trim() ?? '';
    files.push({
      id,
      href,
      size,
      chunked: attr(f, 'chunkSize') !== undefined,
      compression: compression === 'identity' ? '' : compression,
    });
  }
  if (files.length > LIMITS.maxOvaMembers) {
    throw badOvf(`it references more than ${LIMITS.maxOvaMembers} files`);
  }

  const disks: OvfDisk[] = [];
  for (const section of list(get(env, 'DiskSection'))) {
    for (const d of list(get(section, 'Disk'))) {
      disks.push({
        diskId: clean(attr(d, 'diskId') ?? ''),
        fileRef: attr(d, 'fileRef') ?? null,
        capacity: scaled(attr(d, 'capacity'), attr(d, 'capacityAllocationUnits')),
        format: clean(attr(d, 'format') ?? ''),
      });
    }
  }

  const networks: string[] = [];
  for (const section of list(get(env, 'NetworkSection'))) {
    for (const n of list(get(section, 'Network'))) networks.push(clean(attr(n, 'name') ?? ''));
  }

  let systems = list(get(env, 'VirtualSystem'));
  if (systems.length === 0) {
    for (const c of list(get(env, 'VirtualSystemCollection'))) {
      systems = [...systems, ...list(get(c, 'VirtualSystem'))];
    }
  }
  const first = systems[0];
  return {
    files,
    disks,
    networks,
    system: first === undefined ? null : readSystem(first),
    virtualSystems: systems.length,
  };
}
