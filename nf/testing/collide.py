"""Flows aimed at one bucket pair of a flow table: what someone who knows the table's hash key
can build (tests of the keyed bucket choice, xdp_progs/flow_table/NOTES.md).

    flows = colliding_flows(hash_key(seed), Hash.MUL64, 40)   # IPv6, one /64, one hash value

The flows come from one /64 and differ only in the interface ID and the source port (the issue's
example): key word 1 (saddr bytes 8..15) and word 4 (the ports, protocol and family). Both
hashes are attacked exactly, so every flow has the same 32-bit hash under ``k`` (same primary
bucket and signature at every table size):
- MUL64 sums the keyed words: a source port step d moves word 4 by d, so word 1 moves by
  -d * k[4] / k[1] (mod 2^64; k[1] is odd, so invertible);
- CRC32C is linear over GF(2) in the keyed words p[i] = w[i] * k[i]: the change of p[4] is
  cancelled by a change of p[1] found by Gaussian elimination, then w[1] = p[1] / k[1].
Under another key the same flows spread like any others.
"""
from __future__ import annotations

import ipaddress

from nf.algo import crc32c
from nf.models.flow_table import M64, Flow, Hash

PREFIX = bytes.fromhex("20010db8000000a1")      # the /64
DST, DPORT, PROTO = "2001:db8::53", 443, 6


def _word4(sport: int) -> int:
    """Key word 4: sport, dport (host order, little-endian), proto, family 6, pad."""
    return sport | DPORT << 16 | PROTO << 32 | 6 << 40


def _crc_solver():
    """x -> L(x) for a change x of keyed word 1, and a solver of L(x) = t (L: the linear part
    of CRC-32C over the five keyed words, restricted to word 1)."""
    zero = crc32c(bytes(40), 0)

    def lin(word: int, x: int) -> int:
        buf = bytearray(40)
        buf[8 * word:8 * word + 8] = x.to_bytes(8, "little")
        return crc32c(bytes(buf), 0) ^ zero

    basis: dict[int, tuple[int, int]] = {}   # pivot bit -> (image, preimage)
    for b in range(64):
        img, pre = lin(1, 1 << b), 1 << b
        while img:
            top = img.bit_length() - 1
            if top not in basis:
                basis[top] = (img, pre)
                break
            img, pre = img ^ basis[top][0], pre ^ basis[top][1]

    def solve(t: int) -> int:
        pre = 0
        while t:
            top = t.bit_length() - 1
            if top not in basis:
                raise ValueError("CRC change out of reach of word 1")
            t, pre = t ^ basis[top][0], pre ^ basis[top][1]
        return pre

    return lin, solve


def colliding_flows(k: tuple[int, ...], kind: Hash | int, n: int, iid: int = 0x1111222233334444,
                    sport: int = 1000) -> list[Flow]:
    """``n`` distinct TCP/IPv6 flows from one /64 with the same hash under key ``k``."""
    k1_inv = pow(k[1], -1, 1 << 64)
    lin = solve = None
    if Hash(kind) == Hash.CRC32C:
        lin, solve = _crc_solver()
    out = []
    for j in range(n):
        d4 = (_word4(sport + j) - _word4(sport)) & M64
        if Hash(kind) == Hash.MUL64:
            w1 = (iid - d4 * k[4] * k1_inv) & M64
        else:
            p4 = _word4(sport) * k[4] & M64 ^ _word4(sport + j) * k[4] & M64
            p1 = (iid * k[1] & M64) ^ solve(lin(4, p4))
            w1 = p1 * k1_inv & M64
        src = ipaddress.IPv6Address(PREFIX + w1.to_bytes(8, "little"))
        out.append(Flow(str(src), DST, sport + j, DPORT, PROTO))
    return out
