#!/usr/bin/env bash
# Installs everything ferry's tests need on a fresh Debian machine, then the
# npm packages from the lockfile (which also builds the optional SEEK_DATA
# binding and compiles TypeScript). Tests that need a tool skip, with the
# reason, when it is missing; this script is how they never have to.
#
# Debian packages and why:
#   qemu-utils        qemu-img / qemu-io: the peer every disk format is checked against
#   tar time          OVA tests (GNU tar), peak memory in benchmarks (/usr/bin/time)
#   python3-libvhdi   an independent, spec-following VHD reader for ferry's VHD output
#   e2fsprogs xfsprogs dosfstools mtools btrfs-progs cryptsetup-bin xorriso
#                     make the filesystems inspect reads and probes (no mount needed)
#   ntfs-3g fuse3 libhivex-bin
#                     NTFS test volumes (filled through FUSE) and hivex, the oracle for hives
#   fdisk gdisk util-linux
#                     sfdisk/sgdisk build partition tables; sfdisk --json, partx, blkid check them;
#                     flock lets parallel S3 test files share one scripts/swift-s3.sh server
#   grub-pc-bin syslinux-common extlinux syslinux-efi mbr
#                     real boot code (GRUB 2, SYSLINUX/EXTLINUX, install-mbr; extlinux and
#                     syslinux-efi are what build --boot extlinux installs); GRUB legacy's
#                     stage1 is unpacked from its .deb by make-debian-root.sh, because the
#                     grub-legacy package conflicts with grub2-common, which libguestfs needs
#   grub-efi-amd64-bin debootstrap
#                     the inspect corpus: GRUB's EFI image for the ESP, and the Debian
#                     root it is built from (scripts/make-debian-root.sh, cached)
#   swift swift-proxy swift-object swift-container swift-account python3-swift memcached
#                     a real S3 server on loopback (OpenStack Swift with s3api) for the
#                     store's S3 backend, started by scripts/swift-s3.sh
#   ovmf busybox-static faketime
#                     render's tests: UEFI firmware for QEMU (SeaBIOS comes with
#                     qemu-system-x86), a static busybox for the small boot revision,
#                     and another clock for the determinism test
#   libguestfs-tools linux-image-cloud-amd64
#                     virt-inspector, the second opinion on the corpus's OS facts and
#                     inspect's benchmark peer (its appliance boots the host's kernel)
#   awscli python3-boto3 python3-botocore
#                     independent clients of the local cloud (AWS CLI v2 and boto3), and
#                     the official service models its conformance test checks against
#   python3-keystone python3-glance
#                     a real Keystone (identity v3) and Glance on loopback for the OpenStack
#                     target, started by scripts/keystone.sh (and scripts/glance.sh); the
#                     library packages only: keystone/glance-api would start services on
#                     every address from their postinst
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(qemu-utils tar time python3-libvhdi e2fsprogs xfsprogs dosfstools mtools btrfs-progs
  cryptsetup-bin xorriso ntfs-3g fuse3 libhivex-bin fdisk gdisk util-linux grub-pc-bin
  syslinux-common extlinux syslinux-efi mbr grub-efi-amd64-bin debootstrap libguestfs-tools
  linux-image-cloud-amd64 swift swift-proxy swift-object swift-container swift-account
  python3-swift memcached curl ovmf busybox-static faketime awscli python3-boto3
  python3-botocore python3-keystone python3-glance)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
fi

# The Debian trees of the inspect corpus (root only; cached after the first run).
bash scripts/make-debian-root.sh >/dev/null

npm ci --no-audit --no-fund
