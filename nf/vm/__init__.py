"""The VM tier: boot Debian's 6.12 cloud kernel under QEMU (TCG here, KVM where real) with the
host root shared read-only, run commands in it (runner), run vm-marked tests there
(pytest_plugin), and count guest instructions (insncount)."""
from nf.vm.runner import CmdResult, Vm, VmError, VmUnavailable, prerequisites, run

__all__ = ["CmdResult", "Vm", "VmError", "VmUnavailable", "prerequisites", "run"]
