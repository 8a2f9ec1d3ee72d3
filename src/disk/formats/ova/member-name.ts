import { FerryError } from '../../../errors/index.js';

/** Longest member name ferry accepts (ustar's prefix + name is 255 bytes). */
export const MAX_MEMBER_NAME = 255;

function unsafe(name: string, reason: string): FerryError {
  return new FerryError(
    'FERRY_OVA_UNSAFE_MEMBER',
    `Cannot open OVA member "${printable(name)}": ${reason}`,
    { details: { name: printable(name) } },
  );
}

/** The name with control characters escaped, for messages (member names are untrusted). */
export function printable(name: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: escaping control characters is the point
  return name.slice(0, MAX_MEMBER_NAME).replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => {
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}

/**
 * Checks that an archive member name is a plain relative path: not absolute,
 * no "..", ".", or empty segments, no backslashes, drive letters or control
 * characters. A leading "./" is dropped. Returns the normalised name.
 */
export function checkMemberName(raw: string): string {
  let name = raw;
  while (name.startsWith('./')) name = name.slice(2);
  if (name === '') throw unsafe(raw, 'the name is empty');
  if (name.length > MAX_MEMBER_NAME) throw unsafe(raw, 'the name is too long');
  if (name.startsWith('/')) throw unsafe(raw, 'the name is an absolute path');
  if (name.includes('\\')) throw unsafe(raw, 'the name contains a backslash');
  if (/^[A-Za-z]:/.test(name)) throw unsafe(raw, 'the name starts with a drive letter');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are refused
  if (/[\u0000-\u001f\u007f]/.test(name)) throw unsafe(raw, 'the name contains control characters');
  for (const seg of name.split('/')) {
    if (seg === '..') throw unsafe(raw, 'the name climbs out of the archive ("..")');
    if (seg === '' || seg === '.') throw unsafe(raw, 'the name has an empty or "." segment');
  }
  return name;
}
