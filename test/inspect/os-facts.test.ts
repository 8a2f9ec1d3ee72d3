import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFerryError } from '../../src/errors/index.js';
import { readBootConfig } from '../../src/inspect/boot/boot-config.js';
import { parseKernelImage } from '../../src/inspect/kernel/kernel-image.js';
import { findKernels } from '../../src/inspect/kernel/kernels.js';
import { parseFstab } from '../../src/inspect/os/fstab.js';
import { readLinuxRelease } from '../../src/inspect/os/linux-release.js';
import { awsImportSupport } from '../../src/inspect/targets/aws-import-os.js';
import { memFs } from '../helpers/mem-fs.js';

/** A fake bzImage setup header with a version string and xloadflags. */
function bzImage(version: string, x64: boolean): Buffer {
  const b = Buffer.alloc(0x1000);
  b.write('HdrS', 0x202, 'latin1');
  b.writeUInt16LE(0x020f, 0x206);
  b.writeUInt16LE(0x800 - 0x200, 0x20e);
  b.write(`${version}\0`, 0x800, 'latin1');
  b.writeUInt16LE(x64 ? 0x7f : 0, 0x236);
  return b;
}

describe('linux release detection', () => {
  it('reads os-release with quoting, and debian_version for the point release', async () => {
    const fs = memFs({
      etc: {
        'os-release': { link: '../usr/lib/os-release' },
        debian_version: '12.5\n',
      },
      usr: {
        lib: {
          'os-release':
            'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n',
        },
      },
    });
    const r = await readLinuxRelease(fs);
    assert.deepEqual(r, {
      distro: 'debian',
      version: '12.5',
      prettyName: 'Debian GNU/Linux 12 (bookworm)',
      codename: 'bookworm',
      source: '/etc/os-release',
    });
  });

  it('falls back to *-release files and returns null without any', async () => {
    const centos = await readLinuxRelease(
      memFs({ etc: { 'redhat-release': 'CentOS Linux release 7.9.2009 (Core)\n' } }),
    );
    assert.equal(centos?.distro, 'centos');
    assert.equal(centos?.version, '7.9.2009');
    const alpine = await readLinuxRelease(memFs({ etc: { 'alpine-release': '3.19.1\n' } }));
    assert.equal(alpine?.distro, 'alpine');
    assert.equal(await readLinuxRelease(memFs({ etc: {} })), null);
  });

  it('strips control characters from hostile strings', async () => {
    const r = await readLinuxRelease(
      memFs({ etc: { 'os-release': 'ID=evil\nPRETTY_NAME="a\x1b[31mb"\n' } }),
    );
    assert.equal(r?.prettyName, 'a[31mb');
  });
});

describe('kernels', () => {
  it('reads version and arch from the bzImage header and finds initrd and drivers', async () => {
    const v = '6.1.0-18-cloud-amd64';
    const fs = memFs({
      boot: {
        [`vmlinuz-${v}`]: bzImage(`${v} (debian-kernel@lists.debian.org) #1 SMP`, true),
        [`initrd.img-${v}`]: 'x',
        'vmlinuz-3.16.0-4-686-pae': bzImage(
          '3.16.0-4-686-pae (debian-kernel@lists.debian.org) #1 SMP',
          false,
        ),
      },
      lib: { link: 'usr/lib' },
      usr: {
        lib: {
          modules: {
            [v]: {
              'modules.builtin':
                'kernel/drivers/nvme/host/nvme.ko\nkernel/drivers/block/virtio_blk.ko\n',
              kernel: {
                drivers: {
                  net: {
                    'virtio_net.ko': 'm',
                    ethernet: { amazon: { ena: { 'ena.ko.xz': 'm' } } },
                  },
                },
              },
            },
          },
        },
      },
    });
    const ks = await findKernels(fs, '/boot', fs);
    assert.equal(ks.length, 2);
    const modern = ks.find((k) => k.version === v)!;
    assert.equal(modern.arch, 'x86_64');
    assert.equal(modern.initrd, `/boot/initrd.img-${v}`);
    assert.equal(modern.drivers.nvme, 'builtin');
    assert.equal(modern.drivers.virtio_blk, 'builtin');
    assert.equal(modern.drivers.virtio_net, 'module');
    assert.equal(modern.drivers.ena, 'module');
    assert.equal(modern.drivers.xen_blkfront, 'missing');
    const old = ks.find((k) => k.version === '3.16.0-4-686-pae')!;
    assert.equal(old.arch, 'i386');
    assert.equal(old.initrd, null);
    assert.equal(old.drivers.nvme, 'unknown');
  });

  it('parses nothing from garbage', () => {
    assert.deepEqual(parseKernelImage(Buffer.alloc(100)), {
      arch: 'unknown',
      version: null,
      bootProtocol: null,
    });
  });
});

describe('boot configuration', () => {
  it('counts grub configs once per real file and sees BLS and serial consoles', async () => {
    const fs = memFs({
      boot: {
        grub2: { 'grub.cfg': 'insmod blscfg\nblscfg\n', grubenv: 'saved_entry=abc-6.1\n' },
        loader: {
          entries: {
            'abc-6.1.conf':
              'title x\nlinux /vmlinuz-6.1\noptions root=UUID=1 console=ttyS0,115200\n',
          },
        },
      },
      etc: {
        'grub2.cfg': { link: '../boot/grub2/grub.cfg' },
        'grub.conf': { link: '/boot/grub2/grub.cfg' },
      },
    });
    const c = await readBootConfig(fs);
    assert.deepEqual(c.grubConfigs, ['/boot/grub2/grub.cfg']);
    assert.equal(c.grubUsesBls, true);
    assert.deepEqual(c.blsEntries, ['abc-6.1.conf']);
    assert.equal(c.blsDefault, 'abc-6.1');
    assert.equal(c.serialConsole, true);
  });

  it('reports two different grub configs (dual boot, an AWS error)', async () => {
    const fs = memFs({
      boot: {
        grub: { 'grub.cfg': 'linux /vmlinuz root=/dev/sda1\n', 'menu.lst': 'kernel /vmlinuz\n' },
      },
    });
    const c = await readBootConfig(fs);
    assert.equal(c.grubConfigs.length, 2);
    assert.equal(c.serialConsole, false);
  });
});

describe('fstab', () => {
  it('classifies specs and flags kernel device names', () => {
    const e = parseFstab(
      '# comment\nUUID=1234-abcd / ext4 errors=remount-ro 0 1\nLABEL=boot /boot ext4 defaults 0 2\n/dev/xvda2 none swap sw 0 0\n/dev/mapper/vg-home /home xfs defaults 0 0\nproc /proc proc defaults 0 0\nbroken\n',
    );
    assert.deepEqual(
      e.map((x) => [x.kind, x.value, x.mountPoint, x.deviceName]),
      [
        ['uuid', '1234-abcd', '/', false],
        ['label', 'boot', '/boot', false],
        ['device', '/dev/xvda2', 'none', true],
        ['lvm', '/dev/mapper/vg-home', '/home', false],
        ['other', 'proc', '/proc', false],
      ],
    );
  });
});

describe('AWS VM Import OS table', () => {
  it('accepts the documented default kernels and refuses others with the reason', () => {
    assert.equal(awsImportSupport('debian', '12.5', '6.1.0-18-amd64').status, 'supported');
    assert.equal(awsImportSupport('ubuntu', '22.04', '5.15.0-91-generic').status, 'supported');
    assert.equal(
      awsImportSupport('debian', '8.11', '3.16.0-4-686-pae').status,
      'unsupported-version',
    );
    assert.equal(
      awsImportSupport('ubuntu', '18.04', '4.18.0-15-generic').status,
      'unsupported-kernel',
    );
    assert.equal(awsImportSupport('alpine', '3.19.1', '6.6.14-0-virt').status, 'unknown-os');
  });
});

describe('path walking', () => {
  it('resolves absolute symlinks inside the image and stops symlink loops', async () => {
    const fs = memFs({
      a: { link: '/b' },
      b: { link: '/a' },
      etc: { passwd: 'root:x:0:0' },
      up: { link: '../../../../etc' },
    });
    await assert.rejects(fs.readFile('/a'), (e) => isFerryError(e, 'FERRY_FS_SYMLINK_LOOP'));
    assert.equal((await fs.readText('/up/passwd'))?.startsWith('root'), true);
    assert.equal(await fs.realpath('/up/passwd'), '/etc/passwd');
  });
});
