"""ctypes bindings for the parts of libbpf 1.4 that nf.bpf uses (nothing else).

Opts structs mirror /usr/include/bpf/{bpf,libbpf}.h of libbpf 1.4.6 field by field, and every one
carries its own ``sz`` (libbpf rejects a struct whose unknown tail is non-zero, and uses ``sz`` to
know which fields the caller knows about). Kernel constants mirror the uapi linux/bpf.h values,
which are ABI and never change.

libbpf 1.x returns ``-errno`` from int-returning calls (and sets errno), NULL + errno from
pointer-returning ones; ``check()`` turns both into a BpfError.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
from ctypes import (
    CFUNCTYPE, POINTER, Structure, c_bool, c_char, c_char_p, c_int, c_size_t, c_uint8, c_uint32,
    c_uint64, c_void_p,
)

from nf.bpf.errors import BpfError

LIBBPF_PATHS = ("/usr/lib/x86_64-linux-gnu/libbpf.so.1", "libbpf.so.1")


def _load() -> ctypes.CDLL:
    last: OSError | None = None
    for p in LIBBPF_PATHS:
        try:
            return ctypes.CDLL(p, use_errno=True)
        except OSError as e:  # try the next spelling
            last = e
    raise BpfError(0, f"cannot load libbpf.so.1: {last}",
                   hint="run scripts/setup.sh (installs libbpf1 1.4.6 from bookworm-backports)")


lib = _load()
libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

# ---- kernel constants (uapi linux/bpf.h, linux/if_link.h, linux/btf.h) ----
BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK = 0, 1, 2, 4
BPF_F_TEST_RUN_ON_CPU = 1 << 0
BPF_F_TEST_XDP_LIVE_FRAMES = 1 << 1
BPF_F_REPLACE = 1 << 2            # link update: fail unless old_prog_fd is attached
BPF_XDP = 37                      # enum bpf_attach_type
BPF_PROG_TYPE_XDP = 6
BPF_LINK_TYPE_XDP = 6
XDP_FLAGS_UPDATE_IF_NOEXIST = 1 << 0
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2
XDP_FLAGS_HW_MODE = 1 << 3
XDP_ATTACHED_NONE, XDP_ATTACHED_DRV, XDP_ATTACHED_SKB, XDP_ATTACHED_HW, XDP_ATTACHED_MULTI = range(5)
BTF_KIND_VAR = 14
BTF_KIND_DATASEC = 15
BPF_OBJ_NAME_LEN = 16

MAP_TYPES = {
    0: "unspec", 1: "hash", 2: "array", 3: "prog_array", 4: "perf_event_array", 5: "percpu_hash",
    6: "percpu_array", 7: "stack_trace", 8: "cgroup_array", 9: "lru_hash", 10: "lru_percpu_hash",
    11: "lpm_trie", 12: "array_of_maps", 13: "hash_of_maps", 14: "devmap", 15: "sockmap",
    16: "cpumap", 17: "xskmap", 18: "sockhash", 19: "cgroup_storage", 20: "reuseport_sockarray",
    21: "percpu_cgroup_storage", 22: "queue", 23: "stack", 24: "sk_storage", 25: "devmap_hash",
    26: "struct_ops", 27: "ringbuf", 28: "inode_storage", 29: "task_storage", 30: "bloom_filter",
    31: "user_ringbuf", 32: "cgrp_storage", 33: "arena",
}
MAP_TYPE_IDS = {v: k for k, v in MAP_TYPES.items()}
PERCPU_MAP_TYPES = {5, 6, 10, 21}          # values are one slot per possible CPU
MAP_IN_MAP_TYPES = {12, 13}


# ---- opts structs (libbpf 1.4.6 headers) ----
class _Opts(Structure):
    """Base: sets ``sz`` to the struct size so libbpf knows which fields we filled."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.sz = ctypes.sizeof(self)


class bpf_object_open_opts(_Opts):
    _fields_ = [
        ("sz", c_size_t),
        ("object_name", c_char_p),
        ("relaxed_maps", c_bool),
        ("pin_root_path", c_char_p),
        ("_attach_prog_fd_stub", c_uint32),   # removed field, kept as padding in 1.x
        ("kconfig", c_char_p),
        ("btf_custom_path", c_char_p),
        ("kernel_log_buf", c_void_p),
        ("kernel_log_size", c_size_t),
        ("kernel_log_level", c_uint32),
        ("bpf_token_path", c_char_p),
    ]


class bpf_test_run_opts(_Opts):
    _fields_ = [
        ("sz", c_size_t),
        ("data_in", c_void_p),
        ("data_out", c_void_p),
        ("data_size_in", c_uint32),
        ("data_size_out", c_uint32),
        ("ctx_in", c_void_p),
        ("ctx_out", c_void_p),
        ("ctx_size_in", c_uint32),
        ("ctx_size_out", c_uint32),
        ("retval", c_uint32),
        ("repeat", c_int),
        ("duration", c_uint32),
        ("flags", c_uint32),
        ("cpu", c_uint32),
        ("batch_size", c_uint32),
    ]


class _kprobe_multi(Structure):
    _fields_ = [("flags", c_uint32), ("cnt", c_uint32), ("syms", c_void_p), ("addrs", c_void_p),
                ("cookies", c_void_p)]


class _uprobe_multi(Structure):
    _fields_ = [("flags", c_uint32), ("cnt", c_uint32), ("path", c_char_p), ("offsets", c_void_p),
                ("ref_ctr_offsets", c_void_p), ("cookies", c_void_p), ("pid", c_uint32)]


class _link_create_union(ctypes.Union):
    # Only the largest members matter for layout; XDP links use none of them.
    _fields_ = [("kprobe_multi", _kprobe_multi), ("uprobe_multi", _uprobe_multi),
                ("tcx", c_uint64 * 2)]


class bpf_link_create_opts(_Opts):
    _fields_ = [
        ("sz", c_size_t),
        ("flags", c_uint32),
        ("iter_info", c_void_p),
        ("iter_info_len", c_uint32),
        ("target_btf_id", c_uint32),
        ("u", _link_create_union),
    ]


class bpf_link_update_opts(_Opts):
    _fields_ = [("sz", c_size_t), ("flags", c_uint32), ("old_prog_fd", c_uint32),
                ("old_map_fd", c_uint32)]


class bpf_map_batch_opts(_Opts):
    _fields_ = [("sz", c_size_t), ("elem_flags", c_uint64), ("flags", c_uint64)]


class bpf_map_create_opts(_Opts):
    _fields_ = [
        ("sz", c_size_t),
        ("btf_fd", c_uint32),
        ("btf_key_type_id", c_uint32),
        ("btf_value_type_id", c_uint32),
        ("btf_vmlinux_value_type_id", c_uint32),
        ("inner_map_fd", c_uint32),
        ("map_flags", c_uint32),
        ("map_extra", c_uint64),
        ("numa_node", c_uint32),
        ("map_ifindex", c_uint32),
        ("value_type_btf_obj_fd", ctypes.c_int32),
        ("token_fd", c_uint32),
    ]


class bpf_xdp_query_opts(_Opts):
    _fields_ = [
        ("sz", c_size_t),
        ("prog_id", c_uint32),
        ("drv_prog_id", c_uint32),
        ("hw_prog_id", c_uint32),
        ("skb_prog_id", c_uint32),
        ("attach_mode", c_uint8),
        ("feature_flags", c_uint64),
        ("xdp_zc_max_segs", c_uint32),
    ]


class bpf_xdp_attach_opts(_Opts):
    _fields_ = [("sz", c_size_t), ("old_prog_fd", c_int)]


# ---- kernel info structs (prefixes are fine: the kernel copies min(len, its size)) ----
class bpf_prog_info(Structure):
    _fields_ = [
        ("type", c_uint32), ("id", c_uint32), ("tag", c_uint8 * 8),
        ("jited_prog_len", c_uint32), ("xlated_prog_len", c_uint32),
        ("jited_prog_insns", c_uint64), ("xlated_prog_insns", c_uint64),
        ("load_time", c_uint64), ("created_by_uid", c_uint32), ("nr_map_ids", c_uint32),
        ("map_ids", c_uint64), ("name", c_char * BPF_OBJ_NAME_LEN),
    ]


class bpf_map_info(Structure):
    _fields_ = [
        ("type", c_uint32), ("id", c_uint32), ("key_size", c_uint32), ("value_size", c_uint32),
        ("max_entries", c_uint32), ("map_flags", c_uint32), ("name", c_char * BPF_OBJ_NAME_LEN),
    ]


class bpf_link_info(Structure):
    _fields_ = [
        ("type", c_uint32), ("id", c_uint32), ("prog_id", c_uint32), ("_pad", c_uint32),
        ("xdp_ifindex", c_uint32),   # union member xdp.ifindex for BPF_LINK_TYPE_XDP
        ("_rest", c_uint32 * 3),
    ]


class xdp_md(Structure):
    """struct xdp_md: the ctx_in of XDP test runs (data/data_end/data_meta must be 0 or sane)."""
    _fields_ = [("data", c_uint32), ("data_end", c_uint32), ("data_meta", c_uint32),
                ("ingress_ifindex", c_uint32), ("rx_queue_index", c_uint32),
                ("egress_ifindex", c_uint32)]


class btf_type(Structure):
    _fields_ = [("name_off", c_uint32), ("info", c_uint32), ("size_or_type", c_uint32)]

    @property
    def kind(self) -> int:
        return (self.info >> 24) & 0x1F

    @property
    def vlen(self) -> int:
        return self.info & 0xFFFF


class btf_var_secinfo(Structure):
    _fields_ = [("type", c_uint32), ("offset", c_uint32), ("size", c_uint32)]


# ---- prototypes ----
def _fn(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


vp = c_void_p
bpf_object__open_file = _fn("bpf_object__open_file", vp, c_char_p, POINTER(bpf_object_open_opts))
bpf_object__load = _fn("bpf_object__load", c_int, vp)
bpf_object__close = _fn("bpf_object__close", None, vp)
bpf_object__name = _fn("bpf_object__name", c_char_p, vp)
bpf_object__btf = _fn("bpf_object__btf", vp, vp)
bpf_object__next_program = _fn("bpf_object__next_program", vp, vp, vp)
bpf_object__next_map = _fn("bpf_object__next_map", vp, vp, vp)

bpf_program__name = _fn("bpf_program__name", c_char_p, vp)
bpf_program__section_name = _fn("bpf_program__section_name", c_char_p, vp)
bpf_program__fd = _fn("bpf_program__fd", c_int, vp)
bpf_program__type = _fn("bpf_program__type", c_int, vp)
bpf_program__autoload = _fn("bpf_program__autoload", c_bool, vp)
bpf_program__set_autoload = _fn("bpf_program__set_autoload", c_int, vp, c_bool)
bpf_program__set_log_level = _fn("bpf_program__set_log_level", c_int, vp, c_uint32)

bpf_map__name = _fn("bpf_map__name", c_char_p, vp)
bpf_map__fd = _fn("bpf_map__fd", c_int, vp)
bpf_map__type = _fn("bpf_map__type", c_int, vp)
bpf_map__key_size = _fn("bpf_map__key_size", c_uint32, vp)
bpf_map__value_size = _fn("bpf_map__value_size", c_uint32, vp)
bpf_map__max_entries = _fn("bpf_map__max_entries", c_uint32, vp)
bpf_map__set_max_entries = _fn("bpf_map__set_max_entries", c_int, vp, c_uint32)
bpf_map__set_value_size = _fn("bpf_map__set_value_size", c_int, vp, c_uint32)
bpf_map__map_flags = _fn("bpf_map__map_flags", c_uint32, vp)
bpf_map__set_map_flags = _fn("bpf_map__set_map_flags", c_int, vp, c_uint32)
bpf_map__initial_value = _fn("bpf_map__initial_value", vp, vp, POINTER(c_size_t))
bpf_map__is_internal = _fn("bpf_map__is_internal", c_bool, vp)
bpf_map__set_pin_path = _fn("bpf_map__set_pin_path", c_int, vp, c_char_p)
bpf_map__pin_path = _fn("bpf_map__pin_path", c_char_p, vp)
bpf_map__is_pinned = _fn("bpf_map__is_pinned", c_bool, vp)
bpf_map__pin = _fn("bpf_map__pin", c_int, vp, c_char_p)
bpf_map__unpin = _fn("bpf_map__unpin", c_int, vp, c_char_p)
bpf_map__reuse_fd = _fn("bpf_map__reuse_fd", c_int, vp, c_int)
bpf_map__set_inner_map_fd = _fn("bpf_map__set_inner_map_fd", c_int, vp, c_int)
bpf_map__set_autocreate = _fn("bpf_map__set_autocreate", c_int, vp, c_bool)

btf__find_by_name_kind = _fn("btf__find_by_name_kind", ctypes.c_int32, vp, c_char_p, c_uint32)
btf__type_by_id = _fn("btf__type_by_id", POINTER(btf_type), vp, c_uint32)
btf__name_by_offset = _fn("btf__name_by_offset", c_char_p, vp, c_uint32)
btf__type_cnt = _fn("btf__type_cnt", c_uint32, vp)

bpf_map_create = _fn("bpf_map_create", c_int, c_int, c_char_p, c_uint32, c_uint32, c_uint32,
                     POINTER(bpf_map_create_opts))
bpf_map_lookup_elem = _fn("bpf_map_lookup_elem", c_int, c_int, vp, vp)
bpf_map_lookup_elem_flags = _fn("bpf_map_lookup_elem_flags", c_int, c_int, vp, vp, c_uint64)
bpf_map_update_elem = _fn("bpf_map_update_elem", c_int, c_int, vp, vp, c_uint64)
bpf_map_delete_elem = _fn("bpf_map_delete_elem", c_int, c_int, vp)
bpf_map_get_next_key = _fn("bpf_map_get_next_key", c_int, c_int, vp, vp)
bpf_map_update_batch = _fn("bpf_map_update_batch", c_int, c_int, vp, vp, POINTER(c_uint32),
                           POINTER(bpf_map_batch_opts))
bpf_map_lookup_batch = _fn("bpf_map_lookup_batch", c_int, c_int, vp, vp, vp, vp,
                           POINTER(c_uint32), POINTER(bpf_map_batch_opts))
bpf_map_delete_batch = _fn("bpf_map_delete_batch", c_int, c_int, vp, POINTER(c_uint32),
                           POINTER(bpf_map_batch_opts))
bpf_map_freeze = _fn("bpf_map_freeze", c_int, c_int)

bpf_obj_pin = _fn("bpf_obj_pin", c_int, c_int, c_char_p)
bpf_obj_get = _fn("bpf_obj_get", c_int, c_char_p)
bpf_prog_get_fd_by_id = _fn("bpf_prog_get_fd_by_id", c_int, c_uint32)
bpf_map_get_fd_by_id = _fn("bpf_map_get_fd_by_id", c_int, c_uint32)
bpf_link_get_fd_by_id = _fn("bpf_link_get_fd_by_id", c_int, c_uint32)
bpf_prog_get_info_by_fd = _fn("bpf_prog_get_info_by_fd", c_int, c_int, POINTER(bpf_prog_info),
                              POINTER(c_uint32))
bpf_map_get_info_by_fd = _fn("bpf_map_get_info_by_fd", c_int, c_int, POINTER(bpf_map_info),
                             POINTER(c_uint32))
bpf_link_get_info_by_fd = _fn("bpf_link_get_info_by_fd", c_int, c_int, POINTER(bpf_link_info),
                              POINTER(c_uint32))

bpf_prog_test_run_opts = _fn("bpf_prog_test_run_opts", c_int, c_int, POINTER(bpf_test_run_opts))
bpf_link_create = _fn("bpf_link_create", c_int, c_int, c_int, c_int,
                      POINTER(bpf_link_create_opts))
bpf_link_update = _fn("bpf_link_update", c_int, c_int, c_int, POINTER(bpf_link_update_opts))
bpf_link_detach = _fn("bpf_link_detach", c_int, c_int)
bpf_xdp_query = _fn("bpf_xdp_query", c_int, c_int, c_int, POINTER(bpf_xdp_query_opts))
bpf_xdp_attach = _fn("bpf_xdp_attach", c_int, c_int, c_int, c_uint32,
                     POINTER(bpf_xdp_attach_opts))
bpf_xdp_detach = _fn("bpf_xdp_detach", c_int, c_int, c_uint32, POINTER(bpf_xdp_attach_opts))
libbpf_num_possible_cpus = _fn("libbpf_num_possible_cpus", c_int)

PRINT_FN = CFUNCTYPE(c_int, c_int, c_char_p, c_void_p)
libbpf_set_print = _fn("libbpf_set_print", vp, PRINT_FN)
_vsnprintf = libc.vsnprintf
_vsnprintf.restype = c_int
_vsnprintf.argtypes = [c_void_p, c_size_t, c_char_p, c_void_p]


def check(ret: int, what: str, hint: str | None = None) -> int:
    """Raise BpfError for a negative libbpf return (libbpf 1.x returns -errno)."""
    if ret < 0:
        err = -ret if ret != -1 else (ctypes.get_errno() or 1)
        raise BpfError(err, what, hint=hint)
    return ret


def check_ptr(ptr: int | None, what: str, hint: str | None = None) -> int:
    if not ptr:
        raise BpfError(ctypes.get_errno() or 22, what, hint=hint)
    return ptr


def num_possible_cpus() -> int:
    n = libbpf_num_possible_cpus()
    if n <= 0:
        raise BpfError(-n, "cannot read /sys/devices/system/cpu/possible")
    return n


def get_info(getter, fd: int, info_cls, what: str):
    """One bpf_*_get_info_by_fd call: a filled ``info_cls`` or BpfError."""
    info = info_cls()
    n = ctypes.c_uint32(ctypes.sizeof(info))
    check(getter(fd, ctypes.byref(info), ctypes.byref(n)), what)
    return info


class Closing:
    """Lifetime of an fd/object owner: ``with`` closes it, and so does garbage collection as a
    last resort (subclasses define an idempotent ``close()``)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: nothing to report to
            pass


def close_fd(fd: int) -> None:
    if fd is not None and fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass


# ---- libbpf's print callback: captured per load, otherwise forwarded to logging ----
LIBBPF_WARN, LIBBPF_INFO, LIBBPF_DEBUG = 0, 1, 2
_log = logging.getLogger("nf.bpf.libbpf")
_capture = threading.local()
capture_lock = threading.RLock()   # libbpf's print hook is process-global: serialise loads


class _VaList(Structure):
    # x86-64 SysV va_list element: copying it is exactly what va_copy does on this ABI.
    _fields_ = [("gp_offset", c_uint32), ("fp_offset", c_uint32),
                ("overflow_arg_area", c_void_p), ("reg_save_area", c_void_p)]


def _format(fmt: bytes, ap: int) -> str:
    copy = _VaList.from_buffer_copy(ctypes.string_at(ap, ctypes.sizeof(_VaList)))
    n = _vsnprintf(None, 0, fmt, ctypes.addressof(copy))   # size pass consumes the copy
    if n < 0:
        return fmt.decode(errors="replace")
    buf = ctypes.create_string_buffer(n + 1)
    _vsnprintf(buf, n + 1, fmt, ap)
    return buf.value.decode(errors="replace")


def _print(level: int, fmt: bytes, ap: int) -> int:
    try:
        sink = getattr(_capture, "lines", None)
        want_log = _log.isEnabledFor(logging.DEBUG if level == LIBBPF_DEBUG else logging.INFO)
        if level == LIBBPF_DEBUG and not want_log:
            return 0                          # debug chatter: skip the formatting cost
        if sink is None and not want_log:
            return 0
        text = _format(fmt, ap)
        if sink is not None and level != LIBBPF_DEBUG:
            sink.append(text)
        if want_log:
            _log.log(logging.DEBUG if level == LIBBPF_DEBUG else logging.INFO, "%s", text.rstrip())
    except Exception:  # never let a Python error cross into C
        pass
    return 0


_print_cb = PRINT_FN(_print)      # module-level reference keeps the trampoline alive
libbpf_set_print(_print_cb)


class capture_messages:
    """Collect libbpf warnings/infos emitted by this thread inside the block (as one string)."""

    def __enter__(self):
        capture_lock.acquire()
        self._prev = getattr(_capture, "lines", None)
        _capture.lines = []
        return self

    def __exit__(self, *exc):
        self.text = "".join(_capture.lines)
        _capture.lines = self._prev
        capture_lock.release()
        return False

bpf_object__find_map_by_name = _fn("bpf_object__find_map_by_name", vp, vp, c_char_p)
bpf_object__find_program_by_name = _fn("bpf_object__find_program_by_name", vp, vp, c_char_p)
bpf_prog_get_next_id = _fn("bpf_prog_get_next_id", c_int, c_uint32, POINTER(c_uint32))
bpf_link_get_next_id = _fn("bpf_link_get_next_id", c_int, c_uint32, POINTER(c_uint32))
