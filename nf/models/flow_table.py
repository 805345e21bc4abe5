"""Python reference of the cuckoo flow table (xdp_progs/flow_table/): same layout, same hashes,
same insertion algorithm.

The ctypes mirrors of flow_table.h live here (checked against the object's BTF by the tests), and
:class:`CuckooModel` reproduces the datapath's placement slot for slot: the keyed hash of the
40-byte key (its five u64 words times the table's five secret odd multipliers, then MUL64's
fold or CRC-32C of the products: enetstl.h), signature ``h >> 16`` (0 -> 1), primary bucket
``h & mask``, alternate bucket ``b ^ ((mix(sig) & mask) | 1)``, the breadth-first displacement
search with the same queue order and bound, the same key-index allocator (fresh indices first,
then a FIFO of freed ones). A sequence of inserts/deletes applied to the model and to the
datapath therefore yields byte-identical bucket arrays, which is what the differential tests
compare.

The multipliers come from a 64-bit seed (:func:`hash_key`, a SplitMix64 stream); a deployment
draws its seed from the kernel's random source (:func:`nf.algo.draw_seed`) unless its config pins one.

    k = flow_key("10.0.0.1", "10.0.0.2", 1234, 80, "udp")     # bytes, 40
    m = CuckooModel(n_buckets=256, seed=7)
    rc, where = m.insert(k)           # rc: FT_OK / FT_EXISTS / FT_FULL / FT_NO_INDEX
    m.lookup(k)                       # Where(bucket, slot, idx) or None
"""
from __future__ import annotations

import ctypes
import enum
import ipaddress
import socket
from collections import deque
from dataclasses import dataclass

from nf.algo import crc32c

# flow_table.h
FT_SLOTS = 16
FT_KEY_SIZE = 40
FT_BATCH = 65536
FT_BFS_QUEUE = 1024
FT_SEARCH_MAX = 1024
FT_PATH_MAX = 8
FT_ALLOC_STRIDE = 3
FT_HIST_BINS = 16
FT_LOOKUP_RETRIES = 3
FT_SIG_MIX = 0x9E3779B1
FT_REFUSED = 64
FT_TICK_NS = 1_000_000
FT_BURST_TICKS = 4
FT_MIN_BUCKETS = 2
FT_MAX_BUCKETS = 1 << 20
OBJECT = "flow_table/flow_table"
M32 = 0xFFFFFFFF
M64 = (1 << 64) - 1


class Hash(enum.IntEnum):
    """enum ft_hash (= enetstl.h ENETSTL_CK_HASH_*)."""
    CRC32C = 0
    MUL64 = 1


# enetstl.h: words of the keyed hash, MUL64's final multiplier
CK_WORDS = 5
MUL64_FIN = 0x9E3779B97F4A7C15


class Action(enum.IntEnum):
    """enum ft_action"""
    PASS = 0
    DROP = 1
    REDIRECT = 2


class Flags(enum.IntFlag):
    STATIC = 1
    LEARNED = 2


class Rc(enum.IntEnum):
    """enum ft_rc"""
    OK = 0
    EXISTS = 1
    NOT_FOUND = 2
    FULL = 3
    NO_INDEX = 4
    BUSY = 5
    BAD_REQ = 6
    DEFERRED = 7


class Op(enum.IntEnum):
    NONE = 0        # batch only: the request is read, nothing done (the loop's own cost)
    INSERT = 1
    DELETE = 2
    LOOKUP = 3
    FIND = 4        # batch only: the datapath's lock-free lookup


class FtKey(ctypes.Structure):
    __c_struct__ = "struct ft_key"
    __bpf_object__ = OBJECT
    _fields_ = [("saddr", ctypes.c_uint32 * 4), ("daddr", ctypes.c_uint32 * 4),
                ("sport", ctypes.c_uint16), ("dport", ctypes.c_uint16),
                ("proto", ctypes.c_uint8), ("family", ctypes.c_uint8), ("pad", ctypes.c_uint8 * 2)]


class FtValue(ctypes.Structure):
    __c_struct__ = "struct ft_value"
    __bpf_object__ = OBJECT
    _fields_ = [("packets", ctypes.c_uint64), ("bytes", ctypes.c_uint64),
                ("first_seen", ctypes.c_uint64), ("last_seen", ctypes.c_uint64),
                ("action", ctypes.c_uint32), ("port", ctypes.c_uint32),
                ("flags", ctypes.c_uint32), ("pad", ctypes.c_uint32)]


class FtEntry(ctypes.Structure):
    __c_struct__ = "struct ft_entry"
    __bpf_object__ = OBJECT
    _fields_ = [("key", FtKey), ("val", FtValue)]


class FtBucket(ctypes.Structure):
    __c_struct__ = "struct ft_bucket"
    __bpf_object__ = OBJECT
    _fields_ = [("sig", ctypes.c_uint16 * FT_SLOTS), ("idx", ctypes.c_uint32 * FT_SLOTS)]


class CkHash(ctypes.Structure):
    """struct enetstl_ck_hash: the table's keyed hash (kind and secret multipliers)."""
    __c_struct__ = "struct enetstl_ck_hash"
    __bpf_object__ = OBJECT
    _fields_ = [("kind", ctypes.c_uint32), ("pad", ctypes.c_uint32),
                ("k", ctypes.c_uint64 * CK_WORDS)]


class FtState(ctypes.Structure):
    __c_struct__ = "struct ft_state"
    __bpf_object__ = OBJECT
    _fields_ = [("hash", CkHash), ("lock", ctypes.c_uint32), ("entries", ctypes.c_uint32),
                ("chg", ctypes.c_uint64), ("fresh", ctypes.c_uint32), ("free_head", ctypes.c_uint32),
                ("free_tail", ctypes.c_uint32), ("frees", ctypes.c_uint32)]


class FtMetrics(ctypes.Structure):
    __c_struct__ = "struct ft_metrics"
    __bpf_object__ = OBJECT
    _fields_ = [(n, ctypes.c_uint64) for n in (
        "lookups", "hits", "misses", "inserts", "fail_full", "fail_index", "fail_busy",
        "fail_budget", "fail_cached", "deletes", "retries", "search_steps")] + \
        [("hist", ctypes.c_uint64 * FT_HIST_BINS)]


class FtCfg(ctypes.Structure):
    __c_struct__ = "struct ft_cfg"
    __bpf_object__ = OBJECT
    _fields_ = [(n, ctypes.c_uint32) for n in (
        "bucket_mask", "capacity", "search_budget", "max_search", "learn", "default_action",
        "default_port", "non_ip_action", "hash")]


class FtReq(ctypes.Structure):
    __c_struct__ = "struct ft_req"
    __bpf_object__ = OBJECT
    _fields_ = [("op", ctypes.c_uint32), ("ret", ctypes.c_int32), ("update", ctypes.c_uint32),
                ("moves", ctypes.c_uint32), ("bucket", ctypes.c_uint32), ("slot", ctypes.c_uint32),
                ("idx", ctypes.c_uint32), ("pad", ctypes.c_uint32), ("key", FtKey),
                ("val", FtValue)]


MIRRORS = (FtKey, FtValue, FtEntry, FtBucket, CkHash, FtState, FtMetrics, FtCfg, FtReq)

# ---------------------------------------------------------------------------------------------
# keys

PROTOS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP, "icmp": socket.IPPROTO_ICMP,
          "icmpv6": socket.IPPROTO_ICMPV6}


def host_port(addr: str, port: int) -> str:
    """addr:port, an IPv6 address in brackets (RFC 3986: "2001:db8::1:53" names no port)."""
    return f"[{addr}]:{port}" if ":" in str(addr) else f"{addr}:{port}"


def flow_text(proto: int, src: str, sport: int, dst: str, dport: int) -> str:
    """The one way a flow is written: "udp 10.0.0.1:5000 -> 10.0.0.2:53", "tcp
    [2001:db8::1]:80 -> [2001:db8::2]:443", "icmpv6 2001:db8::1 -> 2001:db8::2" (ports only
    where the table keys them: tcp, udp)."""
    name = {v: k for k, v in PROTOS.items()}.get(proto, str(proto))
    if proto in (socket.IPPROTO_TCP, socket.IPPROTO_UDP):
        return f"{name} {host_port(src, sport)} -> {host_port(dst, dport)}"
    return f"{name} {src} -> {dst}"


def proto_number(p: int | str) -> int:
    if isinstance(p, str):
        if p.lower() in PROTOS:
            return PROTOS[p.lower()]
        if p.isdigit():
            p = int(p)
        else:
            raise ValueError(f"unknown protocol {p!r} (tcp, udp, icmp, icmpv6 or a number)")
    if not 0 <= p <= 255:
        raise ValueError(f"protocol {p} outside 0..255")
    return p


@dataclass(frozen=True)
class Flow:
    """A 5-tuple as the datapath keys it (ports only for TCP/UDP; 0 otherwise)."""
    src: str
    dst: str
    sport: int = 0
    dport: int = 0
    proto: int = socket.IPPROTO_UDP

    def key(self) -> bytes:
        return flow_key(self.src, self.dst, self.sport, self.dport, self.proto)

    @classmethod
    def from_key(cls, key: bytes | FtKey) -> "Flow":
        k = key if isinstance(key, FtKey) else FtKey.from_buffer_copy(bytes(key))
        if k.family == 4:
            src = str(ipaddress.IPv4Address(bytes(k.saddr)[:4]))
            dst = str(ipaddress.IPv4Address(bytes(k.daddr)[:4]))
        elif k.family == 6:
            src = str(ipaddress.IPv6Address(bytes(k.saddr)))
            dst = str(ipaddress.IPv6Address(bytes(k.daddr)))
        else:
            raise ValueError(f"key with family {k.family}")
        return cls(src, dst, k.sport, k.dport, k.proto)

    def __str__(self) -> str:
        return flow_text(self.proto, self.src, self.sport, self.dst, self.dport)


def flow_key(src: str, dst: str, sport: int = 0, dport: int = 0,
             proto: int | str = socket.IPPROTO_UDP) -> bytes:
    """The 40 key bytes of struct ft_key (what the datapath hashes)."""
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if s.version != d.version:
        raise ValueError(f"{src} and {dst} are of different IP versions")
    p = proto_number(proto)
    for name, port in (("sport", sport), ("dport", dport)):
        if not 0 <= port <= 65535:
            raise ValueError(f"{name} {port} outside 0..65535")
    if p not in (socket.IPPROTO_TCP, socket.IPPROTO_UDP) and (sport or dport):
        raise ValueError(f"ports given for protocol {p}: only TCP and UDP flows have ports")
    k = FtKey(sport=sport, dport=dport, proto=p, family=s.version)
    ctypes.memmove(ctypes.addressof(k), s.packed, len(s.packed))
    ctypes.memmove(ctypes.addressof(k) + 16, d.packed, len(d.packed))
    return bytes(k)


def hash_key(seed: int) -> tuple[int, ...]:
    """The table's secret multipliers for a 64-bit seed: CK_WORDS outputs of SplitMix64 started
    at the seed, made odd (so each word's product is a bijection of that word)."""
    if not 0 <= seed < 1 << 64:
        raise ValueError(f"seed {seed} outside 0..2^64-1")
    out, x = [], seed
    for _ in range(CK_WORDS):
        x = (x + 0x9E3779B97F4A7C15) & M64
        z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        out.append((z ^ (z >> 31)) | 1)
    return tuple(out)


def _words(key: bytes, k: tuple[int, ...]) -> list[int]:
    if len(key) % 8 or len(key) > 8 * CK_WORDS:
        raise ValueError(f"the keyed hash takes up to {8 * CK_WORDS} bytes in u64 words, "
                         f"got {len(key)}")
    return [int.from_bytes(key[8 * i:8 * i + 8], "little") * k[i] & M64
            for i in range(len(key) // 8)]


def mul64(key: bytes, k: tuple[int, ...]) -> int:
    """MUL64 keyed by ``k``: the sum of the key's little-endian u64 words times k[i]
    (mod 2^64), fold, multiply, fold; the low 32 bits."""
    a = sum(_words(key, k)) & M64
    a ^= a >> 32
    a = (a * MUL64_FIN) & M64
    a ^= a >> 32
    return a & M32


def crc32c_keyed(key: bytes, k: tuple[int, ...]) -> int:
    """CRC32C keyed by ``k``: CRC-32C (initial value 0) of the products word * k[i], each as
    8 little-endian bytes."""
    return crc32c(b"".join(w.to_bytes(8, "little") for w in _words(key, k)), 0)


def key_hash(key: bytes, k: tuple[int, ...], kind: Hash | int = Hash.MUL64) -> int:
    """The table's hash of a 40-byte flow key under multipliers ``k`` (hash_key(seed))."""
    if len(key) != FT_KEY_SIZE:
        raise ValueError(f"a flow key is {FT_KEY_SIZE} bytes, got {len(key)}")
    if kind == Hash.MUL64:
        return mul64(key, k)
    if kind != Hash.CRC32C:
        raise ValueError(f"unknown hash {kind}")
    return crc32c_keyed(key, k)


def sig_of(h: int) -> int:
    s = h >> 16
    return s or 1


def alt_bucket(bkt: int, sig: int, mask: int) -> int:
    x = (sig * FT_SIG_MIX) & M32
    x ^= x >> 16
    return (bkt ^ ((x & mask) | 1)) & mask


def placement(key: bytes, k: tuple[int, ...], mask: int, kind: Hash | int) -> tuple[int, int, int]:
    """(primary bucket, alternate bucket, signature) of a 40-byte key in a table of mask + 1
    buckets keyed by ``k``: the datapath's ft_place + ft_alt."""
    h = key_hash(key, k, kind)
    sig = sig_of(h)
    b1 = h & mask
    return b1, alt_bucket(b1, sig, mask), sig


def n_buckets_for(size: int) -> int:
    """Buckets for at least ``size`` flows: a power of two >= FT_MIN_BUCKETS."""
    if size < 1:
        raise ValueError(f"size {size} < 1")
    nb = FT_MIN_BUCKETS
    while nb * FT_SLOTS < size:
        nb *= 2
    if nb > FT_MAX_BUCKETS:
        raise ValueError(f"size {size} needs more than {FT_MAX_BUCKETS} buckets")
    return nb


@dataclass
class Where:
    bucket: int
    slot: int
    idx: int
    moves: int = 0


class CuckooModel:
    """The table as the datapath lays it out, mutated by the datapath's algorithm."""

    def __init__(self, n_buckets: int, seed: int = 0, max_search: int = 256,
                 capacity: int | None = None, hash: Hash | int = Hash.MUL64,
                 key: tuple[int, ...] | None = None):
        """``key``: the multipliers themselves (a deployed table's), instead of a seed's."""
        if n_buckets < FT_MIN_BUCKETS or n_buckets & (n_buckets - 1):
            raise ValueError(f"n_buckets {n_buckets}: a power of two >= {FT_MIN_BUCKETS}")
        if not 1 <= max_search <= FT_SEARCH_MAX:
            raise ValueError(f"max_search {max_search} outside 1..{FT_SEARCH_MAX}")
        self.nb, self.mask, self.max_search = n_buckets, n_buckets - 1, max_search
        self.hkey = tuple(key) if key is not None else hash_key(seed)
        self.hash = Hash(hash)
        self.capacity = capacity if capacity is not None else n_buckets * FT_SLOTS
        if self.capacity & (self.capacity - 1):     # the allocator's stride walks a power of two
            raise ValueError(f"capacity {self.capacity} is not a power of two")
        self.sig = [[0] * FT_SLOTS for _ in range(n_buckets)]
        self.idx = [[0] * FT_SLOTS for _ in range(n_buckets)]
        self.keys: dict[int, bytes] = {}     # key index -> key
        self.fresh = 0
        self.free: deque[int] = deque()
        self.entries = 0
        self.hist = [0] * FT_HIST_BINS
        self.fail_full = self.fail_index = self.fail_cached = self.search_steps = 0
        self.frees = 0                                  # deletes (ft_state.frees)
        self.refused: dict[int, tuple[int, int]] = {}   # one CPU's refusal cache (ft_bfs)

    # ---- placement ----
    def place(self, key: bytes) -> tuple[int, int, int]:
        return placement(key, self.hkey, self.mask, self.hash)

    def _empty(self, b: int) -> int:
        row = self.sig[b]
        for s in range(FT_SLOTS):
            if row[s] == 0:
                return s
        return -1

    def lookup(self, key: bytes) -> Where | None:
        b1, b2, sig = self.place(key)
        for b in (b1, b2):
            for s in range(FT_SLOTS):
                if self.sig[b][s] == sig and self.keys.get(self.idx[b][s]) == key:
                    return Where(b, s, self.idx[b][s])
        return None

    def __contains__(self, key: bytes) -> bool:
        return self.lookup(key) is not None

    def __len__(self) -> int:
        return self.entries

    @property
    def slots(self) -> int:
        return self.nb * FT_SLOTS

    @property
    def load_factor(self) -> float:
        return self.entries / self.slots

    def _alloc(self) -> int:
        if self.fresh < self.capacity:       # flow_table.h FT_ALLOC_STRIDE: why spread
            idx = (self.fresh * FT_ALLOC_STRIDE) % self.capacity + 1
            self.fresh += 1
            return idx
        if self.free:
            return self.free.popleft()
        return 0

    def _search(self, b1: int, b2: int):
        q = [(b1, 0, 0), (b2, 0, 0)]          # (bucket, parent node, slot in the parent)
        head = 0
        for _ in range(self.max_search):
            if head >= len(q):
                break
            bkt = q[head][0]
            self.search_steps += 1
            for s in range(FT_SLOTS):
                alt = alt_bucket(bkt, self.sig[bkt][s], self.mask)
                e = self._empty(alt)
                if e >= 0:
                    return q, head, s, alt, e
                if len(q) < FT_BFS_QUEUE:
                    q.append((alt, head, s))
            head += 1
        return None

    def _displace(self, q, node: int, slot: int, dst: int, dst_slot: int):
        path = [(q[node][0], slot)]            # (bucket, slot to vacate), leaf first
        n = node
        for _ in range(FT_PATH_MAX):
            if n < 2:
                break
            if len(path) > FT_PATH_MAX:
                return None
            _, parent, pslot = q[n]
            n = parent
            path.append((q[n][0], pslot))
        if n >= 2 or len(path) > FT_PATH_MAX:
            return None
        if len(set(path)) != len(path):
            return None
        b, s = path[0]
        self.sig[dst][dst_slot], self.idx[dst][dst_slot] = self.sig[b][s], self.idx[b][s]
        for k in range(1, len(path)):
            (db, ds), (fb, fs) = path[k - 1], path[k]
            self.sig[db][ds], self.idx[db][ds] = self.sig[fb][fs], self.idx[fb][fs]
        return path[-1], len(path)

    def insert(self, key: bytes) -> tuple[Rc, Where | None]:
        """Insert as the datapath does; EXISTS leaves the table alone."""
        w = self.lookup(key)
        if w:
            return Rc.EXISTS, w
        b1, b2, sig = self.place(key)
        moves = 0
        s = self._empty(b1)
        if s >= 0:
            bkt = b1
        else:
            s = self._empty(b2)
            bkt = b2
        if s < 0:
            found = self._search(b1, b2)
            if not found:
                self.fail_full += 1
                return Rc.FULL, None
            if self.fresh >= self.capacity and not self.free:
                self.fail_index += 1
                return Rc.NO_INDEX, None
            r = self._displace(*found)
            if r is None:
                self.fail_full += 1
                return Rc.FULL, None
            (bkt, s), moves = r
        idx = self._alloc()
        if not idx:
            self.fail_index += 1
            return Rc.NO_INDEX, None
        self.keys[idx] = key
        self.sig[bkt][s], self.idx[bkt][s] = sig, idx
        self.entries += 1
        self.hist[min(moves, FT_HIST_BINS - 1)] += 1
        return Rc.OK, Where(bkt, s, idx, moves)

    def learn(self, key: bytes) -> tuple[Rc, Where | None]:
        """A datapath insert (ft_learn) on one CPU whose search budget never runs out: a full
        key store is NO_INDEX at once; a key whose two buckets are full and whose bucket pair
        failed a full search since the last delete is DEFERRED without a search; else
        insert(), a FULL result remembered for the pair."""
        w = self.lookup(key)
        if w:
            return Rc.EXISTS, w
        if self.entries >= self.capacity:
            self.fail_index += 1
            return Rc.NO_INDEX, None
        b1, b2, sig = self.place(key)
        c, pair = sig & (FT_REFUSED - 1), b1 << 32 | sig
        if self._empty(b1) < 0 and self._empty(b2) < 0 and self.refused.get(c) == (pair, self.frees):
            self.fail_cached += 1
            return Rc.DEFERRED, None
        rc, w = self.insert(key)
        if rc == Rc.FULL:
            self.refused[c] = (pair, self.frees)
        return rc, w

    def delete(self, key: bytes) -> Rc:
        w = self.lookup(key)
        if not w:
            return Rc.NOT_FOUND
        self.sig[w.bucket][w.slot] = 0
        self.idx[w.bucket][w.slot] = 0
        del self.keys[w.idx]
        self.free.append(w.idx)
        self.entries -= 1
        self.frees += 1
        return Rc.OK

    def items(self) -> dict[bytes, Where]:
        out = {}
        for b in range(self.nb):
            for s in range(FT_SLOTS):
                if self.sig[b][s]:
                    out[self.keys[self.idx[b][s]]] = Where(b, s, self.idx[b][s])
        return out

    def bucket_rows(self) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """(sigs, indices) per bucket: compare with the datapath's ft_buckets."""
        return [(tuple(self.sig[b]), tuple(self.idx[b])) for b in range(self.nb)]
