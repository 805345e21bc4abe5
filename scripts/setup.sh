#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine (root): Debian packages, bpffs, a venv with
# the nf package. Fast when everything is already present. Used by ./run for every command.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

say() { printf '[setup] %s\n' "$*" >&2; }

# Packages from bookworm proper / bookworm-security.
BASE_PKGS=(clang-19 llvm-19 lld-19 make gcc libc6-dev libelf-dev zlib1g-dev iproute2 ethtool
           python3-venv python3-dev qemu-system-x86 busybox-static pahole kmod cpio
           linux-image-6.12-cloud-amd64 linux-headers-6.12-cloud-amd64 dpkg-dev vagrant
           dkms)  # dkms: the module through DKMS (tests/kmod/test_dkms.py builds it for the guest)
# Pinned one by one to bookworm-backports: `-t bookworm-backports` would also pull
# linux-libc-dev and linux-perf forward.
BPO_PKGS=(libbpf1 libbpf-dev bpftool)

missing=()
for p in "${BASE_PKGS[@]}" "${BPO_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# libbpf must be the backports 1.4 series: the ctypes layer uses its 1.x API.
if ! dpkg-query -W -f='${Version}' libbpf1 2>/dev/null | grep -q '^1:1\.[4-9]'; then
  missing+=(libbpf1 libbpf-dev)
fi

if [ ${#missing[@]} -gt 0 ]; then
  say "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  list=/etc/apt/sources.list.d/xdp-nf-debian.sources
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    $SUDO tee "$list" >/dev/null <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  $SUDO apt-get update -qq
  bpo=(); for p in "${BPO_PKGS[@]}"; do bpo+=("$p/bookworm-backports"); done
  $SUDO apt-get install -y -qq --no-install-recommends "${BASE_PKGS[@]}" "${bpo[@]}" >/dev/null
fi

# bpffs: pinned deployments and maps live there.
if ! mount | grep -q ' /sys/fs/bpf type bpf'; then
  $SUDO mount -t bpf bpf /sys/fs/bpf
fi

# Virtualenv on Debian's interpreter (an absolute path the VM guest can run too).
VENV=$ROOT/.venv
stamp=$VENV/.installed-$(sha1sum pyproject.toml | cut -c1-12)
if [ ! -x "$VENV/bin/python" ] || [ ! -e "$stamp" ]; then
  say "creating $VENV"
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e ".[dev]"
  rm -f "$VENV"/.installed-*; touch "$stamp"
fi
"$ROOT/vagrant/plugin/build.sh"  # TCG instruction counter (needs qemu-plugin.h from deb-src)
say "ok"
