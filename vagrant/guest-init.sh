#!/bin/busybox sh
# /init of the nf.vm initramfs (busybox-static). Mounts the host root (virtiofs tag "hostroot",
# read-only) and the host /tmp (tag "hosttmp", read-write), gives the chroot its own proc, sys,
# dev, bpffs, debugfs and tracefs, brings lo up, loads veth (a module in the cloud kernel; the
# host's linux-image package put the guest's modules under /usr/lib/modules) and runs the command
# agent (nf/vm/agent.py) inside the chroot. Parameters come from the kernel command line:
#   nf.python=<absolute interpreter>  nf.agent=<path of agent.py>  nf.insmod=<path of a .ko>
/bin/busybox --install -s /bin
export PATH=/bin
R=/newroot

fail() {
  echo "nf-init: FAILED: $*" >/dev/console
  poweroff -f
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec >/dev/console 2>&1

PY=/usr/bin/python3; AGENT=; INSMOD=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    nf.python=*) PY=${arg#nf.python=} ;;
    nf.agent=*)  AGENT=${arg#nf.agent=} ;;
    nf.insmod=*) INSMOD=${arg#nf.insmod=} ;;
  esac
done
[ -n "$AGENT" ] || fail "no nf.agent= on the kernel command line"

mkdir -p $R
mount -t virtiofs -o ro hostroot $R || fail "mount virtiofs hostroot"
mount -t virtiofs hosttmp $R/tmp || fail "mount virtiofs hosttmp"
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
# What udev would add: bash's <(...) (dkms uses it) needs /dev/fd.
ln -s /proc/self/fd $R/dev/fd
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
mount -t tmpfs tmpfs $R/run
mount -t bpf bpf $R/sys/fs/bpf || fail "mount bpffs"
mount -t debugfs debugfs $R/sys/kernel/debug
mount -t tracefs tracefs $R/sys/kernel/tracing
hostname nf-guest
ip link set lo up
# BPF JIT symbols in /proc/kallsyms let the instruction counter name BPF programs.
echo 1 > /proc/sys/net/core/bpf_jit_kallsyms
echo 0 > /proc/sys/kernel/bpf_stats_enabled
echo 0 > /proc/sys/kernel/kptr_restrict
chroot $R /sbin/modprobe veth || echo "nf-init: modprobe veth failed"
if [ -n "$INSMOD" ]; then
  chroot $R /sbin/insmod "$INSMOD" || fail "insmod $INSMOD"
fi
echo "nf-init: starting agent"
chroot $R "$PY" "$AGENT"
echo "nf-init: agent exited with $?"
sync
poweroff -f
