"""Errors of nf.bpf: every failure keeps its errno; the verifier's log is an error type.

BpfError(errno, message, hint)   any failed libbpf/bpf() call; ``hint`` says what to do about it
VerifierError(BpfError)          a program the kernel refused: ``.summary`` (one line: program and
                                 the verifier's reason), ``.excerpt`` (last relevant log lines),
                                 ``.log`` (the full log)
MissingKfuncError(BpfError)      libbpf could not resolve a kfunc/extern: the module is not loaded
"""
from __future__ import annotations

import errno as _errno
import os
import re

# Lines of a verifier log that say nothing about *why* it failed.
_NOISE = re.compile(
    r"^(processed \d+ insns|verification time|stack depth|max_states_per_insn|"
    r"-- (BEGIN|END) PROG LOAD LOG --|\s*$)"
)
# Lines that are the trace of the walk (instructions, source, state), not the reason.
_TRACE = re.compile(
    r"^(\d+: |; |from \d+ to \d+|last_idx |regs=|parent didn't have|func#\d|Func#|"
    r"Validating |Live regs|mark_precise|\s+\d+: |caller:|callee:|frame\d|R\d+=|\(\w+\) )"
)

ENOTSUPP = 524   # kernel-internal errno that bpf() leaks to user space (no libc name)
KMOD_HINT = "the enetstl module is not loaded; the pure-eBPF variant works without it"
PERM_HINT = ("needs root (CAP_BPF + CAP_NET_ADMIN + CAP_SYS_ADMIN for test_run/pinning); "
             "pinning also needs bpffs mounted at /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf)")


class BpfError(OSError):
    """A failed BPF operation. ``errno`` is the kernel/libbpf errno, ``hint`` may be None."""

    def __init__(self, errno: int, message: str, hint: str | None = None):
        super().__init__(errno, message)
        self.errno = errno
        self.message = message
        if hint is None and errno == _errno.EPERM:
            hint = PERM_HINT
        self.hint = hint

    @property
    def errno_name(self) -> str:
        if self.errno == ENOTSUPP:
            return "ENOTSUPP"
        return _errno.errorcode.get(self.errno, str(self.errno))

    def __str__(self) -> str:
        why = "operation not supported (kernel-internal)" if self.errno == ENOTSUPP else \
            os.strerror(self.errno)
        s = f"{self.message}: {why} ({self.errno_name})" if self.errno else self.message
        if self.hint:
            s += f"\nhint: {self.hint}"
        return s

    def __reduce__(self):  # picklable across processes (pytest-xdist, subprocess helpers)
        return (self.__class__, (self.errno, self.message, self.hint))


class MissingKfuncError(BpfError):
    """libbpf found a __ksym extern that neither vmlinux nor any loaded module's BTF provides."""

    def __init__(self, errno: int, message: str, names: list[str], hint: str | None = KMOD_HINT):
        super().__init__(errno, message, hint)
        self.names = names

    def __reduce__(self):
        return (self.__class__, (self.errno, self.message, self.names, self.hint))


def _relevant(log: str) -> list[str]:
    return [ln for ln in log.splitlines() if not _NOISE.match(ln)]


def verifier_reason(log: str) -> list[str]:
    """The verifier's reason: the trailing run of lines that are not trace lines (may be empty)."""
    lines = _relevant(log)
    reason: list[str] = []
    for ln in reversed(lines):
        if _TRACE.match(ln):
            if reason:
                break
            continue
        reason.append(ln)
    return list(reversed(reason))


class VerifierError(BpfError):
    """The kernel rejected a program. str() = summary + excerpt; ``.log`` has everything."""

    EXCERPT_LINES = 15

    def __init__(self, errno: int, program: str | None, log: str, libbpf_messages: str = "",
                 hint: str | None = None):
        self.program = program
        self.log = log
        self.libbpf_messages = libbpf_messages
        reason = verifier_reason(log)
        why = reason[0] if reason else (_last_libbpf_line(libbpf_messages) or "no verifier log")
        self.reason = "\n".join(reason) if reason else why
        self.summary = f"{program or '?'}: {why}"
        rel = _relevant(log)
        self.excerpt = "\n".join(rel[-self.EXCERPT_LINES:])
        super().__init__(errno, self.summary, hint)

    def __str__(self) -> str:
        s = f"verifier rejected {self.summary} ({self.errno_name})"
        if self.excerpt:
            s += "\n" + "\n".join("  | " + ln for ln in self.excerpt.splitlines())
        if self.hint:
            s += f"\nhint: {self.hint}"
        return s

    def __reduce__(self):
        return (self.__class__, (self.errno, self.program, self.log, self.libbpf_messages, self.hint))


def _last_libbpf_line(text: str) -> str | None:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1].removeprefix("libbpf: ") if lines else None


_KSYM_MISSING = re.compile(r"extern \((?:func|var) ksym\) '([^']+)': not found in kernel or module BTFs")
_PROG_FAILED = re.compile(r"prog '([^']+)': BPF program load failed")
_LOG_BLOCK = re.compile(r"prog '([^']+)': -- BEGIN PROG LOAD LOG --\n(.*?)-- END PROG LOAD LOG --",
                        re.S)


def load_error(errno: int, obj_name: str, messages: str) -> BpfError:
    """Classify a failed bpf_object__load from libbpf's messages."""
    missing = _KSYM_MISSING.findall(messages)
    if missing:
        return MissingKfuncError(errno, f"{obj_name}: kfunc/extern not found in kernel or module "
                                 f"BTFs: {', '.join(missing)}", missing)
    block = _LOG_BLOCK.search(messages)
    failed = _PROG_FAILED.search(messages)
    if block or failed:
        prog = block.group(1) if block else failed.group(1)
        log = block.group(2) if block else ""
        hint = None
        if "calling kernel function" in log and "is not allowed" in log:
            hint = "the kfunc is not registered for XDP programs by the module"
        return VerifierError(errno, prog, log, messages, hint=hint)
    detail = _last_libbpf_line(messages)
    return BpfError(errno, f"loading {obj_name} failed" + (f": {detail}" if detail else ""))
