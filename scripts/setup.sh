#!/usr/bin/env bash
# Installs everything ferry's tests need on a fresh Debian machine:
# qemu-utils (the peer every format is checked against), GNU tar and the
# `time` tool for benchmarks, python3-libvhdi (a second VHD reader), then
# the npm packages from the lockfile (which also builds the optional SEEK_DATA
# binding and compiles TypeScript).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v qemu-img >/dev/null 2>&1 || missing+=(qemu-utils)
command -v tar >/dev/null 2>&1 || missing+=(tar)
[ -x /usr/bin/time ] || missing+=(time)
# libvhdi: an independent, spec-following VHD reader the vhd tests check ferry's output with.
/usr/bin/python3 -c 'import pyvhdi' >/dev/null 2>&1 || missing+=(python3-libvhdi)
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
fi

npm ci --no-audit --no-fund
