"""The module through DKMS in the VM tier (tests/kmod/test_dkms.py), without touching the host.

DKMS writes to /var/lib/dkms, /usr/src and /lib/modules/<kernel>. The guest sees the host's root
read-only, and the host is shared, so every DKMS step runs in a private mount namespace where
those directories are a scratch directory under /tmp (which the guest shares) or overlays whose
upper layers live there:

- host, before the boot (nf/vm/pytest_plugin.py calls prepare() when a selected test uses the
  ``dkms_scratch`` fixture): ``make -C kmod dkms-install KERNELVER=<guest kernel>`` -- the user's
  command: dkms add, build, install -- then the kernel-upgrade path: ``dkms unbuild`` and the
  kernel packages' hook ``/etc/kernel/postinst.d/dkms <kernel>`` (what installing a kernel
  runs), which must build and install the module again (AUTOINSTALL in kmod/dkms.conf).
- guest: the module dir with the host's upper layer stacked over it (guest_shell()), so
  ``modprobe enetstl`` finds the DKMS module through the depmod data DKMS wrote.

The module is built on the host for the guest's kernel (dkms -k, the path a kernel installed but
not yet booted takes): DKMS's own build under QEMU TCG takes longer than the whole VM tier
(dkms is a shell script of many short processes, ~0.2 s each under TCG, and so is Kbuild).
"""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from nf import __version__

ROOT = Path(__file__).resolve().parents[2]
SCRATCH_ENV, ERROR_ENV = "NF_DKMS_SCRATCH", "NF_DKMS_ERROR"
PACKAGE = f"enetstl/{__version__}"


def _mounts(scratch: Path, kver: str, guest: bool) -> str:
    """Shell lines mounting the scratch layers. Host: /var/lib/dkms is the scratch's own (empty)
    DKMS tree, so other DKMS modules of the machine stay out; /usr/src and the kernel's module dir
    are overlays with their upper layers in the scratch dir. Guest: the module dir only (modprobe
    needs nothing else), read-only, the host's upper layer stacked over the real dir."""
    modules = f"/usr/lib/modules/{kver}"
    lines = ["modprobe overlay 2>/dev/null || true"]
    if guest:  # read-only: two lower layers, no upper
        lines.append(f"mount -t overlay overlay -o lowerdir={scratch / 'modules'}:{modules} {modules}")
        return "\n".join(lines)
    lines += [f"mkdir -p {scratch / 'dkms'}", f"mount --bind {scratch / 'dkms'} /var/lib/dkms"]
    for d, n in (("/usr/src", "src"), (modules, "modules")):
        lines += [f"mkdir -p {scratch / n} {scratch / 'work' / n}",
                  f"mount -t overlay overlay -o lowerdir={d},upperdir={scratch / n},"
                  f"workdir={scratch / 'work' / n} {d}"]
    return "\n".join(lines)


def _in_namespace(script: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-ec", script],
                          capture_output=True, text=True, timeout=timeout)


def prepare(rundir: Path) -> dict[str, str]:
    """Host side: DKMS builds and installs the module for the guest kernel, twice (the user's
    command, then the kernel hook after `dkms unbuild`). Returns the guest's environment:
    {SCRATCH_ENV: dir} or {ERROR_ENV: what failed}."""
    from nf.vm.runner import find_kernel, kernel_release

    kver = kernel_release(find_kernel())
    scratch = Path(tempfile.mkdtemp(prefix="dkms-", dir=rundir))
    script = f"""{_mounts(scratch, kver, guest=False)}
make --no-print-directory -C {ROOT / 'kmod'} dkms-install KERNELVER={kver} ENETSTL_VERSION={__version__}
echo "STATUS after make dkms-install: $(dkms status {PACKAGE} -k {kver})"
dkms unbuild {PACKAGE} -k {kver}
echo "STATUS after unbuild: $(dkms status {PACKAGE} -k {kver})"
/etc/kernel/postinst.d/dkms {kver}
echo "STATUS after the kernel hook: $(dkms status {PACKAGE} -k {kver})"
"""
    try:
        p = _in_namespace(script, timeout=900)
    except subprocess.TimeoutExpired:
        return {ERROR_ENV: "host DKMS steps timed out after 900 s"}
    (scratch / "host.log").write_text(p.stdout + p.stderr)
    if p.returncode != 0:
        return {ERROR_ENV: f"host DKMS steps failed (rc {p.returncode}):\n{(p.stdout + p.stderr)[-3000:]}"}
    return {SCRATCH_ENV: str(scratch)}


def guest_shell(scratch: Path, commands: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Guest side: run shell commands with the host's DKMS results mounted where DKMS and
    modprobe look for them."""
    kver = subprocess.run(["uname", "-r"], capture_output=True, text=True).stdout.strip()
    return _in_namespace(f"{_mounts(scratch, kver, guest=True)}\n{commands}", timeout)


def host_log(scratch: Path) -> str:
    return (scratch / "host.log").read_text()
