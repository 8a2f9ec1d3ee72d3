import type { FsTree } from '../fs/fs-tree.js';

export interface LinuxRelease {
  /** os-release ID (debian, ubuntu, rhel, centos, fedora, alpine, sles, amzn...) or a name derived from a *-release file. */
  readonly distro: string;
  /** VERSION_ID or the version from a release file (e.g. "12", "22.04", "3.19.1"). */
  readonly version: string | null;
  readonly prettyName: string | null;
  readonly codename: string | null;
  /** The file the facts came from. */
  readonly source: string;
}

const MAX_RELEASE_BYTES = 64 * 1024;

/** Parses os-release / lsb-release KEY=value lines (shell-style quoting, bounded). */
export function parseKeyValues(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n').slice(0, 1000)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) continue;
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0]) {
      value = value.slice(1, -1).replace(/\\(["'$`\\])/g, '$1');
    }
    out.set(key, value.slice(0, 256));
  }
  return out;
}

/** Guest strings are hostile: keep printable characters only, bounded. */
export function clean(s: string | undefined | null, max = 200): string | null {
  if (s === undefined || s === null) return null;
  const t = s
    .replace(/[^\x20-\x7e\u00a0-\uffff]/g, '')
    .trim()
    .slice(0, max);
  return t === '' ? null : t;
}

const RELEASE_FILES: ReadonlyArray<{ path: string; distro: string }> = [
  { path: '/etc/redhat-release', distro: 'rhel' },
  { path: '/etc/centos-release', distro: 'centos' },
  { path: '/etc/rocky-release', distro: 'rocky' },
  { path: '/etc/fedora-release', distro: 'fedora' },
  { path: '/etc/oracle-release', distro: 'ol' },
  { path: '/etc/system-release', distro: 'amzn' },
  { path: '/etc/SuSE-release', distro: 'sles' },
  { path: '/etc/alpine-release', distro: 'alpine' },
  { path: '/etc/arch-release', distro: 'arch' },
  { path: '/etc/gentoo-release', distro: 'gentoo' },
  { path: '/etc/debian_version', distro: 'debian' },
];

function distroFromReleaseLine(line: string, fallback: string): string {
  const l = line.toLowerCase();
  if (l.includes('centos')) return 'centos';
  if (l.includes('rocky')) return 'rocky';
  if (l.includes('fedora')) return 'fedora';
  if (l.includes('oracle')) return 'ol';
  if (l.includes('amazon')) return 'amzn';
  if (l.includes('red hat')) return 'rhel';
  if (l.includes('suse')) return 'sles';
  return fallback;
}

/**
 * Identifies a Linux distribution from the files libguestfs also uses, in
 * order of trust: os-release (/etc then /usr/lib), lsb-release, then the
 * distribution-specific *-release files and debian_version.
 */
export async function readLinuxRelease(fs: FsTree): Promise<LinuxRelease | null> {
  for (const path of ['/etc/os-release', '/usr/lib/os-release']) {
    const text = await fs.readText(path, MAX_RELEASE_BYTES).catch(() => null);
    if (text === null) continue;
    const kv = parseKeyValues(text);
    const id = clean(kv.get('ID'))?.toLowerCase();
    if (id === undefined || id === null) continue;
    let version = clean(kv.get('VERSION_ID'));
    // Debian testing/sid carry no VERSION_ID; debian_version says e.g. "trixie/sid" or "12.5".
    if (id === 'debian') {
      const dv = clean(await fs.readText('/etc/debian_version', 256).catch(() => null));
      if (dv !== null && /^\d+(\.\d+)*$/.test(dv)) version = dv;
      else if (version === null && dv !== null) version = dv;
    }
    return {
      distro: id,
      version,
      prettyName: clean(kv.get('PRETTY_NAME')),
      codename: clean(kv.get('VERSION_CODENAME')),
      source: path,
    };
  }
  const lsb = await fs.readText('/etc/lsb-release', MAX_RELEASE_BYTES).catch(() => null);
  if (lsb !== null) {
    const kv = parseKeyValues(lsb);
    const id = clean(kv.get('DISTRIB_ID'))?.toLowerCase();
    if (id !== undefined && id !== null) {
      return {
        distro: id,
        version: clean(kv.get('DISTRIB_RELEASE')),
        prettyName: clean(kv.get('DISTRIB_DESCRIPTION')),
        codename: clean(kv.get('DISTRIB_CODENAME')),
        source: '/etc/lsb-release',
      };
    }
  }
  for (const { path, distro } of RELEASE_FILES) {
    const text = await fs.readText(path, 4096).catch(() => null);
    if (text === null) continue;
    const line = clean(text.split('\n')[0] ?? '') ?? '';
    const version = line.match(/(\d+(?:\.\d+)*)/)?.[1] ?? null;
    return {
      distro: distroFromReleaseLine(line, distro),
      version,
      prettyName: distro === 'debian' ? `Debian ${line}` : line || null,
      codename: null,
      source: path,
    };
  }
  return null;
}
