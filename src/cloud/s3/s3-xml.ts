/**
 * S3's XML: rendering answers (elements repeat, as S3 lists them, rather
 * than EC2's <item> lists) and parsing the few request bodies it takes
 * (CreateBucketConfiguration, Delete, CompleteMultipartUpload).
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { CloudPayload } from '../payload.js';
import type { CloudResponse } from '../service.js';
import { XML_DECLARATION, xmlEscape } from '../xml.js';
import { MAX_XML_BODY_BYTES } from './limits.js';
import { malformedXml, S3Error } from './s3-error.js';

export const S3_XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';

/** A child element: text (escaped), or already rendered XML from `el`. */
export type Child = string | { readonly xml: string };

/** Renders `<name>…</name>`: string children are escaped; arrays concatenate; undefined is left out. */
export function el(
  name: string,
  ...children: ReadonlyArray<Child | number | boolean | undefined | ReadonlyArray<Child>>
): { readonly xml: string } {
  let inner = '';
  for (const c of children) {
    if (c === undefined) continue;
    if (Array.isArray(c)) for (const x of c as ReadonlyArray<Child>) inner += render(x);
    else inner += render(c as Child | number | boolean);
  }
  return { xml: `<${name}>${inner}</${name}>` };
}

function render(c: Child | number | boolean): string {
  if (typeof c === 'string') return xmlEscape(c);
  if (typeof c === 'number' || typeof c === 'boolean') return String(c);
  return c.xml;
}

/** An element only when `value` is defined. */
export function opt(name: string, value: string | number | undefined): { xml: string } | undefined {
  return value === undefined ? undefined : el(name, String(value));
}

export function xmlAnswer(
  root: string,
  children: ReadonlyArray<Child | undefined>,
  headers: Record<string, string> = {},
  status = 200,
): CloudResponse {
  let inner = '';
  for (const c of children) if (c !== undefined) inner += render(c);
  return {
    status,
    headers: { 'content-type': 'application/xml', ...headers },
    body: Buffer.from(`${XML_DECLARATION}<${root} xmlns="${S3_XMLNS}">${inner}</${root}>`),
  };
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

/** Reads a small body whole (at most `limit` bytes). */
export async function readSmallBody(
  payload: CloudPayload | undefined,
  limit = MAX_XML_BODY_BYTES,
): Promise<Buffer> {
  if (payload === undefined) return Buffer.alloc(0);
  if (payload.length !== undefined && payload.length > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of payload.stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

function tooLarge(limit: number): S3Error {
  return new S3Error(400, 'MaxMessageLengthExceeded', 'Your request was too big.', {
    MaxMessageLengthBytes: String(limit),
  });
}

const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  trimValues: false,
  parseTagValue: false,
  processEntities: true,
  htmlEntities: true,
  isArray: (name) => name === 'Object' || name === 'Part',
});

/**
 * Parses an XML request body. Document type declarations are refused before
 * parsing (no entity can expand), as is anything not well-formed.
 */
export function parseXml(body: Buffer): Record<string, unknown> {
  const text = body.toString('utf8');
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) throw malformedXml();
  let doc: unknown;
  try {
    if (XMLValidator.validate(text) !== true) throw malformedXml();
    doc = parser.parse(text);
  } catch {
    // Including a parser's own failure on hostile input (deep nesting).
    throw malformedXml();
  }
  if (typeof doc !== 'object' || doc === null) throw malformedXml();
  return doc as Record<string, unknown>;
}

/** The text of an element, or undefined when absent (an element with children is malformed here). */
export function text(node: unknown): string | undefined {
  if (node === undefined) return undefined;
  if (typeof node === 'string') return node;
  if (node === '' || (typeof node === 'object' && node !== null && Object.keys(node).length === 0))
    return '';
  throw malformedXml();
}

export function children(node: unknown, name: string): unknown[] {
  if (typeof node !== 'object' || node === null) return [];
  const v = (node as Record<string, unknown>)[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}
