/**
 * Builds a small Windows registry hive (regf) in memory, for tests: nested
 * keys with REG_SZ and REG_DWORD values. Checked against hivexget (libhivex)
 * so the reader is tested against an independent implementation.
 */
export interface HiveKey {
  readonly values?: Readonly<Record<string, string | number>>;
  readonly keys?: Readonly<Record<string, HiveKey>>;
}

export function buildHive(root: HiveKey, rootName = 'ROOT'): Buffer {
  const cells: Buffer[] = [];
  let used = 32; // after the hbin header
  const alloc = (data: Buffer): number => {
    const size = Math.ceil((data.length + 4) / 8) * 8;
    const cell = Buffer.alloc(size);
    cell.writeInt32LE(-size, 0);
    data.copy(cell, 4);
    const off = used;
    cells.push(cell);
    used += size;
    return off;
  };
  const writeKey = (name: string, key: HiveKey, parent: number, isRoot: boolean): number => {
    // Reserve the nk cell first so that children can point at their parent.
    const nameBuf = Buffer.from(name, 'latin1');
    const nk = Buffer.alloc(76 + nameBuf.length);
    const nkOff = alloc(nk);
    const nkCellIndex = cells.length - 1;
    const subs = Object.entries(key.keys ?? {}).sort(([a], [b]) =>
      a.toUpperCase().localeCompare(b.toUpperCase()),
    );
    const childOffs = subs.map(([n, k]) => writeKey(n, k, nkOff, false));
    let listOff = 0xffffffff;
    if (childOffs.length > 0) {
      const lf = Buffer.alloc(4 + childOffs.length * 8);
      lf.write('lf', 0, 'latin1');
      lf.writeUInt16LE(childOffs.length, 2);
      for (const [i, o] of childOffs.entries()) {
        lf.writeUInt32LE(o, 4 + i * 8);
        lf.write(`${subs[i]![0]}\0\0\0\0`.slice(0, 4), 8 + i * 8, 'latin1');
      }
      listOff = alloc(lf);
    }
    const vals = Object.entries(key.values ?? {});
    const vkOffs = vals.map(([n, v]) => {
      const nb = Buffer.from(n, 'latin1');
      const vk = Buffer.alloc(20 + nb.length);
      vk.write('vk', 0, 'latin1');
      vk.writeUInt16LE(nb.length, 2);
      vk.writeUInt16LE(1, 16);
      nb.copy(vk, 20);
      if (typeof v === 'number') {
        vk.writeUInt32LE(0x80000004, 4);
        vk.writeUInt32LE(v, 8);
        vk.writeUInt32LE(4, 12);
      } else {
        const data = Buffer.from(`${v}\0`, 'utf16le');
        vk.writeUInt32LE(data.length, 4);
        vk.writeUInt32LE(alloc(data), 8);
        vk.writeUInt32LE(1, 12);
      }
      return alloc(vk);
    });
    let valueList = 0xffffffff;
    if (vkOffs.length > 0) {
      const vl = Buffer.alloc(vkOffs.length * 4);
      for (const [i, o] of vkOffs.entries()) vl.writeUInt32LE(o, i * 4);
      valueList = alloc(vl);
    }
    nk.write('nk', 0, 'latin1');
    nk.writeUInt16LE(isRoot ? 0x2c : 0x20, 2);
    nk.writeUInt32LE(parent, 16);
    nk.writeUInt32LE(childOffs.length, 20);
    nk.writeUInt32LE(listOff, 28);
    nk.writeUInt32LE(0xffffffff, 32);
    nk.writeUInt32LE(vkOffs.length, 36);
    nk.writeUInt32LE(valueList, 40);
    nk.writeUInt32LE(0xffffffff, 44);
    nk.writeUInt32LE(0xffffffff, 48);
    nk.writeUInt16LE(nameBuf.length, 72);
    nameBuf.copy(nk, 76);
    nk.copy(cells[nkCellIndex]!, 4);
    return nkOff;
  };
  const rootOff = writeKey(rootName, root, 0xffffffff, true);
  const hbinSize = Math.ceil(used / 4096) * 4096;
  const free = hbinSize - used;
  if (free > 0) {
    const f = Buffer.alloc(free);
    f.writeInt32LE(free, 0);
    cells.push(f);
  }
  const hbin = Buffer.alloc(32);
  hbin.write('hbin', 0, 'latin1');
  hbin.writeUInt32LE(0, 4);
  hbin.writeUInt32LE(hbinSize, 8);
  const base = Buffer.alloc(4096);
  base.write('regf', 0, 'latin1');
  base.writeUInt32LE(1, 4);
  base.writeUInt32LE(1, 8);
  base.writeUInt32LE(1, 20);
  base.writeUInt32LE(5, 24);
  base.writeUInt32LE(0, 28);
  base.writeUInt32LE(1, 32);
  base.writeUInt32LE(rootOff, 36);
  base.writeUInt32LE(hbinSize, 40);
  base.writeUInt32LE(1, 44);
  let sum = 0;
  for (let i = 0; i < 508; i += 4) sum = (sum ^ base.readUInt32LE(i)) >>> 0;
  base.writeUInt32LE(sum === 0 ? 1 : sum === 0xffffffff ? 0xfffffffe : sum, 508);
  return Buffer.concat([base, hbin, ...cells]);
}
