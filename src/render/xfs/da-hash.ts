/** The name hash of XFS directories and attributes (xfs_da_hashname). */
export function daHash(name: Uint8Array): number {
  const rol = (x: number, n: number): number => ((x << n) | (x >>> (32 - n))) >>> 0;
  let h = 0;
  let i = 0;
  for (; name.length - i >= 4; i += 4)
    h =
      ((name[i]! << 21) ^
        (name[i + 1]! << 14) ^
        (name[i + 2]! << 7) ^
        name[i + 3]! ^
        rol(h, 28)) >>>
      0;
  switch (name.length - i) {
    case 3:
      return ((name[i]! << 14) ^ (name[i + 1]! << 7) ^ name[i + 2]! ^ rol(h, 21)) >>> 0;
    case 2:
      return ((name[i]! << 7) ^ name[i + 1]! ^ rol(h, 14)) >>> 0;
    case 1:
      return (name[i]! ^ rol(h, 7)) >>> 0;
    default:
      return h;
  }
}
