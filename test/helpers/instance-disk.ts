/**
 * A small bootable disk for instance tests: the busybox revision the render
 * boot tests use (a static busybox, Debian's kernel and initramfs from the
 * test corpus), rendered GPT with GRUB for SeaBIOS and OVMF. Its /sbin/init
 * counts its boots in /boot-count on the root filesystem (so a test sees
 * whether the guest's writes survived), prints the count on the serial
 * console, powers off on the ACPI power button (busybox acpid), and powers
 * itself off on its third boot.
 */
import { chmod, copyFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { corpusTrees } from '../../scripts/inspect-corpus.js';
import { renderDisk } from '../../src/render/index.js';
import { ingestDirectory, LocalStore } from '../../src/store/index.js';
import { bootTestsMissing } from './boot.js';

export const BOOT_LINE = /FERRY-INSTANCE-BOOT count=(\d+)/g;

/** Why the QEMU instance tests cannot run here, or null. */
export function instanceDiskMissing(): string | null {
  const found = corpusTrees();
  if ('missing' in found) return found.missing;
  return bootTestsMissing();
}

const INIT = `#!/bin/busybox sh
bb=/bin/busybox
$bb mount -t proc proc /proc
$bb mount -t sysfs sys /sys
$bb mount -t devtmpfs dev /dev 2>/dev/null
$bb mount -o remount,rw /
for m in /lib/ferry-modules/*.ko; do $bb insmod "$m" 2>/dev/null; done
n=$($bb cat /boot-count 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > /boot-count
$bb sync
if [ "$n" -ge 3 ]; then
  echo "FERRY-INSTANCE-BOOT count=$n" > /dev/console
  echo "FERRY-INSTANCE-POWEROFF" > /dev/console
  $bb poweroff -f
fi
# Give devtmpfs a moment to make the power button's event node before acpid opens them,
# and acpid a moment to open them before the boot is announced (a test may stop it then).
$bb sleep 1
$bb acpid -d -c /etc/acpi -p /tmp/acpid.pid > /dev/console 2>&1 &
$bb sleep 1
echo "FERRY-INSTANCE-BOOT count=$n" > /dev/console
while true; do $bb sleep 3600; done
`;

const POWER_BUTTON = `#!/bin/busybox sh
echo "FERRY-INSTANCE-ACPI-POWERDOWN" > /dev/console
/bin/busybox sync
/bin/busybox poweroff -f
`;

/** Renders the disk to `out` (raw) using `scratch` for the store and tree. */
export async function makeInstanceDisk(scratch: string, out: string): Promise<void> {
  const found = corpusTrees();
  if ('missing' in found) throw new Error(found.missing);
  const store = await LocalStore.open(join(scratch, 'store'));
  // Debian's kernel and initramfs, taken from the corpus tree's /boot directly (no need to
  // ingest the whole tree).
  const names = await readdir(join(found.trees.root, 'boot'));
  const kernel = names.find((n) => /^vmlinuz-\d/.test(n));
  const version = kernel?.slice('vmlinuz-'.length);
  if (kernel === undefined || !names.includes(`initrd.img-${version}`))
    throw new Error('no kernel and initramfs in the corpus tree');
  const tree = join(scratch, 'tree');
  for (const d of ['bin', 'sbin', 'boot', 'dev', 'proc', 'sys', 'run', 'tmp', 'etc/acpi/PWRF'])
    await mkdir(join(tree, d), { recursive: true });
  await copyFile('/bin/busybox', join(tree, 'bin/busybox'));
  await chmod(join(tree, 'bin/busybox'), 0o755);
  await writeFile(join(tree, 'sbin/init'), INIT, { mode: 0o755 });
  await writeFile(join(tree, 'etc/acpi/PWRF/00000080'), POWER_BUTTON, { mode: 0o755 });
  for (const f of [kernel, `initrd.img-${version}`])
    await copyFile(join(found.trees.root, 'boot', f), join(tree, 'boot', f));
  // The power button and input event drivers are modules in Debian's cloud kernel.
  await mkdir(join(tree, 'lib/ferry-modules'), { recursive: true });
  for (const m of ['drivers/input/evdev.ko', 'drivers/acpi/button.ko'])
    await copyFile(
      join(found.trees.root, 'lib/modules', version!, 'kernel', m),
      join(tree, 'lib/ferry-modules', m.replace(/^.*\//, '')),
    );
  const ingested = await ingestDirectory(store, tree);
  await renderDisk(store, ingested.revision, await store.getManifest(ingested.revision), { out });
}
