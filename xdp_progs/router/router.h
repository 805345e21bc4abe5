/* SPDX-License-Identifier: GPL-2.0 */
/* LPM router: data-only header shared by router.bpf.c and nf/nfs/router.py (ctypes mirrors
 * there, checked against the object's BTF by tests/nf/bpf/test_layout.py).
 *
 * IPv4 DIR-24-8 entry encoding (u32):
 *   0                      no route
 *   RT_ENTRY_CHUNK | c     descend into chunk c (256 entries, indexed by the next address byte)
 *   g (1..RT_GROUPS-1)     route group g (next hop(s), kind, class) in rt_groups
 * IPv6 (u32 words of the flat rt_v6 array, two banks; offsets are word offsets into it): a bank
 * is a struct rt_v6_bank, a root of 2^RT_V6_ROOT_BITS entries (the trie of routes shorter than
 * /32), per pivot p (/32, /48) a 2-choice cuckoo hash of struct rt_v6_slot (the p-bit blocks
 * that hold routes of p bits up to the next pivot, each with its own trie; routes of /30-/31
 * and /44-/47 are expanded into /32 and /48 blocks at build time), and the nodes and records.
 * Entries:
 *   g                      route group g (0 = no route)
 *   RT_V6_NODE | off       a node at `off`: 2^stride entries indexed by the next address bits
 *   RT_V6_SKIP | off       a struct rt_v6_skip at `off`: the subtree holds this one route
 * Every table exists twice (bank 0 and bank 1); rt_bank[0] names the bank traffic uses. A bulk
 * replace fills the idle bank and flips rt_bank with one 4-byte store. */
#ifndef XDP_NF_ROUTER_H
#define XDP_NF_ROUTER_H

#include <linux/types.h>

#define RT_ENTRY_CHUNK 0x80000000u
#define RT_CHUNK_BITS 8
#define RT_CHUNK_SIZE 256

#define RT_V4_TBL24_BITS 24
#define RT_V4_TBL24_SIZE (1u << 24)   /* entries per bank */
/* IPv6 shape: a root of 2^16 entries indexes address bits 0..15, then 8-bit steps (nodes of
 * 256 entries), one per X(from, to). The /32 and /48 blocks that hold routes are found by
 * hashing (rt_v6_bank.hash[0] and [1]), so a lookup starts at bit 48, 32 or 16 and steps from
 * there. Mirrored by nf.routes.V6_LEVELS / V6_PIVOTS; xdp_progs/router/NOTES.md says why. */
#define RT_V6_ROOT_BITS 16
#define RT_V6_NPIVOTS 2       /* /32, /48 */
#define RT_V6_STEPS(X) X(16, 24) X(24, 32) X(32, 40) X(40, 48) X(48, 56) X(56, 64) X(64, 72) \
	X(72, 80) X(80, 88) X(88, 96) X(96, 104) X(104, 112) X(112, 120) X(120, 128)
#define RT_V6_NODE 0x80000000u
#define RT_V6_SKIP 0x40000000u
#define RT_V6_OFF 0x3fffffffu

/* A pivot's hash table: block b (the address's first p bits) sits in slot ((b * c1) >> 32) * n
 * >> 32 or the same with c2 (multiply-shift hashes, odd multipliers chosen at build time,
 * mapped onto n slots by a multiply: a table of any size, not a power of two). */
struct rt_v6_hash {
	__u64 c1;
	__u64 c2;
	__u32 n;        /* slots */
	__u32 slots;    /* word offset of slot 0 */
};

/* The head of an IPv6 bank (its word 0). */
struct rt_v6_bank {
	struct rt_v6_hash hash[RT_V6_NPIVOTS];
	__u32 pad[16 - 6 * RT_V6_NPIVOTS - 1];
	__u32 root;     /* word offset of the root */
};

struct rt_v6_slot {
	__u64 key;      /* the block: the address's first p bits, the rest zero (host order) */
	__u32 entry;    /* 0 = empty; else its trie's entry (the block's default included) */
	__u32 pad;
};

/* A subtree of the IPv6 table that holds a single route (at any depth): one compare instead of
 * a chain of nodes. An address is in the route when ((hi ^ key_hi) >> sh_hi) and
 * ((lo ^ key_lo) >> sh_lo1 >> sh_lo2) are both 0 (two shifts: 64 is not a valid shift). */
struct rt_v6_skip {
	__u64 key_hi;   /* the route's prefix, address bits 0..63 (host order) */
	__u64 key_lo;   /* bits 64..127 */
	__u8 sh_hi;     /* 64 - min(len, 64) */
	__u8 sh_lo1;    /* min(128 - max(len, 64), 63) */
	__u8 sh_lo2;    /* 128 - max(len, 64) - sh_lo1 */
	__u8 len;       /* prefix length */
	__u32 gid;      /* its group */
	__u32 gid_else; /* the group of addresses outside it (the covering route's) */
	__u32 pad;
};

#define RT_GROUPS 4096                /* route groups per bank (group 0 = no route) */
#define RT_ECMP_MAX 8                 /* next hops per group */
#define RT_PORTS 64                   /* router ports (index into rt_ports / rt_tx) */
#define RT_CLASSES 8
#define RT_IFINDEX_MAX 65536          /* ports need ifindex < this (rt_ifindex is an array) */

/* Load-time mode (rodata). */
enum rt_mode {
	RT_MODE_DIR = 0,   /* our tables: DIR-24-8 (v4) + multibit trie (v6) */
	RT_MODE_TRIE = 1,  /* BPF_MAP_TYPE_LPM_TRIE baseline */
	RT_MODE_FIB = 2,   /* bpf_fib_lookup: the kernel's FIB and neighbour table */
};

/* What a route group does with a matching packet. */
enum rt_kind {
	RT_KIND_NONE = 0,
	RT_KIND_FORWARD = 1,    /* via gateway(s): neighbour key = hop gateway */
	RT_KIND_CONNECTED = 2,  /* on-link: neighbour key = packet destination */
	RT_KIND_BLACKHOLE = 3,  /* drop silently */
	RT_KIND_LOCAL = 4,      /* one of the router's addresses: echo answered, rest XDP_PASS */
	RT_KIND_UNREACHABLE = 5,/* reject: ICMP unreachable as Linux's unreachable routes (v4 3/1,
				 * v6 1/0), or admin prohibited (3/13, 1/1) with RT_F_UNREACH_ADMIN */
	RT_KIND_KERNEL = 6,     /* delivered by the kernel as it is (XDP_PASS): the directed
				 * broadcasts and subnet-router anycast addresses of connected
				 * subnets, which Linux delivers locally, never forwards nor errors */
};

/* Route classes for rt_class_stats. */
enum rt_class {
	RT_CLASS_NOROUTE = 0,
	RT_CLASS_CONNECTED = 1,
	RT_CLASS_STATIC = 2,
	RT_CLASS_ECMP = 3,
	RT_CLASS_BLACKHOLE = 4,
	RT_CLASS_LOCAL = 5,
	RT_CLASS_DEFAULT = 6,
	RT_CLASS_KERNEL = 7,    /* kernel-FIB mode */
};

/* NF-specific reasons (slots NF_REASON_NF(n) of struct nf_stats, stats.h). */
enum rt_reason {
	RT_REASON_NO_ROUTE = 0,   /* also: destination unreachable sent (admin, frag needed) */
	RT_REASON_TTL = 1,
	RT_REASON_NEIGH_MISS = 2,
	RT_REASON_BLACKHOLE = 3,
	RT_REASON_LOCAL = 4,
	RT_REASON_ICMP_LIMITED = 5,
	RT_REASON_ECHO = 6,
	RT_REASON_NOT_FOR_US = 7, /* not IP, other MAC, multicast/broadcast, options: kernel's job */
};

struct rt_hop {
	__u32 port;     /* egress port index */
	__u8 gw[16];    /* gateway (v4 in gw[0..3]); unused for CONNECTED */
};

struct rt_group {
	__u8 kind;      /* enum rt_kind */
	__u8 count;     /* hops used (1..RT_ECMP_MAX) */
	__u8 cls;       /* enum rt_class */
	__u8 family;    /* 4 or 6 */
	struct rt_hop hops[RT_ECMP_MAX];
};

struct rt_port {
	__u32 ifindex;
	__u8 mac[6];
	__u8 up;
	__u8 pad;
	__u8 ip4[4];    /* source of ICMP errors sent from this port (0 = none: no ICMP) */
	__u8 ip6[16];
	__u16 mtu;      /* largest IP packet (L3 bytes) this port sends; 0 = not checked */
	__u16 pad2;
};

/* The router's own IPv4 addresses (rt_local4, 4-way buckets indexed by local4_bucket()): a
 * packet from one of them is a martian (Linux drops it, as a source must not be local). A source
 * whose bucket's bit in cfg.local4_filter is clear is none of them: no table read. */
#define RT_LOCAL4_BUCKETS 256
struct rt_local4 {
	__be32 addr[4];      /* 0 = empty */
};

struct rt_neigh_key {
	__u32 port;
	__u8 family;
	__u8 pad[3];
	__u8 addr[16];
};

struct rt_neigh {
	__u8 mac[6];
	__u16 flags;    /* RT_NEIGH_* */
};

#define RT_NEIGH_STATIC 1
#define RT_NEIGH_LEARNED 2

struct rt_trie4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct rt_trie6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Per-port counters (PERCPU_ARRAY indexed by port). */
struct rt_port_stats {
	__u64 rx_packets;
	__u64 rx_bytes;
	__u64 tx_packets;   /* forwarded out of this port */
	__u64 tx_bytes;
	__u64 icmp_out;     /* ICMP errors and echo replies sent back out this port */
	__u64 drops;
};

/* Per-route-class counters (PERCPU_ARRAY indexed by enum rt_class). */
struct rt_class_stats {
	__u64 packets;
	__u64 bytes;
};

/* Per-CPU token bucket for ICMP errors. */
struct rt_icmp_bucket {
	__u64 last_ns;
	__u64 tokens_milli;  /* tokens * 1000 */
};

#define RT_F_ICMP_ERRORS 1   /* build Time Exceeded / Unreachable in XDP */
#define RT_F_ECHO 2          /* answer echo requests to the router's addresses */
#define RT_F_LEARN 4         /* learn neighbours from ARP replies / neighbour advertisements */
#define RT_F_PURE 8          /* never call module kfuncs, even when the module is loaded */
#define RT_F_UNREACH_ADMIN 16 /* unreachable routes answer administratively prohibited */

struct rt_cfg {
	__u32 mode;          /* enum rt_mode */
	__u32 flags;         /* RT_F_* */
	__u32 icmp_rate;     /* ICMP errors per second per CPU */
	__u32 icmp_burst;    /* bucket depth */
	__u32 ecmp_seed;
	__u32 v6_bank_words; /* words of rt_v6 per bank (the map holds two banks) */
	__u64 local4_filter; /* bit (bucket >> 2) set for every rt_local4 bucket in use */
};

/* Batch lookup probes (xdp_lookup_batch): user space writes addresses into rt_probes (mmapable),
 * runs the program once with a frame whose first 4 bytes are the count, reads the group ids. Used
 * by the differential tests and the lookup benchmark: it measures the lookup alone. */
#define RT_PROBES 65536
struct rt_probe {
	__u8 addr[16];   /* v4 in addr[0..3], network order */
	__u32 family;    /* 4 or 6 */
	__u32 result;    /* group id, 0 = no route */
};

#endif /* XDP_NF_ROUTER_H */
