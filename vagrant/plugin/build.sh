#!/usr/bin/env bash
# Build the TCG instruction-counting plugin (vagrant/plugin/insncount.c) into
# build/vm/libinsncount.so. Idempotent and quick when up to date; called by scripts/setup.sh.
#
# qemu-plugin.h (plugin API v1 for QEMU 7.2) is not packaged prebuilt by Debian: it is taken from
# the source package of the installed QEMU (`apt-get source --download-only`) into build/ and
# never committed. glib is not needed: the header only includes it when built inside QEMU.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=$ROOT/build/vm
SRC=$ROOT/vagrant/plugin/insncount.c
HDRDIR=$OUT/qemu-plugin-api
HDR=$HDRDIR/qemu/qemu-plugin.h
SO=$OUT/libinsncount.so
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
say() { printf '[plugin] %s\n' "$*" >&2; }

mkdir -p "$OUT"
ver=$(dpkg-query -W -f='${source:Version}' qemu-system-x86 2>/dev/null || true)
[ -n "$ver" ] || { say "qemu-system-x86 is not installed"; exit 1; }
stamp=$HDRDIR/.version
if [ ! -f "$HDR" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$ver" ]; then
  # The source of exactly the installed version must be reachable: bookworm (point releases)
  # and bookworm-security carry it; backports would give a newer, incompatible API.
  if ! apt-cache showsrc qemu 2>/dev/null | grep -qx "Version: $ver"; then
    list=/etc/apt/sources.list.d/xdp-nf-debian-src.sources
    if [ ! -f "$list" ] || ! grep -q debian-security "$list"; then
      say "adding deb-src entries for bookworm and bookworm-security ($list)"
      $SUDO tee "$list" >/dev/null <<SRCS
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRCS
    fi
    $SUDO apt-get update -qq
  fi
  dl=$OUT/qemu-src
  rm -rf "$dl"; mkdir -p "$dl"
  say "fetching the qemu $ver source package for qemu-plugin.h"
  (cd "$dl" && apt-get source --download-only -qq "qemu=$ver" >/dev/null)
  orig=$(ls "$dl"/qemu_*.orig.tar.* | head -n1)
  mkdir -p "$HDRDIR/qemu"
  tar -xOf "$orig" --wildcards '*/include/qemu/qemu-plugin.h' >"$HDR.tmp"
  grep -q 'QEMU_PLUGIN_VERSION' "$HDR.tmp" || { say "no plugin API header in $orig"; exit 1; }
  mv "$HDR.tmp" "$HDR"
  echo "$ver" >"$stamp"
  rm -rf "$dl"   # ~80 MB we no longer need
fi

if [ ! -f "$SO" ] || [ "$SRC" -nt "$SO" ] || [ "$HDR" -nt "$SO" ] || [ "$0" -nt "$SO" ]; then
  say "building $SO"
  gcc -O2 -g -Wall -Wextra -Werror -std=gnu11 -shared -fPIC -I "$HDRDIR" \
      -o "$SO.tmp" "$SRC"
  mv "$SO.tmp" "$SO"
fi
