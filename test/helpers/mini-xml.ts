/**
 * A small XML reader for tests: elements, attributes (kept but unused),
 * text with the five predefined entities and numeric references, CDATA,
 * comments and the declaration. Enough for AWS's response bodies; it throws
 * on anything malformed, which a conformance check reports.
 */

export interface XmlNode {
  readonly name: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly children: XmlNode[];
  /** The concatenated text directly inside the element. */
  text: string;
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decode(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (m, ref: string) => {
    if (ref.startsWith('#x')) return String.fromCodePoint(Number.parseInt(ref.slice(2), 16));
    if (ref.startsWith('#')) return String.fromCodePoint(Number(ref.slice(1)));
    const e = ENTITIES[ref];
    if (e === undefined) throw new Error(`unknown entity ${m}`);
    return e;
  });
}

export function parseXml(source: string): XmlNode {
  let i = 0;
  const stack: XmlNode[] = [];
  let root: XmlNode | undefined;
  while (i < source.length) {
    const lt = source.indexOf('<', i);
    if (lt < 0) {
      if (source.slice(i).trim() !== '') throw new Error('text after the root element');
      break;
    }
    if (lt > i) {
      const text = source.slice(i, lt);
      const top = stack.at(-1);
      if (top !== undefined) top.text += decode(text);
      else if (text.trim() !== '') throw new Error('text outside the root element');
    }
    if (source.startsWith('<?', lt)) {
      i = source.indexOf('?>', lt) + 2;
      if (i < 2) throw new Error('unterminated declaration');
      continue;
    }
    if (source.startsWith('<!--', lt)) {
      i = source.indexOf('-->', lt) + 3;
      if (i < 3) throw new Error('unterminated comment');
      continue;
    }
    if (source.startsWith('<![CDATA[', lt)) {
      const end = source.indexOf(']]>', lt);
      if (end < 0) throw new Error('unterminated CDATA');
      const top = stack.at(-1);
      if (top === undefined) throw new Error('CDATA outside the root element');
      top.text += source.slice(lt + 9, end);
      i = end + 3;
      continue;
    }
    const gt = source.indexOf('>', lt);
    if (gt < 0) throw new Error('unterminated tag');
    const tag = source.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim();
      const open = stack.pop();
      if (open === undefined || open.name !== name)
        throw new Error(`</${name}> closes ${open === undefined ? 'nothing' : `<${open.name}>`}`);
      continue;
    }
    const selfClosing = tag.endsWith('/');
    const body = selfClosing ? tag.slice(0, -1) : tag;
    const m = /^([A-Za-z_][\w.:-]*)([\s\S]*)$/.exec(body.trim());
    if (m === null) throw new Error(`bad tag <${tag}>`);
    const attributes: Record<string, string> = {};
    for (const a of (m[2] ?? '').matchAll(/([\w.:-]+)\s*=\s*("([^"]*)"|'([^']*)')/g))
      attributes[a[1] ?? ''] = decode(a[3] ?? a[4] ?? '');
    const node: XmlNode = { name: m[1] ?? '', attributes, children: [], text: '' };
    const parent = stack.at(-1);
    if (parent !== undefined) parent.children.push(node);
    else if (root === undefined) root = node;
    else throw new Error('two root elements');
    if (!selfClosing) stack.push(node);
  }
  if (stack.length > 0) throw new Error(`<${stack.at(-1)?.name}> is not closed`);
  if (root === undefined) throw new Error('no root element');
  return root;
}
