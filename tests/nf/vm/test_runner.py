"""nf/vm/runner.py on the host: initramfs format, accelerator choice, kernel choice, and real
boots (command results, timeouts, failure reports). Boots need QEMU + the 6.12 cloud kernel."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nf.testing.tiers import require
from nf.vm import runner
from nf.vm.runner import Vm, VmError


def _parse_newc(data: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    out, off = {}, 0
    while True:
        hdr = data[off:off + 110]
        assert hdr[:6] == b"070701", hdr[:6]
        f = [int(hdr[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        mode, size, rdev, namesize = f[1], f[6], (f[9], f[10]), f[11]
        name = data[off + 110:off + 110 + namesize - 1].decode()
        off = (off + 110 + namesize + 3) & ~3
        body = data[off:off + size]
        off = (off + size + 3) & ~3
        if name == "TRAILER!!!":
            return out
        out[name] = (mode, body, rdev)


def test_cpio_newc_round_trip():
    import stat
    data = runner._cpio_newc([("d", stat.S_IFDIR | 0o755, b"", (0, 0)),
                              ("d/f", stat.S_IFREG | 0o644, b"hello", (0, 0)),
                              ("c", stat.S_IFCHR | 0o600, b"", (5, 1))])
    assert len(data) % 4 == 0
    entries = _parse_newc(data)
    assert entries["d/f"] == (stat.S_IFREG | 0o644, b"hello", (0, 0))
    assert entries["c"][2] == (5, 1)
    assert stat.S_ISDIR(entries["d"][0])


def test_initramfs_holds_busybox_and_our_init(tmp_path, monkeypatch):
    require(not any("busybox" in m for m in runner.prerequisites()), "busybox-static missing")
    monkeypatch.setattr(runner, "BUILD", tmp_path)
    path = runner.initramfs()
    entries = _parse_newc(path.read_bytes())
    assert entries["init"][1] == runner.INIT_SCRIPT.read_bytes()
    assert entries["bin/busybox"][1] == Path(runner.find_busybox()).read_bytes()
    assert entries["dev/console"][2] == (5, 1)
    mtime = path.stat().st_mtime_ns
    assert runner.initramfs().stat().st_mtime_ns == mtime  # not rebuilt when fresh


def test_newest_kernel_is_chosen(monkeypatch):
    monkeypatch.delenv("NF_VM_KERNEL", raising=False)
    monkeypatch.setattr(runner.glob, "glob", lambda pat: [
        "/boot/vmlinuz-6.12.9+deb12-cloud-amd64", "/boot/vmlinuz-6.12.117+deb12-cloud-amd64",
        "/boot/vmlinuz-6.12.38+deb12-cloud-amd64"])
    assert runner.find_kernel().name == "vmlinuz-6.12.117+deb12-cloud-amd64"
    monkeypatch.setattr(runner.glob, "glob", lambda pat: [])
    with pytest.raises(runner.VmUnavailable, match="linux-image-6.12-cloud-amd64"):
        runner.find_kernel()


def test_accel_choice(monkeypatch):
    monkeypatch.setenv("NF_VM_ACCEL", "tcg")
    assert runner.choose_accel()[0] == "tcg"
    monkeypatch.delenv("NF_VM_ACCEL")
    ok, why = runner.kvm_usable()
    if os.path.isdir("/sys/module/kvm_pvm"):
        # this machine: /dev/kvm exists but is the PVM hypervisor
        assert not ok and "kvm_pvm" in why
        assert runner.choose_accel()[0] == "tcg"
    elif not os.path.exists("/dev/kvm"):
        assert not ok


def _need_vm():
    missing = runner.prerequisites()
    require(not missing, "; ".join(missing))


def test_boot_runs_commands_and_reports_results():
    _need_vm()
    with Vm() as vm:
        assert vm.info.accel in ("tcg", "kvm")
        assert vm.info.uname == runner.kernel_release(runner.find_kernel())
        assert 0 < vm.info.boot_s < 180
        r = vm.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
        assert (r.rc, r.stdout, r.stderr) == (3, b"out\n", b"err\n")
        # guest environment: read-only root, writable /tmp (shared with the host), no pyc
        r = vm.run([runner.repo_python(), "-c",
                    "import os,sys; print(os.environ['HOME'], os.environ['PYTHONDONTWRITEBYTECODE'],"
                    " os.environ['NF_IN_GUEST'], os.access('/usr', os.W_OK))"])
        assert r.stdout.split() == [b"/tmp", b"1", b"1", b"False"], r.output
        marker = Path(f"/tmp/nf-vm-test-{os.getpid()}")
        try:
            assert vm.run(["sh", "-c", f"echo from-guest > {marker}"]).rc == 0
            assert marker.read_text() == "from-guest\n"
        finally:
            marker.unlink(missing_ok=True)
        streamed = []
        r = vm.run(["sh", "-c", "echo a; sleep 30"], timeout=2,
                   on_output=lambda s, c: streamed.append((s, c)))
        assert r.timed_out and r.rc == -9 and streamed == [("o", b"a\n")]
        assert vm.run(["true"]).rc == 0  # still serving after a killed command
        assert vm.run(["/nonexistent"]).rc == 127
        qemu = vm.qemu
    assert qemu.poll() is not None  # QEMU is gone after close()


def test_boot_failure_reports_console_tail():
    _need_vm()
    with pytest.raises(VmError, match=r"(?s)guest console.*nf-init: FAILED: insmod /etc/hostname"):
        Vm(insmod="/etc/hostname").start()


def test_cli_exit_code_and_output():
    _need_vm()
    p = subprocess.run([sys.executable, "-m", "nf.vm", "run", "--", "sh", "-c",
                        "uname -r; echo e >&2; exit 7"], capture_output=True, text=True,
                       timeout=300, cwd=runner.ROOT)
    assert p.returncode == 7, p.stderr
    assert p.stdout.strip() == runner.kernel_release(runner.find_kernel())
    assert p.stderr == "e\n"


def test_qemu_and_virtiofsd_die_with_a_killed_runner():
    _need_vm()
    code = ("import os; from nf.vm import Vm; vm = Vm().start(); "
            "print(vm.qemu.pid, *[p.pid for p in vm.fsd], flush=True); os.kill(os.getpid(), 9)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       cwd=runner.ROOT)
    assert p.returncode == -9, p.stderr
    pids = [int(x) for x in p.stdout.split()]
    assert len(pids) == 3
    import time
    deadline = time.monotonic() + 10
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [pid for pid in pids if os.path.exists(f"/proc/{pid}")
                 and "Z" not in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]]
    assert not alive, f"still running after the runner was SIGKILLed: {alive}"


def test_early_kernel_panic_is_retried_once_then_reported():
    _need_vm()
    # no init in the initramfs under that name and no root device: the kernel panics
    vm = Vm(extra_cmdline="rdinit=/no-such-init root=/dev/no-such-disk", boot_timeout=120)
    with pytest.raises(VmError, match=r"(?s)Kernel panic.*--- first attempt ---.*Kernel panic"):
        vm.start()
    assert vm.qemu is None or vm.qemu.poll() is not None
