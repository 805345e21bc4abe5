"""BpfObject and Program: open a clang-built object, configure it, load it, run and attach it.

    with BpfObject.open_built("tests/rodata_verdict") as obj:
        obj.set_rodata("cfg", Cfg(verdict=XdpAction.DROP))    # const volatile, before load
        obj.map("counters").set_max_entries(1024)             # before load
        obj.load()                                            # VerifierError on rejection
        r = obj.program("xdp_main").test_run(frame)

One channel per kind of config (ARCHITECTURE §3.2): load-time knobs are rodata (the verifier then
prunes dead branches), sizes are max_entries, tables are runtime map updates.
"""
from __future__ import annotations

import ctypes
import errno as E
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nf.bpf import libbpf as L
from nf.bpf.errors import BpfError, load_error
from nf.bpf.maps import Map
from nf.bpf.xdp import Link, XdpMode, attach, ifindex_of


@dataclass(frozen=True)
class TestRunResult:
    retval: int          # the program's return value (an XDP action for XDP programs)
    data_out: bytes      # the packet after the program (b"" for live frames)
    duration_ns: int     # kernel-measured average per repetition
    ctx_out: bytes = b""

    __test__ = False     # not a pytest test class despite the name


@dataclass(frozen=True)
class RodataVar:
    section: str
    offset: int
    size: int


class Program(L.Closing):
    """A BPF program of an object (fd owned by the object) or standalone (from_pin/from_id)."""

    def __init__(self, *, ptr: int | None = None, owner: "BpfObject | None" = None,
                 fd: int = -1, name: str = ""):
        self._ptr, self._owner, self._fd, self._name = ptr, owner, fd, name

    @classmethod
    def from_pin(cls, path: str | os.PathLike) -> "Program":
        fd = L.bpf_obj_get(os.fsencode(path))
        L.check(fd, f"cannot open pinned program {path}")
        p = cls(fd=fd)
        p._name = p.info().name.decode()
        return p

    @classmethod
    def from_id(cls, prog_id: int) -> "Program":
        fd = L.bpf_prog_get_fd_by_id(prog_id)
        L.check(fd, f"no program with id {prog_id}")
        p = cls(fd=fd)
        p._name = p.info().name.decode()
        return p

    def _alive(self) -> None:
        if self._ptr is not None and (self._owner is None or self._owner._obj is None):
            raise BpfError(E.EBADF, f"program {self._name!r} used after its BpfObject was closed")
        if self._ptr is None and self._fd < 0:
            raise BpfError(E.EBADF, "program used after close()")

    @property
    def name(self) -> str:
        return self._name

    @property
    def fd(self) -> int:
        self._alive()
        if self._ptr is not None:
            fd = L.bpf_program__fd(self._ptr)
            if fd < 0:
                why = ("load() the object first" if not self._owner.loaded else
                       "autoload was disabled for it")
                raise BpfError(E.EBADF, f"program {self._name!r} has no fd: {why}")
            return fd
        return self._fd

    @property
    def section(self) -> str | None:
        if self._ptr is None:
            return None
        self._alive()
        return L.bpf_program__section_name(self._ptr).decode()

    @property
    def type(self) -> int:
        if self._ptr is not None:
            self._alive()
            return L.bpf_program__type(self._ptr)
        return self.info().type

    def info(self) -> L.bpf_prog_info:
        return L.get_info(L.bpf_prog_get_info_by_fd, self.fd, L.bpf_prog_info,
                          "bpf_prog_get_info_by_fd")

    @property
    def id(self) -> int:
        return self.info().id

    def map_ids(self) -> list[int]:
        """Ids of the maps the kernel bound to this program at load."""
        n = self.info().nr_map_ids
        buf = (ctypes.c_uint32 * max(n, 1))()
        info = L.bpf_prog_info(nr_map_ids=n, map_ids=ctypes.addressof(buf))
        size = ctypes.c_uint32(ctypes.sizeof(info))
        L.check(L.bpf_prog_get_info_by_fd(self.fd, ctypes.byref(info), ctypes.byref(size)),
                "bpf_prog_get_info_by_fd")
        return list(buf[:min(n, info.nr_map_ids)])

    @property
    def tag(self) -> str:
        return bytes(self.info().tag).hex()

    def set_autoload(self, on: bool) -> "Program":
        """Before load: skip this program (e.g. the kfunc variant when the module is absent)."""
        self._alive()
        if self._ptr is None or self._owner.loaded:
            raise BpfError(E.EBUSY, "set_autoload applies to an object's program before load")
        L.check(L.bpf_program__set_autoload(self._ptr, on), f"set_autoload({self._name})")
        return self

    def pin(self, path: str | os.PathLike) -> None:
        L.check(L.bpf_obj_pin(self.fd, os.fsencode(path)), f"pin program {self._name} at {path}")

    # ---- BPF_PROG_TEST_RUN ----
    def test_run(self, data: bytes, repeat: int = 1, ctx_in: Any = None, *,
                 ingress_ifindex: int | None = None, data_out_size: int | None = None
                 ) -> TestRunResult:
        """Run once (or ``repeat`` times) on ``data``. For XDP, ``ctx_in`` is an xdp_md (its
        data_end is filled with len(data) when left 0, as the kernel requires) or raw bytes;
        ``ingress_ifindex`` is a shortcut for an xdp_md carrying just that."""
        data = bytes(data)
        if repeat < 1:
            raise ValueError(f"repeat must be >= 1, got {repeat}")
        ctx = self._xdp_ctx(data, ctx_in, ingress_ifindex)
        # Room for growth: bpf_xdp_adjust_head/tail may lengthen the frame.
        out = ctypes.create_string_buffer(data_out_size or len(data) + 4096)
        din = ctypes.create_string_buffer(data, len(data))
        opts = L.bpf_test_run_opts(data_in=ctypes.addressof(din), data_size_in=len(data),
                                   data_out=ctypes.addressof(out), data_size_out=len(out),
                                   repeat=repeat)
        ctx_buf = ctx_out = None
        if ctx is not None:
            ctx_buf = ctypes.create_string_buffer(ctx, len(ctx))
            ctx_out = ctypes.create_string_buffer(len(ctx))
            opts.ctx_in, opts.ctx_size_in = ctypes.addressof(ctx_buf), len(ctx)
            opts.ctx_out, opts.ctx_size_out = ctypes.addressof(ctx_out), len(ctx)
        ret = L.bpf_prog_test_run_opts(self.fd, ctypes.byref(opts))
        if ret < 0:
            self._raise_test_run(-ret, ctx is not None)
        return TestRunResult(opts.retval, out.raw[:opts.data_size_out], opts.duration,
                             ctx_out.raw[:opts.ctx_size_out] if ctx_out is not None else b"")

    def test_run_live(self, frame: bytes, repeat: int, ifindex: int | str | None = None, *,
                      batch_size: int = 0, rx_queue: int = 0) -> TestRunResult:
        """BPF_F_TEST_XDP_LIVE_FRAMES: ``repeat`` frames really go through the kernel (XDP_TX
        and redirects transmit), arriving as if received on ``ifindex`` (calling thread's netns).
        batch_size 0 = kernel default (64). Pages are recycled: rewrites persist between rounds."""
        frame = bytes(frame)
        if repeat < 1:
            raise ValueError(f"repeat must be >= 1, got {repeat}")
        if not 0 <= batch_size <= 256:
            raise ValueError("batch_size must be 0..256 (TEST_XDP_MAX_BATCH)")
        md = L.xdp_md(data_end=len(frame), rx_queue_index=rx_queue)
        if ifindex is not None:
            md.ingress_ifindex = ifindex_of(ifindex)
        din = ctypes.create_string_buffer(frame, len(frame))
        opts = L.bpf_test_run_opts(data_in=ctypes.addressof(din), data_size_in=len(frame),
                                   ctx_in=ctypes.addressof(md), ctx_size_in=ctypes.sizeof(md),
                                   repeat=repeat, flags=L.BPF_F_TEST_XDP_LIVE_FRAMES,
                                   batch_size=batch_size)
        ret = L.bpf_prog_test_run_opts(self.fd, ctypes.byref(opts))
        if ret < 0:
            self._raise_test_run(-ret, True, live=True)
        return TestRunResult(opts.retval, b"", opts.duration)

    def _xdp_ctx(self, data: bytes, ctx_in: Any, ingress_ifindex: int | None) -> bytes | None:
        if ingress_ifindex is not None:
            if ctx_in is not None:
                raise ValueError("give ctx_in or ingress_ifindex, not both")
            ctx_in = L.xdp_md(ingress_ifindex=ifindex_of(ingress_ifindex))
        if ctx_in is None:
            return None
        if isinstance(ctx_in, L.xdp_md):
            md = L.xdp_md.from_buffer_copy(bytes(ctx_in))
            if md.data_end == 0:
                md.data_end = len(data)    # the kernel insists data_end == len(data)
            return bytes(md)
        return bytes(ctx_in)

    def _raise_test_run(self, err: int, with_ctx: bool, live: bool = False) -> None:
        hint = None
        if err == E.EINVAL and with_ctx:
            hint = ("xdp_md ctx_in: data_meta and egress_ifindex must be 0, rx_queue_index must "
                    "exist on the ingress device, which must be in this network namespace")
        elif err == E.EINVAL and live:
            hint = "live frames need an XDP program and no data_out/ctx_out"
        elif err == E.EPERM and live:
            # Some kernel builds refuse the flag even to root while plain test_run works.
            hint = ("this kernel refuses BPF_F_TEST_XDP_LIVE_FRAMES; lab traffic uses the tc "
                    "clone-redirect generator instead (traffic/labgen.py; `nf check` lists the "
                    "generators this kernel permits)")
        elif err == 524:   # kernel-internal ENOTSUPP
            hint = "this program type does not support BPF_PROG_TEST_RUN"
        elif err == E.ENODEV:
            hint = "ingress ifindex not found in the calling thread's network namespace"
        raise BpfError(err, f"test_run of {self._name!r}" + (" (live frames)" if live else ""),
                       hint=hint)

    # ---- attach ----
    def attach_xdp(self, iface: int | str, mode: XdpMode = XdpMode.AUTO,
                   pin: str | os.PathLike | None = None) -> Link:
        """Attach through a bpf_link with the mode flag at creation. AUTO tries native, then
        generic. With ``pin`` the link is pinned and outlives this process."""
        return attach(self.fd, self._name, iface, mode, pin)

    def close(self) -> None:
        if self._ptr is None and self._fd >= 0:
            L.close_fd(self._fd)
            self._fd = -1


    def __repr__(self):
        return f"<Program {self._name}>"


class BpfObject(L.Closing):
    """One clang-built BPF ELF object. Configure between open and load(); close() frees all."""

    def __init__(self, ptr: int, path: str):
        self._obj: int | None = ptr
        self.path = path
        self.loaded = False
        self._programs: dict[str, Program] = {}
        self._maps: dict[str, Map] = {}
        self._rodata: dict[str, RodataVar] | None = None
        self._owned: list = []
        p = None
        while True:
            p = L.bpf_object__next_program(ptr, p)
            if not p:
                break
            name = L.bpf_program__name(p).decode()
            self._programs[name] = Program(ptr=p, owner=self, name=name)
        m = None
        while True:
            m = L.bpf_object__next_map(ptr, m)
            if not m:
                break
            mp = Map(ptr=m, owner=self)
            self._maps[mp.name] = mp

    # ---- opening ----
    @classmethod
    def open(cls, path: str | os.PathLike, *, name: str | None = None) -> "BpfObject":
        path = os.fspath(path)
        if not os.path.exists(path):
            raise BpfError(E.ENOENT, f"no BPF object at {path}",
                           hint="build it: .venv/bin/python -m nf.bpf.build")
        opts = L.bpf_object_open_opts(object_name=name.encode() if name else None)
        with L.capture_messages() as cap:
            ptr = L.bpf_object__open_file(path.encode(), ctypes.byref(opts))
            err = ctypes.get_errno()
        if not ptr:
            detail = cap.text.strip().splitlines()
            raise BpfError(err or E.EINVAL, f"cannot open BPF object {path}"
                           + (f": {detail[-1].removeprefix('libbpf: ')}" if detail else ""))
        return cls(ptr, path)

    @classmethod
    def open_built(cls, name: str, **kw) -> "BpfObject":
        """Open build/bpf/<name>.o for xdp_progs/<name>.bpf.c, (re)building it if stale."""
        from nf.bpf.build import build
        return cls.open(build(name), **kw)

    @property
    def name(self) -> str:
        self._alive()
        return L.bpf_object__name(self._obj).decode()

    def _alive(self) -> None:
        if self._obj is None:
            raise BpfError(E.EBADF, f"BpfObject {self.path} used after close()")

    def _preload(self, what: str) -> None:
        self._alive()
        if self.loaded:
            raise BpfError(E.EBUSY, f"{what}: {self.path} is already loaded (set it before load())")

    # ---- lookup ----
    def program(self, name: str) -> Program:
        self._alive()
        try:
            return self._programs[name]
        except KeyError:
            raise KeyError(f"no program {name!r} in {os.path.basename(self.path)}; programs: "
                           f"{', '.join(sorted(self._programs)) or '(none)'}") from None

    def map(self, name: str) -> Map:
        self._alive()
        m = self._maps.get(name)
        if m is None:  # internal maps answer to their section name too (".rodata", ".bss")
            ptr = L.bpf_object__find_map_by_name(self._obj, name.encode())
            m = next((x for x in self._maps.values() if x._ptr == ptr), None) if ptr else None
        if m is None:
            raise KeyError(f"no map {name!r} in {os.path.basename(self.path)}; maps: "
                           f"{', '.join(sorted(self._maps)) or '(none)'}")
        return m

    @property
    def programs(self) -> dict[str, Program]:
        self._alive()
        return dict(self._programs)

    @property
    def maps(self) -> dict[str, Map]:
        self._alive()
        return dict(self._maps)

    # ---- rodata ----
    def rodata_vars(self) -> dict[str, RodataVar]:
        """Every variable of the object's .rodata* sections, from the object's BTF."""
        self._alive()
        if self._rodata is not None:
            return self._rodata
        btf = L.bpf_object__btf(self._obj)
        if not btf:
            raise BpfError(E.ENOENT, f"{self.path} has no BTF: build it with -g")
        found: dict[str, RodataVar] = {}
        for tid in range(1, L.btf__type_cnt(btf)):
            t = L.btf__type_by_id(btf, tid).contents
            if t.kind != L.BTF_KIND_DATASEC:
                continue
            sec = L.btf__name_by_offset(btf, t.name_off).decode()
            if not sec.startswith(".rodata"):
                continue
            infos = ctypes.cast(ctypes.addressof(t) + ctypes.sizeof(L.btf_type),
                                ctypes.POINTER(L.btf_var_secinfo))
            for i in range(t.vlen):
                vi = infos[i]
                var = L.btf__type_by_id(btf, vi.type).contents
                if var.kind != L.BTF_KIND_VAR:
                    continue
                vname = L.btf__name_by_offset(btf, var.name_off).decode()
                found[vname] = RodataVar(sec, vi.offset, vi.size)
        self._rodata = found
        return found

    def _rodata_slot(self, var: str) -> tuple[RodataVar, int, int]:
        vars_ = self.rodata_vars()
        if var not in vars_:
            raise KeyError(f"no const volatile variable {var!r} in .rodata of "
                           f"{os.path.basename(self.path)}; variables: "
                           f"{', '.join(sorted(vars_)) or '(none)'}")
        rv = vars_[var]
        ptr = L.bpf_object__find_map_by_name(self._obj, rv.section.encode())
        if not ptr:
            raise BpfError(E.ENOENT, f"no map for section {rv.section} (unused rodata?)")
        size = ctypes.c_size_t()
        base = L.bpf_map__initial_value(ptr, ctypes.byref(size))
        if not base or rv.offset + rv.size > size.value:
            raise BpfError(E.EINVAL, f"{rv.section} image too small for {var}")
        return rv, base, size.value

    def set_rodata(self, var: str, value: Any) -> None:
        """Write a ``const volatile`` global before load. ``value`` is a ctypes instance (or
        bytes) of exactly the variable's size."""
        self._preload(f"set_rodata({var!r})")   # after load the image is frozen read-only memory
        raw = bytes(value)
        rv, base, _ = self._rodata_slot(var)
        if len(raw) != rv.size:
            tname = type(value).__name__
            raise ValueError(f"rodata {var!r} is {rv.size} bytes in the object, the given "
                             f"{tname} is {len(raw)} bytes (ctypes mirror out of sync?)")
        ctypes.memmove(base + rv.offset, raw, len(raw))

    def get_rodata(self, var: str, ctype: type | None = None):
        """Current value of a rodata variable (bytes, or decoded through ``ctype``)."""
        self._alive()
        rv, base, _ = self._rodata_slot(var)
        raw = ctypes.string_at(base + rv.offset, rv.size)
        return ctype.from_buffer_copy(raw) if ctype else raw

    # ---- pinning ----
    def pin_maps(self, directory: str | os.PathLike, names: list[str] | None = None) -> None:
        """Pin maps as <directory>/<map name> at load; maps already pinned there are reused
        (a second process gets the same maps). Internal maps (.rodata/.bss/.data) are not
        pinned unless named: their content is per-load configuration."""
        self._preload("pin_maps")
        d = Path(directory)
        if not d.is_dir():
            raise BpfError(E.ENOENT, f"pin directory {d} does not exist",
                           hint="create it with nf.bpf.pin.instance_dir(name)")
        chosen = names if names is not None else [
            n for n, m in self._maps.items() if not L.bpf_map__is_internal(m._ptr)]
        for n in chosen:
            self.map(n).set_pin_path(d / n)

    # ---- load ----
    def load(self) -> "BpfObject":
        """Create maps and load programs. Raises VerifierError (program rejected),
        MissingKfuncError (module not loaded) or BpfError."""
        self._preload("load")
        with L.capture_messages() as cap:
            ret = L.bpf_object__load(self._obj)
        self.loaded = True           # libbpf refuses a second attempt either way
        if ret < 0:
            raise load_error(-ret, os.path.basename(self.path), cap.text)
        return self

    # ---- lifetime ----
    def own(self, resource):
        """Close ``resource`` (e.g. the template map given to set_inner_map) with this object."""
        self._owned.append(resource)
        return resource

    def close(self) -> None:
        if self._obj is not None:
            L.bpf_object__close(self._obj)
            self._obj = None
        while self._owned:
            self._owned.pop().close()


    def __repr__(self):
        state = "closed" if self._obj is None else ("loaded" if self.loaded else "open")
        return f"<BpfObject {self.path} {state}>"
