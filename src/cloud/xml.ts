/** Escapes text for an XML element or attribute. */
export function xmlEscape(text: string): string {
  return text.replace(/[<>&"']/g, (c) => {
    switch (c) {
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '&':
        return '&amp;';
      case '"':
        return '&quot;';
      default:
        return '&apos;';
    }
  });
}

/** A value for `xmlElements`: text, a nested element list, or an array of `<item>`s. */
export type XmlValue = string | number | boolean | XmlFields | readonly XmlValue[] | undefined;
export interface XmlFields {
  readonly [name: string]: XmlValue;
}

/**
 * Renders fields as XML elements in their order; undefined fields are left
 * out, arrays become `<item>` lists (the EC2 convention, also `member` via
 * `itemName`).
 */
export function xmlElements(fields: XmlFields, itemName = 'item'): string {
  let out = '';
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    out += `<${name}>${xmlValue(value, itemName)}</${name}>`;
  }
  return out;
}

function xmlValue(value: Exclude<XmlValue, undefined>, itemName: string): string {
  if (typeof value === 'string') return xmlEscape(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) {
    return (value as readonly XmlValue[])
      .filter((v) => v !== undefined)
      .map(
        (v) =>
          `<${itemName}>${xmlValue(v as Exclude<XmlValue, undefined>, itemName)}</${itemName}>`,
      )
      .join('');
  }
  return xmlElements(value as XmlFields, itemName);
}

export const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';
