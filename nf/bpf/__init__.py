"""libbpf through ctypes: objects, programs, maps, links, rodata config, pinning, test_run.

    from nf.bpf import BpfObject, Map, Program, Link, VerifierError, BpfError, XdpMode
"""
from nf.bpf.errors import BpfError, MissingKfuncError, VerifierError
from nf.bpf.libbpf import BPF_ANY, BPF_EXIST, BPF_NOEXIST, BPF_F_LOCK, num_possible_cpus, xdp_md
from nf.bpf.maps import Map, TypedMap, hashable, sum_values
from nf.bpf.object import BpfObject, Program, RodataVar, TestRunResult
from nf.bpf import pin
from nf.bpf.pin import instance_dir, list_instances, remove_instance
from nf.bpf.xdp import Link, XdpAction, XdpMode, XdpQuery, query as xdp_query, detach_legacy

__all__ = [
    "BpfError", "MissingKfuncError", "VerifierError",
    "BPF_ANY", "BPF_EXIST", "BPF_NOEXIST", "BPF_F_LOCK", "num_possible_cpus", "xdp_md",
    "Map", "TypedMap", "hashable", "sum_values",
    "BpfObject", "Program", "RodataVar", "TestRunResult",
    "pin", "instance_dir", "list_instances", "remove_instance",
    "Link", "XdpAction", "XdpMode", "XdpQuery", "xdp_query", "detach_legacy",
]
