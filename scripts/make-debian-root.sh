#!/usr/bin/env bash
# Builds the Debian trees the inspect corpus is made of, once, into a cache:
#
#   $CACHE/debian-12-root    debootstrap --variant=minbase bookworm with the
#                            Debian cloud kernel, initramfs-tools (so a real
#                            initrd), systemd-sysv and udev
#   $CACHE/grub-legacy       the unpacked grub-legacy package (its stage1 boot code)
#   $CACHE/i386-kernel       the contents of Debian's 32-bit linux-image-686-pae
#                            package (vmlinuz and modules), for the
#                            "32-bit Linux" verdict
#
# CACHE is $FERRY_CORPUS_CACHE, else ~/.cache/ferry. A finished tree carries a
# .ferry-complete stamp; a half-built one (a killed run) is removed and built
# again. Needs root (debootstrap chroots) and the network path to Debian's
# mirror that apt uses. Takes 3-6 minutes the first time, nothing after.
set -euo pipefail

CACHE="${FERRY_CORPUS_CACHE:-$HOME/.cache/ferry}"
MIRROR="${FERRY_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
ROOT="$CACHE/debian-12-root"
I386="$CACHE/i386-kernel"
mkdir -p "$CACHE"

if [ "$(id -u)" -ne 0 ]; then
  echo "make-debian-root: needs root (debootstrap); skipping" >&2
  exit 0
fi

apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    apt-get -o DPkg::Lock::Timeout=600 update -q
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
      --no-install-recommends "${missing[@]}"
  fi
}

if [ ! -e "$ROOT/.ferry-complete" ]; then
  apt_install debootstrap
  rm -rf "$ROOT" "$ROOT.tmp"
  echo "make-debian-root: debootstrap $SUITE into $ROOT (a few minutes)" >&2
  debootstrap --variant=minbase \
    --include=linux-image-cloud-amd64,initramfs-tools,systemd-sysv,udev \
    "$SUITE" "$ROOT.tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 || {
    tail -20 "$CACHE/debootstrap.log" >&2
    exit 1
  }
  # Nothing of the build machine stays in the tree.
  rm -rf "$ROOT.tmp/var/cache/apt/archives/"*.deb "$ROOT.tmp/var/lib/apt/lists/"*
  : >"$ROOT.tmp/etc/machine-id"
  mv "$ROOT.tmp" "$ROOT"
  touch "$ROOT/.ferry-complete"
fi

if [ ! -e "$I386/.ferry-complete" ]; then
  rm -rf "$I386" "$I386.tmp"
  mkdir -p "$I386.tmp/lists/partial" "$I386.tmp/cache/archives/partial"
  # An i386 package list of its own, so the host's apt configuration is untouched.
  apt_i386=(-o "Dir::State::Lists=$I386.tmp/lists" -o "Dir::Cache=$I386.tmp/cache"
    -o APT::Architecture=i386 -o APT::Architectures::=i386)
  apt-get "${apt_i386[@]}" update -q >/dev/null
  # The metapackage names the versioned image package; fetch that one.
  pkg=$(apt-cache "${apt_i386[@]}" depends linux-image-686-pae |
    awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  (cd "$I386.tmp" && apt-get "${apt_i386[@]}" download -q "$pkg" 2>/dev/null)
  dpkg-deb -x "$I386.tmp"/*.deb "$I386.tmp/tree"
  # Keep the kernel and the module indexes; the .ko files are not needed.
  find "$I386.tmp/tree" -name '*.ko' -delete
  rm -rf "$I386.tmp"/*.deb "$I386.tmp/lists" "$I386.tmp/cache" "$I386.tmp/tree/usr/share"
  mv "$I386.tmp" "$I386"
  touch "$I386/.ferry-complete"
fi
# GRUB legacy's boot code for the boot-code tests, unpacked rather than
# installed: the grub-legacy package conflicts with grub2-common (libguestfs).
LEGACY="$CACHE/grub-legacy"
if [ ! -e "$LEGACY/.ferry-complete" ]; then
  rm -rf "$LEGACY" "$LEGACY.tmp"
  mkdir -p "$LEGACY.tmp"
  (cd "$LEGACY.tmp" && apt-get download -q grub-legacy >/dev/null 2>&1)
  dpkg-deb -x "$LEGACY.tmp"/grub-legacy_*.deb "$LEGACY.tmp/tree"
  rm "$LEGACY.tmp"/*.deb
  mv "$LEGACY.tmp" "$LEGACY"
  touch "$LEGACY/.ferry-complete"
fi
echo "$CACHE"
