import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { InspectReport } from '../../src/inspect/index.js';
import { inspectProperties } from '../../src/publish/openstack/glance-properties.js';

type Drivers = InspectReport['kernels'][number]['drivers'];
const none: Drivers = {
  virtio_blk: 'missing',
  virtio_net: 'missing',
  virtio_scsi: 'missing',
  nvme: 'missing',
  ena: 'missing',
  xen_blkfront: 'missing',
};

/** The parts of a report the properties come from. */
function report(o: {
  distro: string | null;
  version?: string | null;
  arch?: string | null;
  type?: 'linux' | 'windows';
  drivers?: Partial<Drivers>;
  firmware?: Array<'bios' | 'uefi'>;
  kernels?: boolean;
}): InspectReport {
  return {
    os:
      o.distro === null && o.type === undefined
        ? null
        : {
            type: o.type ?? 'linux',
            distro: o.distro,
            version: o.version ?? null,
            prettyName: null,
            root: { partition: 1, type: 'ext4', uuid: null },
            arch: o.arch ?? null,
          },
    kernels:
      o.kernels === false
        ? []
        : [
            {
              path: '/boot/vmlinuz-6.1.0',
              version: '6.1.0',
              arch: 'x86_64',
              initrd: null,
              drivers: { ...none, ...o.drivers },
              default: true,
            },
          ],
    bootloader: { type: 'grub2', firmware: o.firmware ?? [] },
  } as unknown as InspectReport;
}

describe('Glance image properties from inspect', () => {
  it('maps what inspect saw to Nova’s properties', () => {
    assert.deepEqual(
      inspectProperties(
        report({
          distro: 'debian',
          version: '12',
          arch: 'amd64',
          drivers: { virtio_blk: 'module', virtio_scsi: 'builtin' },
          firmware: ['uefi'],
        }),
      ),
      {
        os_distro: 'debian',
        os_version: '12',
        os_type: 'linux',
        architecture: 'x86_64',
        hw_disk_bus: 'virtio',
        hw_firmware_type: 'uefi',
      },
    );
    assert.deepEqual(
      inspectProperties(
        report({
          distro: 'opensuse-leap',
          version: '15.5',
          arch: 'aarch64',
          drivers: { virtio_scsi: 'module' },
          firmware: ['bios', 'uefi'],
        }),
      ),
      {
        os_distro: 'opensuse',
        os_version: '15.5',
        os_type: 'linux',
        architecture: 'aarch64',
        hw_disk_bus: 'scsi',
        hw_scsi_model: 'virtio-scsi',
        hw_firmware_type: 'bios',
      },
    );
  });

  it('sets nothing it did not see, and nothing odd', () => {
    assert.deepEqual(inspectProperties(null), {});
    // An unknown distribution is not guessed; a version with spaces is not passed on.
    assert.deepEqual(
      inspectProperties(report({ distro: 'ferry-demo', version: '1 (beta)', kernels: false })),
      { os_type: 'linux' },
    );
    assert.deepEqual(
      inspectProperties(report({ distro: null, type: 'windows', arch: 'x86_64', kernels: false })),
      { os_distro: 'windows', os_type: 'windows', architecture: 'x86_64' },
    );
    // No virtio at all: hw_disk_bus is left to the cloud (inspect warns of it).
    assert.equal(inspectProperties(report({ distro: 'ubuntu' })).hw_disk_bus, undefined);
  });
});
