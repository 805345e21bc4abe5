"""libbpf 1.4 through ctypes: objects, programs, maps, links, rodata config, pinning, test_run.

    from nf.bpf import BpfObject, Map, Program, Link, VerifierError, BpfError, XdpMode

    with BpfObject.open_built("x/x") as obj:        # or BpfObject.open(path); close() frees all
        obj.set_rodata("cfg", Cfg(...))              # const volatile global, checked via BTF
        obj.map("fdb").set_max_entries(65536)        # before load
        obj.pin_maps(instance_dir("sw0"))            # reuse/create pins under /sys/fs/bpf/xdp-nf/sw0
        obj.program("xdp_kfunc").set_autoload(False) # skip a program
        obj.load()                                   # VerifierError / MissingKfuncError / BpfError
        prog = obj.program("xdp_main")               # .fd .name .id .tag
        r = prog.test_run(frame, repeat=1, ctx_in=None, ingress_ifindex=None)
        #   -> TestRunResult(retval, data_out, duration_ns, ctx_out)
        prog.test_run_live(frame, repeat=N, ifindex="va", batch_size=64)
        link = prog.attach_xdp("va", XdpMode.AUTO, pin=path)    # bpf_link, mode flag at creation
        link.update_program(other, expected_old=prog); link.detach()
        t = obj.map("stats").typed(KeyCtype, ValueCtype)          # TypedMap
        t[k] = v; t.lookup(k); t.delete(k); t.keys(); t.items(); t.batch_update(ks, vs)
        t.items_batch(); t.lookup_percpu(k) (list per possible CPU); t.sum(k)
    Link.from_pin(path).detach(); Map.from_pin(path, K, V); Map.create("array", 4, 4, 8)
    xdp_query("va") -> XdpQuery(mode, prog_id, drv_prog_id, skb_prog_id, hw_prog_id)

Everything touching interfaces acts in the calling thread's network namespace.
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
