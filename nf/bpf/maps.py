"""BPF maps: raw byte operations on an fd, and typed views through ctypes mirrors.

A Map is either part of a BpfObject (configurable before load, fd owned by the object) or
standalone (from_pin / from_fd / from_id / create; owns its fd, close() or ``with`` releases it).

Per-CPU maps (percpu_hash/array, lru_percpu_hash) exchange one value slot per *possible* CPU, each
slot rounded up to 8 bytes — the kernel's layout, not ours; TypedMap hides it behind lists.
"""
from __future__ import annotations

import ctypes
import errno as E
import os
from typing import Any, Generic, Iterable, Iterator, Sequence, TypeVar

from nf.bpf import libbpf as L
from nf.bpf.errors import BpfError

K = TypeVar("K")
V = TypeVar("V")


def _round8(n: int) -> int:
    return (n + 7) & ~7


class Map(L.Closing):
    """One BPF map. Properties read libbpf's view before load and the kernel's after."""

    def __init__(self, *, ptr: int | None = None, owner: Any = None, fd: int = -1,
                 owns_fd: bool = False):
        self._ptr = ptr            # struct bpf_map * inside a bpf_object (object maps only)
        self._owner = owner        # the BpfObject, for load state and lifetime checks
        self._fd = fd              # standalone maps only
        self._owns_fd = owns_fd
        self._info: L.bpf_map_info | None = None
        self.pin_path: str | None = None

    # ---- construction of standalone maps ----
    @classmethod
    def from_fd(cls, fd: int, *, dup: bool = True) -> "Map":
        """Wrap an existing map fd (duplicated by default, so the caller keeps its own)."""
        m = cls(fd=os.dup(fd) if dup else fd, owns_fd=True)
        m._refresh_info()
        return m

    @classmethod
    def from_pin(cls, path: str | os.PathLike, key: type | None = None,
                 value: type | None = None) -> "Map | TypedMap":
        """Open a pinned map; with key/value ctypes, return its TypedMap view directly."""
        if (key is None) != (value is None):
            raise TypeError("from_pin needs both key and value types, or neither")
        fd = L.bpf_obj_get(os.fsencode(path))
        L.check(fd, f"cannot open pinned map {path}",
                hint="is it pinned (ls the bpffs dir) and is /sys/fs/bpf a bpffs mount?")
        m = cls(fd=fd, owns_fd=True)
        m.pin_path = str(path)
        try:
            m._refresh_info()
        except BpfError:
            m.close()
            raise BpfError(E.EINVAL, f"{path} is pinned but is not a BPF map")
        if key is not None:
            try:
                return m.typed(key, value)
            except ValueError:
                m.close()
                raise
        return m

    @classmethod
    def from_id(cls, map_id: int) -> "Map":
        fd = L.bpf_map_get_fd_by_id(map_id)
        L.check(fd, f"no map with id {map_id}")
        m = cls(fd=fd, owns_fd=True)
        m._refresh_info()
        return m

    @classmethod
    def create(cls, type: str | int, key_size: int, value_size: int, max_entries: int, *,
               name: str = "", flags: int = 0, inner_map: "Map | None" = None) -> "Map":
        """Create a standalone map (e.g. an inner map for array/hash-of-maps)."""
        t = L.MAP_TYPE_IDS.get(type, type) if isinstance(type, str) else type
        if not isinstance(t, int):
            raise ValueError(f"unknown map type {type!r}; known: {sorted(L.MAP_TYPE_IDS)}")
        opts = L.bpf_map_create_opts(map_flags=flags)
        if inner_map is not None:
            opts.inner_map_fd = inner_map.fd
        fd = L.bpf_map_create(t, name.encode()[:15] or None, key_size, value_size, max_entries,
                              ctypes.byref(opts))
        L.check(fd, f"cannot create {L.MAP_TYPES.get(t, t)} map {name!r} "
                    f"(key {key_size}, value {value_size}, max_entries {max_entries})")
        m = cls(fd=fd, owns_fd=True)
        m._refresh_info()
        return m

    def _refresh_info(self) -> None:
        self._info = L.get_info(L.bpf_map_get_info_by_fd, self.fd, L.bpf_map_info,
                                "bpf_map_get_info_by_fd")

    # ---- identity and shape ----
    def _alive(self) -> None:
        if self._ptr is not None and (self._owner is None or self._owner._obj is None):
            raise BpfError(E.EBADF, "map used after its BpfObject was closed")
        if self._ptr is None and self._fd < 0:
            raise BpfError(E.EBADF, "map used after close()")

    @property
    def fd(self) -> int:
        self._alive()
        if self._ptr is not None:
            fd = L.bpf_map__fd(self._ptr)
            if fd < 0:
                raise BpfError(E.EBADF, f"map {self.name!r} has no fd yet: load() the object first")
            return fd
        return self._fd

    @property
    def name(self) -> str:
        if self._ptr is not None:
            self._alive()
            return L.bpf_map__name(self._ptr).decode()
        return self._info.name.decode() if self._info else "?"

    @property
    def type(self) -> int:
        if self._ptr is not None:
            self._alive()
            return L.bpf_map__type(self._ptr)
        return self._info.type

    @property
    def type_name(self) -> str:
        return L.MAP_TYPES.get(self.type, str(self.type))

    @property
    def key_size(self) -> int:
        if self._ptr is not None:
            self._alive()
            return L.bpf_map__key_size(self._ptr)
        return self._info.key_size

    @property
    def value_size(self) -> int:
        if self._ptr is not None:
            self._alive()
            return L.bpf_map__value_size(self._ptr)
        return self._info.value_size

    @property
    def max_entries(self) -> int:
        if self._ptr is not None:
            self._alive()
            return L.bpf_map__max_entries(self._ptr)
        return self._info.max_entries

    @property
    def flags(self) -> int:
        if self._ptr is not None:
            self._alive()
            return L.bpf_map__map_flags(self._ptr)
        return self._info.map_flags

    @property
    def id(self) -> int:
        return L.get_info(L.bpf_map_get_info_by_fd, self.fd, L.bpf_map_info,
                          "bpf_map_get_info_by_fd").id

    @property
    def percpu(self) -> bool:
        return self.type in L.PERCPU_MAP_TYPES

    @property
    def ncpus(self) -> int:
        """Value slots per lookup: possible CPUs for per-CPU maps, else 1."""
        return L.num_possible_cpus() if self.percpu else 1

    @property
    def value_buf_size(self) -> int:
        return self.ncpus * _round8(self.value_size) if self.percpu else self.value_size

    def __repr__(self) -> str:
        try:
            return (f"<Map {self.name} {self.type_name} key={self.key_size} "
                    f"value={self.value_size} max={self.max_entries}>")
        except BpfError:
            return "<Map (closed)>"

    # ---- before load (object maps) ----
    def _preload(self, what: str) -> None:
        if self._ptr is None:
            raise BpfError(E.EINVAL, f"{what} applies to an object's map before load, "
                                     f"not to a standalone map")
        self._alive()
        if self._owner.loaded:
            raise BpfError(E.EBUSY, f"{what} on map {self.name!r}: the object is already loaded")

    def set_max_entries(self, n: int) -> "Map":
        self._preload("set_max_entries")
        if n <= 0:
            raise ValueError(f"max_entries must be positive, got {n}")
        L.check(L.bpf_map__set_max_entries(self._ptr, n), f"set_max_entries({self.name}, {n})")
        return self

    def set_value_size(self, n: int) -> "Map":
        """Value size before load (a map declared with value_size, not a BTF value type)."""
        self._preload("set_value_size")
        if n <= 0:
            raise ValueError(f"value_size must be positive, got {n}")
        L.check(L.bpf_map__set_value_size(self._ptr, n), f"set_value_size({self.name}, {n})")
        return self

    def set_flags(self, flags: int) -> "Map":
        self._preload("set_flags")
        L.check(L.bpf_map__set_map_flags(self._ptr, flags), f"set_flags({self.name})")
        return self

    def set_pin_path(self, path: str | os.PathLike | None) -> "Map":
        """At load, reuse the map pinned at ``path`` if compatible, else create and pin it there."""
        self._preload("set_pin_path")
        p = os.fsencode(path) if path is not None else None
        L.check(L.bpf_map__set_pin_path(self._ptr, p), f"set_pin_path({self.name}, {path})")
        self.pin_path = str(path) if path is not None else None
        return self

    def set_inner_map(self, inner: "Map") -> "Map":
        """Template inner map for a map-in-map declared without one (fd read at load)."""
        self._preload("set_inner_map")
        L.check(L.bpf_map__set_inner_map_fd(self._ptr, inner.fd), f"set_inner_map({self.name})")
        return self

    def reuse(self, other: "Map") -> "Map":
        """Make this object's map be ``other`` (same shape) instead of creating a new one."""
        self._preload("reuse")
        L.check(L.bpf_map__reuse_fd(self._ptr, other.fd), f"reuse map {self.name}",
                hint="type, key/value size, max_entries and flags must match")
        return self

    # ---- pinning after load ----
    def pin(self, path: str | os.PathLike) -> None:
        L.check(L.bpf_obj_pin(self.fd, os.fsencode(path)), f"pin map {self.name} at {path}")
        self.pin_path = str(path)

    def unpin(self) -> None:
        if self.pin_path:
            try:
                os.unlink(self.pin_path)
            except FileNotFoundError:
                pass
            self.pin_path = None

    @property
    def pinned(self) -> bool:
        if self._ptr is not None:
            return bool(L.bpf_map__is_pinned(self._ptr))
        return self.pin_path is not None and os.path.exists(self.pin_path)

    # ---- raw byte operations ----
    def _key_buf(self, key: bytes | None):
        if key is None:
            return None
        key = bytes(key)
        if len(key) != self.key_size:
            raise ValueError(f"map {self.name}: key is {len(key)} bytes, map key_size is "
                             f"{self.key_size}")
        return ctypes.create_string_buffer(key, len(key))

    def lookup(self, key: bytes) -> bytes | None:
        """Raw value bytes (per-CPU maps: all slots concatenated), None when absent."""
        k = self._key_buf(key)
        v = ctypes.create_string_buffer(self.value_buf_size)
        ret = L.bpf_map_lookup_elem(self.fd, k, v)
        if ret < 0:
            if -ret == E.ENOENT:
                return None
            L.check(ret, f"lookup in map {self.name}")
        return v.raw

    def update(self, key: bytes, value: "bytes | Map", flags: int = L.BPF_ANY) -> None:
        if isinstance(value, Map):            # map-in-map: the value is the inner map's fd
            value = ctypes.c_uint32(value.fd)
        value = bytes(value)
        if len(value) != self.value_buf_size:
            raise ValueError(f"map {self.name}: value is {len(value)} bytes, expected "
                             f"{self.value_buf_size}")
        k = self._key_buf(key)
        v = ctypes.create_string_buffer(value, len(value))
        ret = L.bpf_map_update_elem(self.fd, k, v, flags)
        if ret < 0:
            err = -ret
            hint = {E.EEXIST: "flags=BPF_NOEXIST and the key exists",
                    E.ENOENT: "flags=BPF_EXIST and the key is absent",
                    E.E2BIG: f"map is full (max_entries={self.max_entries})"}.get(err)
            L.check(ret, f"update in map {self.name}", hint=hint)

    def delete(self, key: bytes) -> bool:
        """Delete; False if the key was absent."""
        ret = L.bpf_map_delete_elem(self.fd, self._key_buf(key))
        if ret < 0:
            if -ret == E.ENOENT:
                return False
            L.check(ret, f"delete in map {self.name}",
                    hint="array maps cannot delete elements" if -ret == E.EINVAL else None)
        return True

    def raw_keys(self) -> Iterator[bytes]:
        """Every key, via bpf_map_get_next_key (hash maps: deleting the current key while
        iterating restarts from the first key, so collect first if you delete)."""
        fd, ks = self.fd, self.key_size
        cur = None
        nxt = ctypes.create_string_buffer(ks)
        while True:
            ret = L.bpf_map_get_next_key(fd, cur, nxt)
            if ret < 0:
                if -ret == E.ENOENT:
                    return
                L.check(ret, f"get_next_key in map {self.name}")
            yield nxt.raw
            cur = ctypes.create_string_buffer(nxt.raw, ks)

    def typed(self, key: type, value: type) -> "TypedMap":
        return TypedMap(self, key, value)

    def inner(self, key: bytes) -> "Map | None":
        """For array/hash-of-maps: the inner map stored at ``key`` (the kernel returns its id)."""
        raw = self.lookup(key)
        if raw is None:
            return None
        return Map.from_id(int.from_bytes(raw[:4], "little"))

    def freeze(self) -> None:
        L.check(L.bpf_map_freeze(self.fd), f"freeze map {self.name}")

    # ---- lifetime ----
    def close(self) -> None:
        if self._owns_fd and self._fd >= 0:
            L.close_fd(self._fd)
        self._fd = -1



def _as_bytes(ct: type, x: Any, what: str) -> bytes:
    size = ctypes.sizeof(ct)
    if isinstance(x, ct):
        return bytes(x)
    if isinstance(x, (bytes, bytearray, memoryview)):
        b = bytes(x)
        if len(b) != size:
            raise ValueError(f"{what} is {len(b)} bytes, {ct.__name__} is {size}")
        return b
    if isinstance(x, ctypes.Structure | ctypes.Array | ctypes.Union) or hasattr(x, "_b_base_"):
        raise TypeError(f"{what} is a {type(x).__name__}, expected {ct.__name__}")
    try:
        return bytes(ct(x))          # ints for c_uint32 & co, tuples for arrays
    except TypeError as e:
        raise TypeError(f"cannot convert {what} {x!r} to {ct.__name__}: {e}") from None


_HASHABLE: dict[type, type] = {}


def hashable(ct: type) -> type:
    """A subclass of a ctypes Structure/Array type whose instances compare and hash by their
    bytes, so decoded keys work in dicts and sets (plain ctypes instances are unhashable)."""
    if issubclass(ct, ctypes._SimpleCData) or getattr(ct, "_nf_hashable", False):
        return ct
    sub = _HASHABLE.get(ct)
    if sub is None:
        def __eq__(self, other):
            if isinstance(other, ct):
                return bytes(self) == bytes(other)
            return NotImplemented

        def __hash__(self):
            return hash(bytes(self))

        def __repr__(self):
            if isinstance(self, ctypes.Structure):
                fields = ", ".join(f"{f[0]}={getattr(self, f[0])!r}" for f in ct._fields_)
                return f"{ct.__name__}({fields})"
            return f"{ct.__name__}({list(self)!r})"

        sub = type(ct.__name__, (ct,), {"__eq__": __eq__, "__hash__": __hash__,
                                        "__repr__": __repr__, "_nf_hashable": True})
        _HASHABLE[ct] = sub
    return sub


def _decode(ct: type, buf: bytes, off: int = 0):
    v = ct.from_buffer_copy(buf, off)
    # simple ctypes (c_uint32, ...) come back as Python values, like ctypes fields do
    return v.value if isinstance(v, ctypes._SimpleCData) else v


def sum_values(values: Sequence[Any]):
    """Field-wise sum of per-CPU values: ints, ctypes Structures of integer fields (nested
    structures and integer arrays included). Integer fields wrap like the C type would."""
    if not values:
        raise ValueError("sum of no values")
    first = values[0]
    if isinstance(first, (int, float)):
        return sum(values)
    out = type(first)()
    _sum_into(out, values)
    return out


def _sum_into(out, values) -> None:
    if isinstance(out, ctypes.Array):
        for i in range(len(out)):
            if isinstance(out[i], (int, float)):
                out[i] = sum(v[i] for v in values)
            else:
                _sum_into(out[i], [v[i] for v in values])
        return
    for fname, *_ in type(out)._fields_:
        sample = getattr(values[0], fname)
        if isinstance(sample, (int, float)):
            setattr(out, fname, sum(getattr(v, fname) for v in values))
        elif isinstance(sample, (ctypes.Structure, ctypes.Array)):
            _sum_into(getattr(out, fname), [getattr(v, fname) for v in values])
        # bytes/char arrays and pointers are not summable: left zero


class TypedMap(Generic[K, V]):
    """A map seen through ctypes key/value types. Per-CPU maps give/take a list per CPU."""

    def __init__(self, map: Map, key: type, value: type):
        ks, vs = ctypes.sizeof(key), ctypes.sizeof(value)
        if ks != map.key_size or vs != map.value_size:
            raise ValueError(
                f"map {map.name}: ctypes mirror {key.__name__}/{value.__name__} is {ks}/{vs} bytes, "
                f"the map's key/value sizes are {map.key_size}/{map.value_size}")
        self.map, self.K, self.V = map, key, value
        self._Kdec = hashable(key)       # decoded keys are dict/set friendly
        self.percpu = map.percpu
        self._ncpus = map.ncpus
        self._slot = _round8(vs) if self.percpu else vs

    def __repr__(self):
        return f"<TypedMap {self.map.name} {self.K.__name__} -> {self.V.__name__}>"

    def close(self) -> None:
        """Close the underlying map if it is standalone (object maps belong to the object)."""
        self.map.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def fd(self) -> int:
        return self.map.fd

    @property
    def name(self) -> str:
        return self.map.name

    @property
    def ncpus(self) -> int:
        return self._ncpus

    def _key(self, key) -> bytes:
        return _as_bytes(self.K, key, f"key of {self.map.name}")

    def _value(self, value) -> bytes:
        if isinstance(value, Map):
            return bytes(ctypes.c_uint32(value.fd))
        if not self.percpu:
            return _as_bytes(self.V, value, f"value of {self.map.name}")
        if isinstance(value, (list, tuple)) and not (isinstance(value, tuple) and
                                                      issubclass(self.V, ctypes.Array)):
            if len(value) != self._ncpus:
                raise ValueError(f"per-CPU map {self.map.name}: {len(value)} values given for "
                                 f"{self._ncpus} possible CPUs")
            slots = value
        else:                                  # one value: the same on every CPU
            slots = [value] * self._ncpus
        pad = b"\0" * (self._slot - ctypes.sizeof(self.V))
        return b"".join(_as_bytes(self.V, s, f"value of {self.map.name}") + pad for s in slots)

    def _decode_value(self, raw: bytes, base: int = 0):
        if not self.percpu:
            return _decode(self.V, raw, base)
        return [_decode(self.V, raw, base + i * self._slot) for i in range(self._ncpus)]

    # ---- single elements ----
    def lookup(self, key, default=None):
        """The value (per-CPU: a list, one per possible CPU), or ``default`` when absent."""
        raw = self.map.lookup(self._key(key))
        return default if raw is None else self._decode_value(raw)

    def lookup_percpu(self, key) -> list | None:
        if not self.percpu:
            raise TypeError(f"map {self.map.name} ({self.map.type_name}) is not per-CPU")
        return self.lookup(key)

    def sum(self, key, default=None):
        """Per-CPU maps: the field-wise sum over CPUs (what the CLI shows)."""
        vals = self.lookup_percpu(key)
        return default if vals is None else sum_values(vals)

    def update(self, key, value, flags: int = L.BPF_ANY) -> None:
        self.map.update(self._key(key), self._value(value), flags)

    def delete(self, key) -> bool:
        return self.map.delete(self._key(key))

    def __getitem__(self, key):
        v = self.lookup(key)
        if v is None:
            raise KeyError(key)
        return v

    def __setitem__(self, key, value):
        self.update(key, value)

    def __delitem__(self, key):
        if not self.delete(key):
            raise KeyError(key)

    def __contains__(self, key) -> bool:
        return self.map.lookup(self._key(key)) is not None

    # ---- iteration ----
    def keys(self) -> Iterator:
        for raw in self.map.raw_keys():
            yield _decode(self._Kdec, raw)

    __iter__ = keys

    def items(self) -> Iterator[tuple]:
        """(key, value) pairs; keys deleted concurrently are skipped."""
        for raw in self.map.raw_keys():
            v = self.map.lookup(raw)
            if v is not None:
                yield _decode(self._Kdec, raw), self._decode_value(v)

    def values(self) -> Iterator:
        for _, v in self.items():
            yield v

    def __len__(self) -> int:
        return sum(1 for _ in self.map.raw_keys())

    def clear(self) -> int:
        keys = list(self.map.raw_keys())        # collect first: deleting restarts iteration
        return sum(self.map.delete(k) for k in keys)

    # ---- batches ----
    def batch_update(self, keys: Iterable, values: Iterable, flags: int = L.BPF_ANY) -> int:
        """One bpf_map_update_batch call; returns the count done. Raises on partial failure."""
        kb = [self._key(k) for k in keys]
        vb = [self._value(v) for v in values]
        if len(kb) != len(vb):
            raise ValueError(f"batch_update: {len(kb)} keys but {len(vb)} values")
        if not kb:
            return 0
        kbuf = ctypes.create_string_buffer(b"".join(kb))
        vbuf = ctypes.create_string_buffer(b"".join(vb))
        count = ctypes.c_uint32(len(kb))
        opts = L.bpf_map_batch_opts(elem_flags=flags)
        ret = L.bpf_map_update_batch(self.map.fd, kbuf, vbuf, ctypes.byref(count),
                                     ctypes.byref(opts))
        if ret < 0:
            err = -ret
            raise BpfError(err, f"batch update of {self.map.name}: {count.value} of {len(kb)} "
                                f"elements written",
                           hint="this map type may not support batch updates on this kernel: "
                                "update() element by element" if err in (E.EINVAL, 524) else None)
        return count.value

    def items_batch(self, chunk: int = 4096) -> Iterator[tuple]:
        """All (key, value) pairs via bpf_map_lookup_batch (far fewer syscalls than items())."""
        ks, vs = ctypes.sizeof(self.K), self._slot * self._ncpus if self.percpu else self._slot
        chunk = max(1, min(chunk, self.map.max_entries))   # no bigger buffers than the map
        kbuf = ctypes.create_string_buffer(ks * chunk)
        vbuf = ctypes.create_string_buffer(vs * chunk)
        token_size = max(ks, 8)      # hash maps use a u32 bucket cursor, arrays the key
        in_b, out_b = None, ctypes.create_string_buffer(token_size)
        opts = L.bpf_map_batch_opts()
        while True:
            count = ctypes.c_uint32(chunk)
            ret = L.bpf_map_lookup_batch(self.map.fd, in_b, out_b, kbuf, vbuf,
                                         ctypes.byref(count), ctypes.byref(opts))
            done = ret < 0 and -ret == E.ENOENT
            if ret < 0 and not done:
                L.check(ret, f"lookup_batch in {self.map.name}")
            raw_k, raw_v = kbuf.raw, vbuf.raw
            for i in range(count.value):
                yield _decode(self._Kdec, raw_k, i * ks), self._decode_value(raw_v, i * vs)
            if done:
                return
            in_b = ctypes.create_string_buffer(out_b.raw, token_size)
