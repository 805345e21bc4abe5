"""nf/bpf/object.py on the host kernel through BPF_PROG_TEST_RUN (tier 1)."""
from __future__ import annotations

import ctypes
import errno
import os

import pytest

from nf.bpf import BpfError, BpfObject, MissingKfuncError, VerifierError, XdpAction

PROG = "tests/rodata_verdict"


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("verdict", [XdpAction.PASS, XdpAction.DROP, XdpAction.TX,
                                     XdpAction.ABORTED])
def test_rodata_sets_verdict(verdict, mirrors, frame):
    with BpfObject.open_built(PROG) as obj:
        obj.set_rodata("cfg", mirrors.Cfg(verdict=verdict))
        obj.load()
        r = obj.program("xdp_main").test_run(frame, repeat=3)
        assert r.retval == verdict
        assert r.data_out == frame            # no rewrite configured: bytes untouched
        stats = obj.map("stats").typed(ctypes.c_uint32, mirrors.Counters)
        total = stats.sum(int(verdict))
        assert (total.packets, total.bytes) == (3, 3 * len(frame))
        assert all(stats.sum(a).packets == 0 for a in XdpAction if a != verdict)


def test_rodata_default_is_the_c_initialiser(mirrors, frame):
    with BpfObject.open_built(PROG) as obj:
        cfg = obj.get_rodata("cfg", mirrors.Cfg)
        assert (cfg.verdict, cfg.swap_macs, cfg.mark) == (XdpAction.PASS, 0, 0)
        assert obj.get_rodata("generation", ctypes.c_uint32).value == 7
        obj.set_rodata("generation", ctypes.c_uint32(0xC0FFEE))
        obj.load()
        assert obj.program("xdp_main").test_run(frame).retval == XdpAction.PASS
        assert obj.map("info").typed(ctypes.c_uint32, ctypes.c_uint32)[0] == 0xC0FFEE


def test_rodata_rewrite_is_byte_exact(mirrors, frame):
    with BpfObject.open_built(PROG) as obj:
        obj.set_rodata("cfg", mirrors.Cfg(verdict=XdpAction.TX, swap_macs=1, mark=0xAB))
        obj.load()
        r = obj.program("xdp_main").test_run(frame)
    expected = frame[6:12] + frame[0:6] + frame[12:-1] + b"\xab"
    assert r.retval == XdpAction.TX
    assert r.data_out == expected


def test_set_rodata_errors(mirrors):
    with BpfObject.open_built(PROG) as obj:
        with pytest.raises(KeyError, match=r"no const volatile variable 'nope'.*cfg, generation"):
            obj.set_rodata("nope", mirrors.Cfg())
        with pytest.raises(ValueError, match=r"'cfg' is 8 bytes .* is 4 bytes"):
            obj.set_rodata("cfg", ctypes.c_uint32(1))
        obj.load()
        with pytest.raises(BpfError, match="already loaded") as ei:
            obj.set_rodata("cfg", mirrors.Cfg())
        assert ei.value.errno == errno.EBUSY


def test_max_entries_set_before_load_is_the_kernels(mirrors):
    with BpfObject.open_built(PROG) as obj:
        flows = obj.map("flows")
        assert flows.max_entries == 16
        flows.set_max_entries(1000)
        obj.load()
        assert flows.max_entries == 1000
        from nf.bpf import Map
        with Map.from_fd(flows.fd) as kernel_view:       # what the kernel says, not libbpf
            assert kernel_view.max_entries == 1000
            assert (kernel_view.key_size, kernel_view.value_size) == (8, 8)
            assert kernel_view.type_name == "hash"
        t = flows.typed(mirrors.FlowKey, ctypes.c_uint64)
        assert t.batch_update([mirrors.FlowKey(addr=i) for i in range(1000)], range(1000)) == 1000
        with pytest.raises(BpfError) as ei:
            t[mirrors.FlowKey(addr=5000)] = 1
        assert ei.value.errno == errno.E2BIG
        with pytest.raises(BpfError, match="already loaded"):
            flows.set_max_entries(5)


def test_map_ids_are_the_maps_the_program_uses():
    from nf.bpf import Program
    with BpfObject.open_built(PROG) as obj:
        obj.load()
        prog = obj.program("xdp_main")
        ids = prog.map_ids()
        assert len(ids) == len(set(ids)) >= 1 and set(ids) <= {obj.map(n).id for n in obj.maps}
        assert obj.map(".rodata").id in ids                # its config
        with Program.from_id(prog.id) as other:           # a program opened by id: the same
            assert other.map_ids() == ids


def test_lookup_by_name_lists_names():
    with BpfObject.open_built(PROG) as obj:
        with pytest.raises(KeyError, match=r"no program 'xdp_nope'.*programs: xdp_main"):
            obj.program("xdp_nope")
        with pytest.raises(KeyError, match=r"no map 'nope'.*flows, info.*stats"):
            obj.map("nope")
        assert obj.map(".rodata") is obj.map(next(n for n in obj.maps if n.endswith(".rodata")))


def test_program_fd_before_load_and_after_close():
    obj = BpfObject.open_built(PROG)
    prog = obj.program("xdp_main")
    with pytest.raises(BpfError, match="load"):
        prog.fd
    obj.load()
    assert prog.fd > 0 and prog.id > 0 and len(prog.tag) == 16
    obj.close()
    with pytest.raises(BpfError, match="closed"):
        prog.fd
    obj.close()  # idempotent


def test_unchecked_packet_access_raises_verifier_error():
    with BpfObject.open_built("tests/broken_pkt") as obj:
        with pytest.raises(VerifierError) as ei:
            obj.load()
    e = ei.value
    assert e.errno == errno.EACCES
    assert e.program == "xdp_unchecked"
    assert e.summary.startswith("xdp_unchecked: invalid access to packet, off=12 size=1")
    assert "R1 offset is outside of the packet" in e.excerpt
    assert "processed" not in e.excerpt and "processed" in e.log
    assert len(e.excerpt.splitlines()) <= VerifierError.EXCERPT_LINES
    text = str(e)
    assert text.splitlines()[0] == f"verifier rejected {e.summary} (EACCES)"
    assert "broken_pkt.bpf.c:12" in text         # the source line annotation survives


def test_null_deref_names_the_register_and_type():
    with BpfObject.open_built("tests/broken_null") as obj:
        with pytest.raises(VerifierError) as ei:
            obj.load()
    assert ei.value.summary == "xdp_null_deref: R0 invalid mem access 'map_value_or_null'"
    assert isinstance(ei.value, BpfError) and isinstance(ei.value, OSError)


def test_missing_kfunc_says_module_not_loaded():
    with BpfObject.open_built("tests/missing_kfunc") as obj:
        with pytest.raises(MissingKfuncError) as ei:
            obj.load()
    assert ei.value.names == ["nf_test_no_such_kfunc"]
    assert "not found in kernel or module BTFs" in ei.value.message
    assert "enetstl module is not loaded" in str(ei.value)
    assert ei.value.errno != 0


def test_open_missing_file_is_clear(tmp_path):
    with pytest.raises(BpfError, match="no BPF object") as ei:
        BpfObject.open(tmp_path / "nope.o")
    assert ei.value.errno == errno.ENOENT
    junk = tmp_path / "junk.o"
    junk.write_bytes(b"not an elf")
    with pytest.raises(BpfError, match="cannot open BPF object"):
        BpfObject.open(junk)


def test_test_run_ctx_in_ingress_ifindex(mirrors, frame):
    with BpfObject.open_built(PROG) as obj:
        obj.load()
        r = obj.program("xdp_main").test_run(frame, ingress_ifindex=1)   # lo
        assert r.retval == XdpAction.PASS and len(r.ctx_out) == 24
        with pytest.raises(BpfError) as ei:
            obj.program("xdp_main").test_run(frame, ingress_ifindex=10**6)
        assert ei.value.errno in (errno.ENODEV, errno.EINVAL)


def test_no_fd_leak_over_50_open_load_run_close(mirrors, frame):
    def cycle():
        with BpfObject.open_built(PROG) as obj:
            obj.set_rodata("cfg", mirrors.Cfg(verdict=XdpAction.DROP))
            obj.map("flows").set_max_entries(64)
            obj.load()
            assert obj.program("xdp_main").test_run(frame).retval == XdpAction.DROP
            t = obj.map("flows").typed(mirrors.FlowKey, ctypes.c_uint64)
            t[mirrors.FlowKey(addr=1)] = 2
            assert dict(t.items()) and len(t) == 1
        with BpfObject.open_built("tests/broken_pkt") as bad:
            with pytest.raises(VerifierError):
                bad.load()
    cycle()                                   # warm-up: imports, caches
    before = _fds()
    for _ in range(50):
        cycle()
    assert _fds() == before
