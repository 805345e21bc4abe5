"""Boot Debian's 6.12 cloud kernel in QEMU with the host root shared read-only, and run commands.

    with Vm(insmod=True) as vm:                 # boots once (TCG here, KVM where it is real)
        r = vm.run(["uname", "-r"])             # -> CmdResult(rc, stdout, stderr, seconds)

The guest is a busybox initramfs (built into build/vm/, rebuilt when stale) whose /init
(vagrant/guest-init.sh) mounts the host root over virtiofs (QEMU 7.2's C virtiofsd,
sandbox=chroot; the cloud kernel has no 9p), the host /tmp read-write as a second virtiofs, and
runs nf/vm/agent.py, which serves commands over a virtio-serial port. One boot serves any number
of commands. QEMU and both virtiofsd processes are killed on close(), on error and at exit.
"""
from __future__ import annotations

import atexit
import base64
import ctypes
import fcntl
import glob
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("NF_BUILD_DIR", ROOT / "build")) / "vm"
INIT_SCRIPT = ROOT / "vagrant" / "guest-init.sh"
AGENT = ROOT / "nf" / "vm" / "agent.py"
KMOD = ROOT / "kmod" / "enetstl.ko"
PLUGIN_SO = BUILD / "libinsncount.so"
PLUGIN_BUILD = ROOT / "vagrant" / "plugin" / "build.sh"
INSNCOUNT_ENV = "NF_INSNCOUNT_OUT"  # where the guest reads the plugin's result file
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
VIRTIOFSD_CANDIDATES = ("/usr/lib/qemu/virtiofsd", "/usr/libexec/virtiofsd")
QEMU = "qemu-system-x86_64"
# Isolated measuring CPU: vCPU 1 gets no timer tick, no RCU callbacks, no other tasks.
ISOLATE_CMDLINE = "nohz_full=1 isolcpus=managed_irq,domain,1 rcu_nocbs=1"
# TCG's "max" has no AVX-512 today; switching it off explicitly keeps a future QEMU from adding it
# (the design targets AVX2/BMI2 machines). Flags QEMU does not know are rejected, so this list
# holds only names QEMU 7.2 accepts.
NO_AVX512 = ("avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl", "avx512ifma",
             "avx512vbmi", "avx512vbmi2", "avx512vnni", "avx512bitalg", "avx512-vpopcntdq",
             "avx512-4vnniw", "avx512-4fmaps", "avx512-bf16", "avx512-fp16", "avx512-vp2intersect")


class VmError(RuntimeError):
    """The guest could not be booted or stopped answering. The message ends with the tail of the
    guest console."""


class VmUnavailable(VmError):
    """A prerequisite (kernel, QEMU, virtiofsd, busybox) is missing on this host."""


@dataclass
class CmdResult:
    rc: int
    stdout: bytes = b""
    stderr: bytes = b""
    seconds: float = 0.0
    timed_out: bool = False

    @property
    def output(self) -> str:
        return (self.stdout + self.stderr).decode(errors="replace")


# ---------------------------------------------------------------------------------------------
# Host prerequisites

def _version_key(path: str) -> list:
    return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", os.path.basename(path))]


def find_kernel() -> Path:
    """Newest installed /boot/vmlinuz-6.12*-cloud-amd64 (override: NF_VM_KERNEL)."""
    env = os.environ.get("NF_VM_KERNEL")
    if env:
        if not os.path.isfile(env):
            raise VmUnavailable(f"NF_VM_KERNEL={env} does not exist")
        return Path(env)
    found = sorted(glob.glob("/boot/vmlinuz-6.12*-cloud-amd64"), key=_version_key)
    if not found:
        raise VmUnavailable("no /boot/vmlinuz-6.12*-cloud-amd64: install "
                            "linux-image-6.12-cloud-amd64 (scripts/setup.sh does)")
    return Path(found[-1])


def kernel_release(kernel: Path) -> str:
    return kernel.name[len("vmlinuz-"):]


def find_virtiofsd() -> str:
    for c in VIRTIOFSD_CANDIDATES:
        if os.access(c, os.X_OK):
            return c
    found = shutil.which("virtiofsd")
    if found:
        return found
    raise VmUnavailable("virtiofsd not found (Debian ships it in qemu-system-common)")


def find_qemu() -> str:
    q = shutil.which(QEMU)
    if not q:
        raise VmUnavailable(f"{QEMU} not found: install qemu-system-x86")
    return q


def find_busybox() -> str:
    for c in BUSYBOX_CANDIDATES:
        if os.access(c, os.X_OK):
            return c
    raise VmUnavailable("busybox not found: install busybox-static")


def prerequisites() -> list[str]:
    """Human-readable list of what is missing to boot the guest; empty when all is there."""
    missing = []
    for f in (find_kernel, find_qemu, find_virtiofsd, find_busybox):
        try:
            f()
        except VmUnavailable as e:
            missing.append(str(e))
    if os.geteuid() != 0:
        missing.append("virtiofsd (sandbox=chroot) needs root")
    return missing


KVM_GET_API_VERSION = 0xAE00
KVM_CREATE_VM = 0xAE01


def kvm_usable() -> tuple[bool, str]:
    """Whether /dev/kvm is a real KVM that can boot a stock kernel.

    Checked, not assumed: the device must answer KVM_GET_API_VERSION (12) and KVM_CREATE_VM, and
    it must not be a PVM hypervisor (kvm_pvm runs only PVM-enabled guest kernels, so a stock
    Debian kernel fails there although the device works). NF_VM_ACCEL=tcg|kvm overrides.
    """
    if not os.path.exists("/dev/kvm"):
        return False, "no /dev/kvm"
    if os.path.isdir("/sys/module/kvm_pvm"):
        return False, "/dev/kvm is the kvm_pvm nested hypervisor (cannot boot a stock kernel)"
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return False, f"/dev/kvm: {e.strerror}"
    try:
        if fcntl.ioctl(fd, KVM_GET_API_VERSION, 0) != 12:
            return False, "unexpected KVM API version"
        vm = fcntl.ioctl(fd, KVM_CREATE_VM, 0)
        os.close(vm)
    except OSError as e:
        return False, f"KVM_CREATE_VM failed: {e.strerror}"
    finally:
        os.close(fd)
    if not any(os.path.isdir(f"/sys/module/{m}") for m in ("kvm_intel", "kvm_amd")):
        return False, "KVM without kvm_intel/kvm_amd (not hardware virtualisation)"
    return True, "kvm"


def choose_accel() -> tuple[str, str]:
    forced = os.environ.get("NF_VM_ACCEL", "").lower()
    if forced in ("tcg", "kvm"):
        return forced, f"NF_VM_ACCEL={forced}"
    ok, why = kvm_usable()
    return ("kvm", why) if ok else ("tcg", why)


def ensure_plugin() -> Path:
    """Build build/vm/libinsncount.so if missing or stale (vagrant/plugin/build.sh)."""
    try:
        p = subprocess.run(["bash", str(PLUGIN_BUILD)], capture_output=True, text=True,
                           timeout=600)
    except subprocess.TimeoutExpired:
        raise VmUnavailable("building the insncount plugin timed out")
    if p.returncode != 0 or not PLUGIN_SO.exists():
        raise VmUnavailable(f"cannot build the insncount plugin:\n{p.stderr[-3000:]}")
    return PLUGIN_SO


def repo_python() -> str:
    """The interpreter the guest runs: this repo's .venv (absolute; the guest has no pyenv)."""
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


# ---------------------------------------------------------------------------------------------
# initramfs

def _cpio_newc(entries: list[tuple[str, int, bytes, tuple[int, int]]]) -> bytes:
    """A newc cpio archive of (name, mode, data, (rdevmajor, rdevminor)) entries; a symlink
    carries its target as data."""
    out = bytearray()
    trailer = ("TRAILER!!!", 0, b"", (0, 0))
    for ino, (name, mode, data, (rmaj, rmin)) in enumerate(entries + [trailer], start=1):
        nameb = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, rmaj, rmin, len(nameb), 0)
        out += ("070701" + "".join(f"{v:08x}" for v in fields)).encode() + nameb
        out += b"\0" * (-len(out) % 4)
        out += data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


def initramfs(force: bool = False) -> Path:
    """build/vm/initramfs.cpio: busybox-static + /init; rebuilt when an input is newer."""
    busybox = find_busybox()
    BUILD.mkdir(parents=True, exist_ok=True)
    out = BUILD / "initramfs.cpio"
    inputs = [Path(busybox), INIT_SCRIPT, Path(__file__)]
    if not force and out.exists() and all(p.stat().st_mtime <= out.stat().st_mtime for p in inputs):
        return out
    d, f, none = stat.S_IFDIR | 0o755, stat.S_IFREG | 0o755, (0, 0)
    entries = [(n, d, b"", none) for n in ("bin", "dev", "proc", "sys", "tmp", "newroot")]
    entries += [("bin/busybox", f, Path(busybox).read_bytes(), none),
                ("bin/sh", stat.S_IFLNK | 0o777, b"busybox", none),
                ("init", f, INIT_SCRIPT.read_bytes(), none),
                # the kernel opens /dev/console before /init mounts devtmpfs
                ("dev/console", stat.S_IFCHR | 0o600, b"", (5, 1))]
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(_cpio_newc(entries))
    tmp.replace(out)
    return out


# ---------------------------------------------------------------------------------------------
# processes

_LIVE: set["Vm"] = set()


def _cleanup_all() -> None:
    for vm in list(_LIVE):
        vm.close()


atexit.register(_cleanup_all)


def _sweep_stale_dirs() -> None:
    """Remove /tmp/nf-vm-* run dirs whose runner died without cleaning up (SIGKILL)."""
    for d in glob.glob("/tmp/nf-vm-*/owner.pid"):
        try:
            pid = int(Path(d).read_text())
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.dirname(d), ignore_errors=True)
        except (OSError, ValueError):
            pass


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL when the process that started it dies, however it
    dies (SIGKILL, a CI timeout), so no QEMU or virtiofsd outlives its runner."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _kill(p: subprocess.Popen | None, grace: float = 2.0) -> None:
    if p is None or p.poll() is not None:
        return
    p.terminate()
    try:
        p.wait(grace)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no console output)"
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(empty console)"


@dataclass
class BootInfo:
    accel: str
    accel_reason: str
    kernel: Path
    uname: str = ""
    boot_s: float = 0.0          # host wall time from QEMU start to agent ready
    guest_uptime_s: float = 0.0  # guest's own uptime when the agent started


class Vm:
    """One guest boot. Use as a context manager, or start() / close()."""

    def __init__(self, *, insmod: bool | str | Path = False, isolate: bool = False,
                 smp: int = 2, memory_mb: int = 2048, boot_timeout: float = 180.0,
                 insncount: bool = False, icount: bool = False, extra_qemu: list[str] | None = None,
                 extra_cmdline: str = ""):
        """insmod: load kmod/enetstl.ko (True) or the given .ko at boot. isolate: isolate vCPU 1
        for measuring. insncount: load the TCG instruction-counting plugin (implies isolate;
        TCG only); commands then see $NF_INSNCOUNT_OUT, the plugin's result file. icount:
        `-icount shift=0` (one virtual ns per guest instruction, single-threaded TCG), the
        independent cross-check of the counter: test_run's duration is then instructions."""
        self.insmod = (KMOD if insmod is True else Path(insmod)) if insmod else None
        self.insncount = insncount
        self.icount = icount
        self.isolate = isolate or insncount
        self.smp = max(smp, 2) if self.isolate else smp
        self.memory_mb = memory_mb
        self.boot_timeout = boot_timeout
        self.extra_qemu = list(extra_qemu or [])
        self.extra_cmdline = extra_cmdline
        self.dir: Path | None = None
        self.qemu: subprocess.Popen | None = None
        self.fsd: list[subprocess.Popen] = []
        self.sock: socket.socket | None = None
        self.buf = b""
        self.next_id = 1
        self.info: BootInfo | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> "Vm":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def insncount_out(self) -> Path:
        assert self.dir is not None
        return self.dir / "insncount.txt"

    @property
    def console_log(self) -> Path:
        assert self.dir is not None
        return self.dir / "console.log"

    def _fail(self, msg: str) -> VmError:
        tail = _tail(self.console_log) if self.dir else ""
        err = VmError(f"{msg}\n--- guest console (tail) ---\n{tail}")
        self.close()
        return err

    def start(self) -> "Vm":
        """Boot and wait for the agent. A kernel panic before init (timing checks of an
        emulated machine on an overloaded host) is retried once; other failures are not."""
        try:
            return self._start()
        except VmUnavailable:
            raise
        except VmError as e:
            if "Kernel panic" not in str(e) or "nf-init:" in str(e):
                raise
            first = str(e)
        try:
            return self._start()
        except VmError as e:
            raise VmError(f"{e}\n--- first attempt ---\n{first[-1500:]}") from None

    def _start(self) -> "Vm":
        self.buf, self.next_id, self.qemu, self.fsd = b"", 1, None, []
        kernel = find_kernel()
        qemu, virtiofsd = find_qemu(), find_virtiofsd()
        if os.geteuid() != 0:
            raise VmUnavailable("virtiofsd (sandbox=chroot) needs root")
        if self.insmod and not self.insmod.exists():
            raise VmError(f"{self.insmod} not built: run `make -C kmod`")
        accel, why = choose_accel()
        if self.insncount or self.icount:
            if accel != "tcg":
                accel, why = "tcg", "instruction counting needs TCG"
        if self.insncount:
            ensure_plugin()
        self.info = BootInfo(accel, why, kernel)
        rd = initramfs()
        # Under /tmp, which the guest also sees: the TCG plugin writes its results here.
        _sweep_stale_dirs()
        self.dir = Path(tempfile.mkdtemp(prefix="nf-vm-", dir="/tmp"))
        (self.dir / "owner.pid").write_text(f"{os.getpid()}\n")
        _LIVE.add(self)
        t0 = time.monotonic()
        try:
            for tag, src, cache in (("hostroot", "/", "auto"), ("hosttmp", "/tmp", "none")):
                sockp = self.dir / f"{tag}.sock"
                log = open(self.dir / f"virtiofsd-{tag}.log", "wb")
                self.fsd.append(subprocess.Popen(
                    [virtiofsd, f"--socket-path={sockp}", "-o", f"source={src}",
                     "-o", "sandbox=chroot", "-o", f"cache={cache}", "-o", "log_level=warn",
                     "--rlimit-nofile=0"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                    preexec_fn=_die_with_parent))
                log.close()
            for tag in ("hostroot", "hosttmp"):
                self._wait_path(self.dir / f"{tag}.sock", 10, f"virtiofsd ({tag}) socket")

            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(str(self.dir / "agent.sock"))
            listener.listen(1)
            listener.settimeout(10)
            cmd = self._qemu_cmd(qemu, kernel, rd, accel)
            (self.dir / "qemu.cmd").write_text(" ".join(cmd) + "\n")
            qlog = open(self.dir / "qemu.log", "wb")
            self.qemu = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=qlog, stderr=qlog,
                                         start_new_session=True, preexec_fn=_die_with_parent)
            qlog.close()
            try:
                self.sock, _ = listener.accept()
            except socket.timeout:
                raise self._fail("QEMU did not connect to the agent socket: "
                                 + (self.dir / "qemu.log").read_text(errors="replace")[-2000:])
            finally:
                listener.close()
            ready = self._recv(deadline=t0 + self.boot_timeout, what="agent ready")
            if not ready.get("ready"):
                raise self._fail(f"unexpected first message from the agent: {ready}")
            self.info.uname = ready.get("uname", "")
            self.info.guest_uptime_s = float(ready.get("boot_s", 0.0))
            self.info.boot_s = time.monotonic() - t0
            return self
        except VmError:
            self.close()
            raise
        except BaseException:
            self.close()
            raise

    def _wait_path(self, path: Path, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while not path.exists():
            for p in self.fsd:
                if p.poll() is not None:
                    logs = "".join(f.read_text(errors="replace") for f in self.dir.glob("virtiofsd-*.log"))
                    raise self._fail(f"virtiofsd exited with {p.returncode}: {logs[-2000:]}")
            if time.monotonic() > end:
                raise self._fail(f"timed out waiting for {what}")
            time.sleep(0.02)

    def _qemu_cmd(self, qemu: str, kernel: Path, rd: Path, accel: str) -> list[str]:
        mem = self.memory_mb
        # no_timer_check: the IO-APIC timer check races the emulated PIT against a busy loop and
        # panics ("IO-APIC + timer doesn't work") when TCG runs slowly on a loaded host.
        cmdline = ["console=ttyS0", "panic=-1", "quiet", "loglevel=4", "rdinit=/init",
                   "no_timer_check",
                   f"nf.python={repo_python()}", f"nf.agent={AGENT}"]
        if self.insmod:
            cmdline.append(f"nf.insmod={self.insmod.resolve()}")
        if self.isolate:
            cmdline.append(ISOLATE_CMDLINE)
        if self.extra_cmdline:
            cmdline.append(self.extra_cmdline)
        if accel == "kvm":
            accel_args = ["-accel", "kvm", "-cpu", "host"]
        else:
            # icount needs the single-threaded TCG loop
            accel_args = ["-accel", f"tcg,thread={'single' if self.icount else 'multi'}",
                          "-cpu", "max," + ",".join(f"-{f}" for f in NO_AVX512)]
            if self.icount:
                accel_args += ["-icount", "shift=0"]
        cmd = [qemu, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
               "-machine", "pc,memory-backend=mem", *accel_args,
               "-smp", str(self.smp), "-m", f"{mem}M",
               "-object", f"memory-backend-memfd,id=mem,size={mem}M,share=on",
               "-kernel", str(kernel), "-initrd", str(rd), "-append", " ".join(cmdline),
               "-chardev", f"file,id=con,path={self.console_log}", "-serial", "chardev:con",
               "-device", "virtio-serial-pci",
               "-chardev", f"socket,id=agent,path={self.dir / 'agent.sock'}",
               "-device", "virtserialport,chardev=agent,name=nf.agent"]
        for i, tag in enumerate(("hostroot", "hosttmp")):
            cmd += ["-chardev", f"socket,id=fs{i},path={self.dir / (tag + '.sock')}",
                    "-device", f"vhost-user-fs-pci,chardev=fs{i},tag={tag}"]
        if self.insncount:
            cmd += ["-plugin", f"{PLUGIN_SO},out={self.insncount_out}"]
        return cmd + self.extra_qemu

    def close(self) -> None:
        """Stop the guest; always kills QEMU and virtiofsd. Idempotent."""
        if self.sock is not None and self.qemu is not None and self.qemu.poll() is None:
            try:  # polite shutdown first: the agent returns and init powers off
                self.sock.settimeout(2)
                self.sock.sendall(b'{"id":0,"shutdown":true}\n')
                self.qemu.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        _kill(self.qemu)
        for p in self.fsd:
            _kill(p)
        self.fsd = []
        _LIVE.discard(self)
        if self.dir is not None and self.dir.exists() and not os.environ.get("NF_VM_KEEP"):
            # Keep the console of a failed boot readable through the error message only.
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- protocol ---------------------------------------------------------------------------
    def _recv(self, deadline: float, what: str) -> dict:
        assert self.sock is not None
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._fail(f"timed out waiting for {what}")
            if self.qemu is not None and self.qemu.poll() is not None:
                raise self._fail(f"QEMU exited with {self.qemu.returncode} while waiting for {what}")
            self.sock.settimeout(min(left, 0.5))
            try:
                chunk = self.sock.recv(1 << 16)
            except socket.timeout:
                continue
            if not chunk:
                raise self._fail(f"agent connection closed while waiting for {what}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def run(self, argv: list[str], *, timeout: float = 600.0, env: dict | None = None,
            cwd: str | Path | None = None,
            on_output: Callable[[str, bytes], None] | None = None) -> CmdResult:
        """Run argv in the guest; returns its exit code and output. on_output(stream, chunk)
        with stream "o" or "e" streams the output as it arrives. The guest kills the command
        after `timeout`; if the guest itself stops answering, the VM is torn down (VmError)."""
        if self.sock is None:
            raise VmError("the VM is not running")
        if not argv:
            raise ValueError("empty command")
        rid = self.next_id
        self.next_id += 1
        env = dict(env or {})
        if self.insncount:
            env.setdefault(INSNCOUNT_ENV, str(self.insncount_out))
        req = {"id": rid, "argv": [str(a) for a in argv], "env": env,
               "cwd": str(cwd) if cwd else str(ROOT), "timeout": timeout}
        t0 = time.monotonic()
        self.sock.settimeout(10)
        self.sock.sendall((json.dumps(req) + "\n").encode())
        out, err = bytearray(), bytearray()
        deadline = t0 + timeout + 30  # the agent enforces `timeout`; this catches a dead guest
        while True:
            msg = self._recv(deadline, f"command {argv[:3]}")
            if msg.get("id") != rid:
                continue
            for key, buf in (("o", out), ("e", err)):
                if key in msg:
                    chunk = base64.b64decode(msg[key])
                    buf += chunk
                    if on_output:
                        on_output(key, chunk)
            if "rc" in msg:
                return CmdResult(msg["rc"], bytes(out), bytes(err), time.monotonic() - t0,
                                 bool(msg.get("timed_out")))

    def check(self, argv: list[str], **kw) -> CmdResult:
        r = self.run(argv, **kw)
        if r.rc != 0:
            raise VmError(f"guest command {argv} failed with {r.rc}:\n{r.output[-3000:]}")
        return r


def run(argv: list[str], **vm_kwargs) -> CmdResult:
    """Boot, run one command, stop."""
    with Vm(**vm_kwargs) as vm:
        return vm.run(argv)
