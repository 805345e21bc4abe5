// SPDX-License-Identifier: GPL-2.0
/* LPM router in XDP: IPv4/IPv6 longest-prefix match, neighbours, TTL/hop limit with an
 * incremental IPv4 checksum (RFC 1624), MAC rewrite, devmap redirect, ECMP by 5-tuple hash,
 * ICMP Time Exceeded / Destination Unreachable / Fragmentation Needed / Packet Too Big and echo
 * replies built here (egress MTU per port, rt_port.mtu), per-CPU
 * rate-limited ICMP errors, per-port and per-route-class counters.
 *
 * Three lookup modes chosen at load time (rodata cfg.mode; the verifier drops the others):
 *   RT_MODE_DIR   IPv4 DIR-24-8 (a 2^24 array of u32 + 256-entry chunks for /25../32) and an
 *                 IPv6 multibit trie (2^16 root + 8-bit strides, leaf-pushed, subtrees of one
 *                 route as one compare) in one flat array read by direct offsets. No hashing.
 *                 See NOTES.md for numbers.
 *   RT_MODE_TRIE  BPF_MAP_TYPE_LPM_TRIE (the baseline).
 *   RT_MODE_FIB   bpf_fib_lookup (the kernel's routes and neighbours).
 * DIR and TRIE tables exist in two banks; rt_bank[0] selects one per packet (read once), so a
 * bulk replace filled into the idle bank becomes visible in one 4-byte store.
 *
 * Every frame leaves through one exit point (xdp_exit_why, stats.h). Anything this program does
 * not fully understand goes to the kernel (XDP_PASS) or is dropped when malformed; it is never
 * forwarded. */
#include "common.h"
#include "stats.h"
#include "router.h"
#include "enetstl.h"
#include "algo/crc32c.h"


#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/icmpv6.h>

/* linux/icmp.h and linux/if_arp.h drag in libc's socket headers: the few names used here. */
struct icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 rest;
};
#define ARPOP_REQUEST 1
#define ARPOP_REPLY 2
#define ARPHRD_ETHER 1
#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_SOURCE_QUENCH 4
#define ICMP_REDIRECT 5
#define ICMP_ECHO 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
#define ICMP_NET_UNREACH 0
#define ICMP_HOST_UNREACH 1
#define ICMP_FRAG_NEEDED 4
#define ICMP_PKT_FILTERED 13
#define ICMP_EXC_TTL 0

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

const volatile struct rt_cfg cfg = {
	.mode = RT_MODE_DIR,
	.flags = RT_F_ICMP_ERRORS | RT_F_ECHO | RT_F_LEARN,
	.icmp_rate = 1000,
	.icmp_burst = 100,
	.ecmp_seed = 0x5eed,
};

/* ---- lookup tables (two banks each) ---------------------------------------------------------- */
/* A table of u32 entries stored as u64 pairs (see tbl_get()), `n` entries for both banks;
 * the controller sizes it at load. */
#define TBL_MAP(name, n)                                 \
	struct {                                         \
		__uint(type, BPF_MAP_TYPE_ARRAY);        \
		__uint(map_flags, BPF_F_MMAPABLE);       \
		__uint(max_entries, (n) / 2);            \
		__type(key, __u32);                      \
		__type(value, __u64);                    \
	} name SEC(".maps")

TBL_MAP(rt_v4_tbl24, 2 * RT_V4_TBL24_SIZE);
/* Chunks of 256 entries; bank b owns chunk numbers [b*N, (b+1)*N) (N = max_entries / 256). */
TBL_MAP(rt_v4_tbl8, 2 * 1024 * RT_CHUNK_SIZE);

/* The IPv6 table: one element whose value is the whole array of u32 words (both banks), so a
 * read is a bounds check and a load at an offset from one pointer (an array lookup per read,
 * key through the stack, measured 2-4x slower per level). Sized at load (value_size =
 * 8 * cfg.v6_bank_words); no BTF value type, as the size is not the compiled one. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 8);
} rt_v6 SEC(".maps");

/* Never read: puts the IPv6 table's layouts into the object's BTF for the layout test (types
 * used only inside functions get none); rodata exists anyway, a map for it would not. */
const volatile struct {
	struct rt_v6_bank bank;
	struct rt_v6_slot slot;
	struct rt_v6_skip skip;
} rt_v6_layouts = {};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 2 * RT_GROUPS);
	__type(key, __u32);
	__type(value, struct rt_group);
} rt_groups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} rt_bank SEC(".maps");

#define TRIE_MAP(name, keytype)                          \
	struct {                                         \
		__uint(type, BPF_MAP_TYPE_LPM_TRIE);     \
		__uint(map_flags, BPF_F_NO_PREALLOC);    \
		__uint(max_entries, 1024);               \
		__type(key, keytype);                    \
		__type(value, __u32);                    \
	} name SEC(".maps")

TRIE_MAP(rt_trie4_0, struct rt_trie4_key);
TRIE_MAP(rt_trie4_1, struct rt_trie4_key);
TRIE_MAP(rt_trie6_0, struct rt_trie6_key);
TRIE_MAP(rt_trie6_1, struct rt_trie6_key);

/* ---- ports, neighbours ------------------------------------------------------------------------ */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RT_PORTS);
	__type(key, __u32);
	__type(value, struct rt_port);
} rt_ports SEC(".maps");

/* ifindex -> port + 1 (0: not a router port). An array, not a hash: this lookup happens for
 * every frame, and an inlined array read is ~2 ns where a hash lookup is ~20-50 ns. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RT_IFINDEX_MAX);
	__type(key, __u32);   /* ifindex */
	__type(value, __u32); /* port + 1 */
} rt_ifindex SEC(".maps");

static __always_inline int port_of_ifindex(__u32 ifindex, __u32 *port)
{
	__u32 *v = bpf_map_lookup_elem(&rt_ifindex, &ifindex);

	if (!v || *v == 0)
		return -1;
	*port = *v - 1;
	return 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, RT_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} rt_tx SEC(".maps");

/* The router's IPv4 addresses, checked against every source (a martian when it is one of them,
 * as Linux's fib_validate_source finds). Not the route tables: a source's table entry is a cache
 * miss of its own, this 4 KiB array stays hot. The controller fills it and refuses a 5th address
 * in a bucket (nf/nfs/router.py, local4_bucket()). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RT_LOCAL4_BUCKETS);
	__type(key, __u32);
	__type(value, struct rt_local4);
} rt_local4 SEC(".maps");

static __always_inline int is_local4(__be32 a)
{
	__u32 i = (bpf_ntohl(a) * 0x9e3779b1u) >> 24;   /* local4_bucket() in the controller */
	struct rt_local4 *b;

	if (!((cfg.local4_filter >> (i >> 2)) & 1))
		return 0;
	b = bpf_map_lookup_elem(&rt_local4, &i);
	return b && (b->addr[0] == a || b->addr[1] == a || b->addr[2] == a || b->addr[3] == a);
}

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct rt_neigh_key);
	__type(value, struct rt_neigh);
} rt_neigh SEC(".maps");

/* Neighbour misses for the controller: it asks the kernel to resolve them and mirrors the result
 * into rt_neigh (the missed packet itself goes to the kernel). LRU: a flood of misses cannot grow
 * it. Value: ktime of the last miss. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct rt_neigh_key);
	__type(value, __u64);
} rt_neigh_miss SEC(".maps");

/* Per-CPU direct-mapped cache in front of rt_neigh: a hash-map lookup of the 24-byte key costs
 * ~12-19 ns of a ~38 ns forward path (measured, NOTES.md); a cache hit is two inlined array reads
 * and a compare. rt_neigh_gen[0] changes on every rt_neigh write (learn() here, set_neighbour()
 * in the controller, which writes the entry first and then bumps): an entry filled under another
 * generation is a miss, so a changed neighbour is seen by the next packet. A fill stores the
 * generation read *before* its rt_neigh lookup, so a write racing with it invalidates it. */
#define RT_NCACHE_BITS 10
struct rt_ncache {
	__u64 gen;
	__u32 port;
	__u32 family;
	__u8 addr[16];
	__u8 mac[6];
	__u8 valid;
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1 << RT_NCACHE_BITS);
	__type(key, __u32);
	__type(value, struct rt_ncache);
} rt_ncache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} rt_neigh_gen SEC(".maps");

static __always_inline __u64 neigh_gen(void)
{
	__u32 k = 0;
	__u64 *g = bpf_map_lookup_elem(&rt_neigh_gen, &k);

	return g ? *g : 0;
}

static __always_inline void neigh_gen_bump(void)
{
	__u32 k = 0;
	__u64 *g = bpf_map_lookup_elem(&rt_neigh_gen, &k);

	if (g)
		__sync_fetch_and_add(g, 1);
}

/* ---- counters --------------------------------------------------------------------------------- */
NF_STATS_MAP(rt_stats);

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RT_PORTS);
	__type(key, __u32);
	__type(value, struct rt_port_stats);
} rt_port_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RT_CLASSES);
	__type(key, __u32);
	__type(value, struct rt_class_stats);
} rt_class_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rt_icmp_bucket);
} rt_icmp_rl SEC(".maps");

/* A handler's result: XDP action in the low byte, nf_reason above it. */
#define OUT(act, why) ((__u32)(act) | ((__u32)(why) << 8))
#define WHY(n) NF_REASON_NF(n)

/* ---- word copies ------------------------------------------------------------------------------ */
/* MACs and addresses moved and compared as 4- and 2-byte words. clang turns __builtin_memcpy /
 * __builtin_memcmp of byte arrays it cannot prove aligned into single-byte loads and stores (BPF
 * has no unaligned access): 16 loads, shifts and stores for an IPv6 address, 12 instructions per
 * MAC. Unaligned packet and map-value words are fine here (x86; the verifier only enforces
 * alignment on the stack, where the buffers these touch are word-aligned). */
static __always_inline void mac_copy(void *d, const void *s)
{
	*(__u32 *)d = *(const __u32 *)s;
	*(__u16 *)(d + 4) = *(const __u16 *)(s + 4);
}

static __always_inline int mac_eq(const void *a, const void *b)
{
	return *(const __u32 *)a == *(const __u32 *)b &&
	       *(const __u16 *)(a + 4) == *(const __u16 *)(b + 4);
}

/* 4 (family 4) or 16 bytes */
static __always_inline void addr_copy(void *d, const void *s, __u8 family)
{
	__u32 *dw = d;
	const __u32 *sw = s;

	dw[0] = sw[0];
	if (family != 4) {
		dw[1] = sw[1];
		dw[2] = sw[2];
		dw[3] = sw[3];
	}
}

static __always_inline int addr16_eq(const void *a, const void *b)
{
	const __u32 *x = a, *y = b;

	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3])) == 0;
}

/* ---- checksums -------------------------------------------------------------------------------- */
static __always_inline __u16 csum_fold(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), on raw 16-bit words as they sit in the packet. */
static __always_inline __u16 csum_replace16(__u16 hc, __u16 old, __u16 new)
{
	__u32 s = (__u16)~hc + (__u16)~old + (__u32)new;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/* Summed as five 32-bit words: the ones'-complement sum folds from any word width (RFC 1071). */
static __always_inline __u16 ip4_hdr_csum(struct iphdr *ip)
{
	const __u32 *w = (const __u32 *)ip;

	return csum_fold((__u64)w[0] + w[1] + w[2] + w[3] + w[4]);
}
/* Ones'-complement sums of packet bytes (raw words, an odd tail zero-padded), copied out in
 * 64-byte blocks with bpf_xdp_load_bytes: a per-word loop over packet pointers is too many
 * verifier states at ICMPv6's 1,240 bytes. */
#define SUM_BLOCK 64
#define SUM_MAX_BLOCKS 20 /* 1,280 bytes */

/* Add `n` (1..64) bytes from `off` to *s; -1 when they are not in the packet. */
static __always_inline int sum_block(struct xdp_md *ctx, __u32 off, __u32 n, __u64 *s)
{
	__u16 buf[SUM_BLOCK / 2] = {};

	/* same value for n in 1..64, but a range the verifier can see is never 0 */
	asm volatile("" : "+r"(n)); /* keep clang from folding the mask away */
	n = ((n - 1) & (SUM_BLOCK - 1)) + 1;
	if (bpf_xdp_load_bytes(ctx, off, buf, n))
		return -1;
#pragma unroll
	for (int i = 0; i < SUM_BLOCK / 2; i++)
		*s += buf[i];
	return 0;
}

/* Sum of `len` (up to 1,280) packet bytes from `off`. */
static __always_inline __u64 sum_pkt(struct xdp_md *ctx, __u32 off, __u32 len)
{
	__u64 s = 0;

	for (int b = 0; b < SUM_MAX_BLOCKS; b++) {
		__u32 n, done = b * SUM_BLOCK;

		if (done >= len)
			break;
		n = len - done;
		if (n > SUM_BLOCK)
			n = SUM_BLOCK;
		if (sum_block(ctx, off + done, n, &s))
			break;
	}
	return s;
}

/* Header checksum check of an IPv4 header with options (hlen 24..60): 0 when it is right. */
static __always_inline __u16 ip4_opt_csum(struct xdp_md *ctx, __u32 hlen)
{
	__u64 s = 0;

	if (sum_block(ctx, sizeof(struct ethhdr), hlen, &s))
		return 1;
	return csum_fold(s);
}

/* ---- ECMP flow hash (mirrored by nf/models/router.py: flow_hash) ------------------------------
 * CRC-32C of the 16-byte flow key, then a murmur3 finaliser so the high bits (which pick the hop:
 * idx = h * count >> 32) are well mixed. With the eNetSTL module loaded the CRC is its
 * enetstl_crc32c kfunc (the SSE4.2 crc32 instruction, no FPU bracket); without it, the pure-eBPF
 * slice-by-4 algo_crc32c. Both compute the same function, so a flow keeps its path whether or not
 * the module is there (tests/xdp_progs/router/test_vm.py compares them in the guest). */
struct rt_flow {
	__u32 src, dst, ports, proto; /* host-order numbers, as the model packs them ("<4I") */
};

static __always_inline __u32 fmix32(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

static __always_inline __u32 flow_hash(__u32 src, __u32 dst, __u32 ports, __u32 proto)
{
	struct rt_flow k = { .src = src, .dst = dst, .ports = ports, .proto = proto };
	__u32 c;

	if (!(cfg.flags & RT_F_PURE) && bpf_ksym_exists(enetstl_crc32c))
		c = enetstl_crc32c(&k, sizeof(k), cfg.ecmp_seed);
	else
		c = algo_crc32c(&k, sizeof(k), cfg.ecmp_seed);
	return fmix32(c);
}

static __always_inline __u32 fold6(const __u8 *a)
{
	const __u32 *w = (const __u32 *)a;

	return bpf_ntohl(w[0]) ^ bpf_ntohl(w[1]) ^ bpf_ntohl(w[2]) ^ bpf_ntohl(w[3]);
}

/* ---- lookups ---------------------------------------------------------------------------------- */
static __always_inline __u32 bank_now(void)
{
	__u32 k = 0, *b = bpf_map_lookup_elem(&rt_bank, &k);

	return b ? (*b & 1) : 0;
}

/* Entry `idx` of a u32 table stored as u64 pairs. An ARRAY map rounds values up to 8 bytes, so
 * u32 values would double the memory (and break the flat mmap view); u64 pairs keep the mmapped
 * memory a dense little-endian u32 array, as user space builds it. */
static __always_inline int tbl_get(void *map, __u32 idx, __u32 *out)
{
	__u32 k = idx >> 1;
	__u64 *e = bpf_map_lookup_elem(map, &k);

	if (!e)
		return -1;
	*out = (__u32)(*e >> ((idx & 1) << 5));
	return 0;
}

static __always_inline __u32 lookup4(__u32 bank, __u32 dst /* host order */)
{
	if (cfg.mode == RT_MODE_DIR) {
		__u32 idx = (bank << RT_V4_TBL24_BITS) | (dst >> 8);
		__u32 v;

		if (tbl_get(&rt_v4_tbl24, idx, &v))
			return 0;
		if (v & RT_ENTRY_CHUNK) {
			idx = ((v & ~RT_ENTRY_CHUNK) << RT_CHUNK_BITS) | (dst & 0xff);
			if (tbl_get(&rt_v4_tbl8, idx, &v))
				return 0;
		}
		return (v & RT_ENTRY_CHUNK) ? 0 : v;
	} else {
		struct rt_trie4_key k = { .prefixlen = 32 };
		__u32 *v;

		*(__u32 *)k.addr = bpf_htonl(dst);
		v = bank ? bpf_map_lookup_elem(&rt_trie4_1, &k) : bpf_map_lookup_elem(&rt_trie4_0, &k);
		return v ? *v : 0;
	}
}

/* Bits [b, e) of the address halves (compile-time b, e; a range never straddles bit 64). */
static __always_inline __u32 v6_bits(__u64 hi, __u64 lo, const int b, const int e)
{
	__u64 mask = (1ULL << (e - b)) - 1;

	return e <= 64 ? (hi >> ((64 - e) & 63)) & mask : (lo >> ((128 - e) & 63)) & mask;
}

/* A pivot's table: the entry of the slot holding the address's first p bits, else 0. The block
 * (those bits, right-aligned) sits in one of its two slots; both are read, their addresses known
 * from the address alone. */
static __always_inline __u32 v6_probe(const __u32 *t, __u32 words, const struct rt_v6_hash *h,
				      __u64 hi, const int p)
{
	__u64 blk = hi >> (64 - p), key = blk << (64 - p);
	__u32 i1 = h->slots + (__u32)((((blk * h->c1) >> 32) * h->n) >> 32) * (sizeof(struct rt_v6_slot) / 4);
	__u32 i2 = h->slots + (__u32)((((blk * h->c2) >> 32) * h->n) >> 32) * (sizeof(struct rt_v6_slot) / 4);
	const struct rt_v6_slot *s1, *s2;

	if (i1 > words - sizeof(*s1) / 4 || i2 > words - sizeof(*s2) / 4)
		return 0;
	s1 = (const void *)(t + i1);
	s2 = (const void *)(t + i2);
	return (s1->key == key ? s1->entry : 0) | (s2->key == key ? s2->entry : 0);
}

/* IPv6 lookup in mode dir (router.h: the bank's layout). Tried and measured slower here
 * (xdp_progs/router/NOTES.md): the three start reads issued before any branch, the start and the
 * first two steps branch-free (masks), one-slot probes. */
static __always_inline __u32 lookup6(__u32 bank, const __u8 *a)
{
	if (cfg.mode == RT_MODE_DIR) {
		const __u32 words = 2 * cfg.v6_bank_words;
		const __u32 *w = (const __u32 *)a;
		__u64 hi = ((__u64)bpf_ntohl(w[0]) << 32) | bpf_ntohl(w[1]);
		__u64 lo = ((__u64)bpf_ntohl(w[2]) << 32) | bpf_ntohl(w[3]);
		__u32 k = 0, idx, e;
		__u32 *t = bpf_map_lookup_elem(&rt_v6, &k);
		const struct rt_v6_bank *h;
		const struct rt_v6_skip *r;

		if (!t)
			return 0;
		idx = bank ? cfg.v6_bank_words : 0;
		if (idx > words - sizeof(*h) / 4)
			return 0;
		h = (const void *)(t + idx);
		/* the start: the /48 block's slot, else the /32 block's, else the root; a slot's
		 * entry carries the routes shorter than its block */
		e = v6_probe(t, words, &h->hash[1], hi, 48);
		if (e)
			goto step_48;
		e = v6_probe(t, words, &h->hash[0], hi, 32);
		if (e)
			goto step_32;
		idx = h->root + (__u32)(hi >> (64 - RT_V6_ROOT_BITS));
		if (idx >= words)
			return 0;
		e = t[idx];
#define V6_STEP(b, to)                                                          \
step_##b: __attribute__((unused));                                             \
		if (!(e & RT_V6_NODE))                                          \
			goto leaf;                                              \
		idx = (e & RT_V6_OFF) + v6_bits(hi, lo, b, to);                 \
		if (idx >= words)                                               \
			return 0;                                               \
		e = t[idx];
		RT_V6_STEPS(V6_STEP)
#undef V6_STEP
		if (e & RT_V6_NODE)
			return 0;
leaf:
		if (!(e & RT_V6_SKIP))
			return e;
		/* a single-route record: its route's group on a match, else the covering one's */
		idx = e & RT_V6_OFF;
		if (idx > words - sizeof(*r) / 4)
			return 0;
		r = (const void *)(t + idx);
		return (((hi ^ r->key_hi) >> (r->sh_hi & 63)) |
			(((lo ^ r->key_lo) >> (r->sh_lo1 & 63)) >> (r->sh_lo2 & 1))) ? r->gid_else : r->gid;
	} else {
		struct rt_trie6_key k = { .prefixlen = 128 };
		__u32 *v;

		addr_copy(k.addr, a, 6);
		v = bank ? bpf_map_lookup_elem(&rt_trie6_1, &k) : bpf_map_lookup_elem(&rt_trie6_0, &k);
		return v ? *v : 0;
	}
}

static __always_inline struct rt_group *group_of(__u32 bank, __u32 gid)
{
	__u32 idx;

	if (gid == 0 || gid >= RT_GROUPS)
		return NULL;
	idx = bank * RT_GROUPS + gid;
	return bpf_map_lookup_elem(&rt_groups, &idx);
}

/* ---- counters --------------------------------------------------------------------------------- */
static __always_inline struct rt_port_stats *port_stats(__u32 port)
{
	return bpf_map_lookup_elem(&rt_port_stats, &port);
}

static __always_inline void count_class(__u32 cls, __u64 bytes)
{
	struct rt_class_stats *c = bpf_map_lookup_elem(&rt_class_stats, &cls);

	if (c) {
		c->packets += 1;
		c->bytes += bytes;
	}
}

static __always_inline void count_tx(__u32 port, __u64 bytes)
{
	struct rt_port_stats *s = port_stats(port);

	if (s) {
		s->tx_packets += 1;
		s->tx_bytes += bytes;
	}
}

static __always_inline void count_icmp(__u32 port)
{
	struct rt_port_stats *s = port_stats(port);

	if (s)
		s->icmp_out += 1;
}

/* Per-CPU token bucket: icmp_rate tokens per second, at most icmp_burst banked. */
static __always_inline int icmp_allowed(void)
{
	__u32 k = 0;
	struct rt_icmp_bucket *b = bpf_map_lookup_elem(&rt_icmp_rl, &k);
	__u64 now, elapsed, tokens, cap;

	if (!b)
		return 0;
	now = bpf_ktime_get_ns();
	elapsed = now - b->last_ns;
	if (elapsed > 10000000000ULL)
		elapsed = 10000000000ULL;
	b->last_ns = now;
	cap = (__u64)cfg.icmp_burst * 1000;
	tokens = b->tokens_milli + elapsed * cfg.icmp_rate / 1000000;
	if (tokens > cap)
		tokens = cap;
	if (tokens < 1000) {
		b->tokens_milli = tokens;
		return 0;
	}
	b->tokens_milli = tokens - 1000;
	return 1;
}

/* ---- neighbour learning ------------------------------------------------------------------------ */
static __always_inline void learn(__u32 port, __u8 family, const __u8 *addr, const __u8 *mac)
{
	struct rt_neigh_key k = { .port = port, .family = family };
	struct rt_neigh n = { .flags = RT_NEIGH_LEARNED }, *old;

	addr_copy(k.addr, addr, family);
	old = bpf_map_lookup_elem(&rt_neigh, &k);
	if (old && (old->flags & RT_NEIGH_STATIC))
		return; /* configured entries win over what the wire says */
	mac_copy(n.mac, mac);
	if (old && mac_eq(old->mac, mac) && old->flags == n.flags)
		return; /* unchanged: keep the caches valid */
	bpf_map_update_elem(&rt_neigh, &k, &n, BPF_ANY);
	neigh_gen_bump();
}

struct arp_eth4 {
	__be16 htype, ptype;
	__u8 hlen, plen;
	__be16 op;
	__u8 sha[6], spa[4], tha[6], tpa[4];
} __attribute__((packed));

/* ARP replies and requests to the port's address: Linux learns the sender from both (a request
 * to a local address makes a STALE entry, arp_process -> neigh_event_ns), so a host that resolved
 * the router is answered at once; a probe (sender 0.0.0.0) teaches nothing. */
static __always_inline void learn_arp(struct xdp_md *ctx, __u32 port, struct rt_port *p)
{
	struct arp_eth4 *a = xdp_ptr(ctx, sizeof(struct ethhdr), sizeof(*a));

	if (!a || (a->op != bpf_htons(ARPOP_REPLY) && a->op != bpf_htons(ARPOP_REQUEST)) ||
	    a->htype != bpf_htons(ARPHRD_ETHER) || a->ptype != bpf_htons(ETH_P_IP) ||
	    a->hlen != 6 || a->plen != 4)
		return;
	if (*(__u32 *)p->ip4 == 0 || *(__u32 *)a->tpa != *(__u32 *)p->ip4 || *(__u32 *)a->spa == 0)
		return;
	learn(port, 4, a->spa, a->sha);
}

/* Neighbour advertisements with a target link-layer address option (RFC 4861 4.4), and
 * solicitations for the port's address with a source link-layer address option from a
 * specified source (Linux's ndisc_recv_ns makes a STALE entry from them; DAD probes come from
 * :: and teach nothing). */
static __always_inline void learn_na(struct xdp_md *ctx, __u32 port, struct rt_port *p,
				     struct ipv6hdr *ip6)
{
	__u8 *icmp, *opt;

	if (ip6->nexthdr != IPPROTO_ICMPV6 || ip6->hop_limit != 255)
		return;
	icmp = xdp_ptr(ctx, sizeof(struct ethhdr) + sizeof(*ip6), 24 + 8);
	if (!icmp || icmp[1] != 0)
		return;
	opt = icmp + 24;
	if (icmp[0] == 136 && opt[0] == 2 && opt[1] == 1) {
		learn(port, 6, icmp + 8, opt + 2);
	} else if (icmp[0] == 135 && opt[0] == 1 && opt[1] == 1 && addr16_eq(icmp + 8, p->ip6)) {
		__u32 src[4];

		addr_copy(src, &ip6->saddr, 6);
		if (src[0] | src[1] | src[2] | src[3])
			learn(port, 6, (__u8 *)src, opt + 2);
	}
}

/* ---- ICMP built in XDP ------------------------------------------------------------------------- */
/* An ICMP error quotes as much of the invoking packet as fits in an error datagram of at most
 * 576 bytes for IPv4 (RFC 1812 4.3.2.3) and of the minimum IPv6 MTU, 1,280 bytes, for IPv6
 * (RFC 4443 2.4(c)). Built in place: the frame grows at the front by the new IP + ICMP headers,
 * the original IP packet (options included) becomes the quote, and the tail is cut where the quote
 * ends; bytes after the original's IP length (Ethernet padding) are never quoted. Sent back out
 * the ingress port from that port's address, per-CPU rate-limited (icmp_allowed). */
#define V4_ERR_MAX 576
#define V6_ERR_MAX 1280
#define V4_QUOTE_MAX (V4_ERR_MAX - 20 - 8)
#define V6_QUOTE_MAX (V6_ERR_MAX - 40 - 8)

/* Grow the front by `hdr` bytes (the error's IP + ICMP headers), keep `quote` bytes of the old IP
 * packet after them, and address the frame to `smac` from the ingress port. NULL: no room. */
static __always_inline struct ethhdr *icmp_reframe(struct xdp_md *ctx, struct rt_port *inp,
						   const void *smac, __u32 hdr, __u32 quote,
						   __be16 proto)
{
	struct ethhdr *eth;
	int delta;

	if (bpf_xdp_adjust_head(ctx, -(int)hdr))
		return NULL;
	/* quote <= the original IP length <= what the frame held: only ever a cut */
	delta = (int)(sizeof(*eth) + hdr + quote) - (int)(ctx->data_end - ctx->data);
	if (delta < 0 && bpf_xdp_adjust_tail(ctx, delta))
		return NULL;
	eth = xdp_ptr(ctx, 0, sizeof(*eth) + hdr);
	if (!eth)
		return NULL;
	mac_copy(eth->h_dest, smac);
	mac_copy(eth->h_source, inp->mac);
	eth->h_proto = proto;
	return eth;
}

/* ICMPv4 error. Caller checked: not about an ICMP error, not a non-first fragment. */
static __always_inline __u32 icmp4_error(struct xdp_md *ctx, __u32 in_port, struct rt_port *inp,
					 __u8 type, __u8 code, __be32 rest, __u32 why)
{
	struct ethhdr *eth;
	struct iphdr *ip;
	struct icmphdr *ic;
	__u32 smac[2]; /* words: see mac_copy */
	__be32 dst;
	__u32 quote;
	__u8 tos;

	if (!(cfg.flags & RT_F_ICMP_ERRORS) || *(__u32 *)inp->ip4 == 0)
		return OUT(XDP_DROP, why);
	eth = xdp_ptr(ctx, 0, sizeof(*eth) + sizeof(*ip));
	if (!eth)
		return OUT(XDP_DROP, NF_REASON_TRUNCATED);
	ip = (void *)(eth + 1);
	mac_copy(smac, eth->h_source);
	dst = ip->saddr;
	/* the packet's TOS bits and internetwork control precedence (RFC 1812 4.3.2.5), as Linux */
	tos = (ip->tos & 0x1e) | 0xc0;
	quote = bpf_ntohs(ip->tot_len);
	if (quote > V4_QUOTE_MAX)
		quote = V4_QUOTE_MAX;
	if (!icmp_allowed())
		return OUT(XDP_DROP, WHY(RT_REASON_ICMP_LIMITED));

	eth = icmp_reframe(ctx, inp, smac, sizeof(*ip) + sizeof(*ic), quote, bpf_htons(ETH_P_IP));
	if (!eth)
		return OUT(XDP_DROP, why);
	ip = (void *)(eth + 1);
	ic = (void *)(ip + 1);
	ip->version = 4;
	ip->ihl = 5;
	ip->tos = tos;
	ip->tot_len = bpf_htons(sizeof(*ip) + sizeof(*ic) + quote);
	ip->id = 0;
	ip->frag_off = 0;
	ip->ttl = 64;
	ip->protocol = IPPROTO_ICMP;
	ip->check = 0;
	ip->saddr = *(__be32 *)inp->ip4;
	ip->daddr = dst;
	ip->check = ip4_hdr_csum(ip);

	ic->type = type;
	ic->code = code;
	ic->checksum = 0;
	ic->rest = rest;
	ic->checksum = csum_fold(sum_pkt(ctx, sizeof(*eth) + sizeof(*ip), sizeof(*ic) + quote));
	count_icmp(in_port);
	return OUT(XDP_TX, why);
}

/* ICMPv6 error. Caller checked: not about an ICMPv6 error. */
static __always_inline __u32 icmp6_error(struct xdp_md *ctx, __u32 in_port, struct rt_port *inp,
					 __u8 type, __u8 code, __be32 rest, __u32 why)
{
	struct ethhdr *eth;
	struct ipv6hdr *ip6;
	struct icmp6hdr *ic;
	__u32 smac[2], dst[4]; /* words: see mac_copy */
	__u32 quote, plen;
	__u64 s;

	if (!(cfg.flags & RT_F_ICMP_ERRORS) || !(inp->ip6[0] | inp->ip6[1]))
		return OUT(XDP_DROP, why);
	eth = xdp_ptr(ctx, 0, sizeof(*eth) + sizeof(*ip6));
	if (!eth)
		return OUT(XDP_DROP, NF_REASON_TRUNCATED);
	ip6 = (void *)(eth + 1);
	mac_copy(smac, eth->h_source);
	addr_copy(dst, &ip6->saddr, 6);
	quote = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	if (quote > V6_QUOTE_MAX)
		quote = V6_QUOTE_MAX;
	if (!icmp_allowed())
		return OUT(XDP_DROP, WHY(RT_REASON_ICMP_LIMITED));

	eth = icmp_reframe(ctx, inp, smac, sizeof(*ip6) + sizeof(*ic), quote, bpf_htons(ETH_P_IPV6));
	if (!eth)
		return OUT(XDP_DROP, why);
	ip6 = (void *)(eth + 1);
	ic = (void *)(ip6 + 1);
	plen = sizeof(*ic) + quote;
	*(__be32 *)ip6 = bpf_htonl(0x60000000);
	ip6->payload_len = bpf_htons(plen);
	ip6->nexthdr = IPPROTO_ICMPV6;
	ip6->hop_limit = 64;
	addr_copy(&ip6->saddr, inp->ip6, 6);
	addr_copy(&ip6->daddr, dst, 6);

	ic->icmp6_type = type;
	ic->icmp6_code = code;
	ic->icmp6_cksum = 0;
	ic->icmp6_dataun.un_data32[0] = rest;
	/* pseudo-header: addresses, upper-layer length, next header */
	s = sum_pkt(ctx, sizeof(*eth) + 8, 32);
	s += bpf_htons(plen) + bpf_htons(IPPROTO_ICMPV6);
	s += sum_pkt(ctx, sizeof(*eth) + sizeof(*ip6), plen);
	ic = xdp_ptr(ctx, sizeof(*eth) + sizeof(*ip6), sizeof(*ic));
	if (!ic)
		return OUT(XDP_DROP, why);
	ic->icmp6_cksum = csum_fold(s);
	count_icmp(in_port);
	return OUT(XDP_TX, why);
}

static __always_inline void swap_macs(struct ethhdr *eth)
{
	__u32 t[2];

	mac_copy(t, eth->h_dest);
	mac_copy(eth->h_dest, eth->h_source);
	mac_copy(eth->h_source, t);
}

/* Where Linux would send an answer to the packet in the frame (an ICMP error, an echo reply):
 * it routes it to the packet's source. The router answers with XDP_TX, so it answers only when
 * that route leads back out of the ingress port to the frame's sender; elsewhere it is the
 * kernel's (Linux then routes it, drops it, or finds the source is a martian). */
enum rev {
	REV_TX,      /* back out of the ingress port, to the frame's Ethernet source */
	REV_NONE,    /* no route, a blackhole or an unreachable route: Linux sends nothing */
	REV_SELF,    /* our own address, a directed broadcast, a subnet-router anycast address */
	REV_ELSE,    /* another port or MAC, an unknown neighbour, several next hops */
	REV_UNSURE,  /* mode fib, "not forwarded": local or broadcast, or no route at all */
};

/* A subprogram (one copy for every caller): the source's route, then its neighbour. */
static __noinline int reverse_path(struct xdp_md *ctx, __u32 family, __u32 in_port)
{
	struct rt_neigh_key k = { .port = in_port, .family = family };
	__u32 src[4] = {}, smac[2], bank;
	struct rt_neigh *n;
	struct rt_group *g;
	__u8 *eth = xdp_ptr(ctx, 0, sizeof(struct ethhdr) + sizeof(struct ipv6hdr));

	if (family == 4)
		eth = xdp_ptr(ctx, 0, sizeof(struct ethhdr) + sizeof(struct iphdr));
	if (!eth)
		return REV_ELSE;
	mac_copy(smac, eth + 6);
	if (family == 4)
		src[0] = *(__u32 *)(eth + sizeof(struct ethhdr) + 12);
	else
		addr_copy(src, eth + sizeof(struct ethhdr) + 8, 6);

	if (cfg.mode == RT_MODE_FIB) {
		struct bpf_fib_lookup fl = {};
		__u32 dmac[2], out;

		fl.ifindex = ctx->ingress_ifindex;
		if (family == 4) {
			fl.family = AF_INET;
			fl.ipv4_dst = src[0];
		} else {
			fl.family = AF_INET6;
			addr_copy(fl.ipv6_dst, src, 6);
		}
		switch (bpf_fib_lookup(ctx, &fl, sizeof(fl), 0)) {
		case BPF_FIB_LKUP_RET_SUCCESS:
			__builtin_memcpy(dmac, fl.dmac, 6); /* at offset 58: only 2-byte aligned */
			return !port_of_ifindex(fl.ifindex, &out) && out == in_port && mac_eq(dmac, smac) ?
			       REV_TX : REV_ELSE;
		case BPF_FIB_LKUP_RET_BLACKHOLE:
		case BPF_FIB_LKUP_RET_UNREACHABLE:
		case BPF_FIB_LKUP_RET_PROHIBIT:
			return REV_NONE;
		case BPF_FIB_LKUP_RET_NOT_FWDED:
			return REV_UNSURE;
		default:
			return REV_ELSE;
		}
	}
	bank = bank_now();
	g = group_of(bank, family == 4 ? lookup4(bank, bpf_ntohl(src[0])) : lookup6(bank, (__u8 *)src));
	if (!g)
		return REV_NONE;
	switch (g->kind) {
	case RT_KIND_FORWARD:
	case RT_KIND_CONNECTED:
		break;
	case RT_KIND_LOCAL:
	case RT_KIND_KERNEL:
		return REV_SELF;
	case RT_KIND_NONE:
	case RT_KIND_BLACKHOLE:
	case RT_KIND_UNREACHABLE:
		return REV_NONE;
	default:
		return REV_ELSE;
	}
	/* several next hops: Linux's multipath hash picks one, the kernel knows which */
	if (g->count != 1 || g->hops[0].port != in_port)
		return REV_ELSE;
	if (g->kind == RT_KIND_CONNECTED)
		addr_copy(k.addr, src, family);
	else
		addr_copy(k.addr, g->hops[0].gw, family);
	n = bpf_map_lookup_elem(&rt_neigh, &k);
	if (!n) {
		/* Unknown: reported for the controller to resolve. An on-link sender is answered at
		 * its frame's source MAC, where Linux's ARP/ND for it would lead (Linux queues the
		 * answer behind that resolution; XDP cannot hold a packet, and the deployment's kernel
		 * lacks the routes to answer for us). A gateway may not be the frame's sender: the
		 * kernel's. */
		__u64 now = bpf_ktime_get_ns();

		bpf_map_update_elem(&rt_neigh_miss, &k, &now, BPF_ANY);
		return g->kind == RT_KIND_CONNECTED ? REV_TX : REV_ELSE;
	}
	return mac_eq(n->mac, smac) ? REV_TX : REV_ELSE;
}

/* An echo reply goes out only where Linux would send it (reverse_path); else the kernel's. */
static __always_inline __u32 answer_here(struct xdp_md *ctx, __u32 family, __u32 in_port)
{
	switch (reverse_path(ctx, family, in_port)) {
	case REV_TX:
		return 0;
	case REV_NONE:
		return OUT(XDP_DROP, WHY(RT_REASON_LOCAL));
	default:
		return OUT(XDP_PASS, WHY(RT_REASON_LOCAL));
	}
}

/* Echo request to one of our addresses -> echo reply out of the ingress port, built as Linux's
 * icmp_reply builds it: a fresh header (TOS kept, ID 0, no DF, TTL 64) and the request's ICMP
 * message. Everything else addressed to us is the kernel's, and so are requests Linux would not
 * answer the same way: a wrong ICMP checksum (the kernel drops and counts it), a code other than
 * 0 (Linux echoes it), a message longer than sum_pkt() sums, a source not behind the ingress
 * port. (IPv4 options never get here: handle_v4 passes them.) */
static __always_inline __u32 local4(struct xdp_md *ctx, __u32 in_port, __u32 tot)
{
	struct ethhdr *eth;
	struct iphdr *ip;
	struct icmphdr *ic;
	__u32 len = tot - sizeof(*ip), res;
	__u16 old;
	__be32 t;

	ip = xdp_ptr(ctx, sizeof(*eth), sizeof(*ip));
	if (!ip || !(cfg.flags & RT_F_ECHO) || ip->protocol != IPPROTO_ICMP ||
	    (ip->frag_off & bpf_htons(0x3fff)))
		return OUT(XDP_PASS, WHY(RT_REASON_LOCAL));
	ic = xdp_ptr(ctx, sizeof(*eth) + sizeof(*ip), sizeof(*ic));
	if (!ic || ic->type != ICMP_ECHO || ic->code != 0 || len > SUM_MAX_BLOCKS * SUM_BLOCK ||
	    csum_fold(sum_pkt(ctx, sizeof(*eth) + sizeof(*ip), len)) != 0)
		return OUT(XDP_PASS, WHY(RT_REASON_LOCAL));
	res = answer_here(ctx, 4, in_port);
	if (res)
		return res;
	eth = xdp_ptr(ctx, 0, sizeof(*eth) + sizeof(*ip) + sizeof(*ic));
	if (!eth)
		return OUT(XDP_DROP, NF_REASON_TRUNCATED);
	ip = (void *)(eth + 1);
	ic = (void *)(ip + 1);
	old = *(__u16 *)ic;
	ic->type = ICMP_ECHOREPLY;
	ic->checksum = csum_replace16(ic->checksum, old, *(__u16 *)ic);
	t = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = t;
	ip->id = 0;
	ip->frag_off = 0;
	ip->ttl = 64;
	ip->check = 0;
	ip->check = ip4_hdr_csum(ip);
	swap_macs(eth);
	count_icmp(in_port);
	return OUT(XDP_TX, WHY(RT_REASON_ECHO));
}

/* IPv6 likewise (icmpv6_echo_reply): traffic class and flow label kept, hop limit 64. */
static __always_inline __u32 local6(struct xdp_md *ctx, __u32 in_port, __u32 tot)
{
	struct ethhdr *eth;
	struct ipv6hdr *ip6;
	struct icmp6hdr *ic;
	struct in6_addr t;
	__u32 len = tot - sizeof(*ip6), res;
	__u64 s;
	__u16 old;

	ip6 = xdp_ptr(ctx, sizeof(*eth), sizeof(*ip6));
	if (!ip6 || !(cfg.flags & RT_F_ECHO) || ip6->nexthdr != IPPROTO_ICMPV6)
		return OUT(XDP_PASS, WHY(RT_REASON_LOCAL));
	ic = xdp_ptr(ctx, sizeof(*eth) + sizeof(*ip6), sizeof(*ic));
	if (!ic || ic->icmp6_type != ICMPV6_ECHO_REQUEST || ic->icmp6_code != 0 ||
	    len > SUM_MAX_BLOCKS * SUM_BLOCK)
		return OUT(XDP_PASS, WHY(RT_REASON_LOCAL));
	/* checksum over the pseudo-header (addresses, length, next header) and the message */
	s = sum_pkt(ctx, sizeof(*eth) + 8, 32) + bpf_htons(len) + bpf_htons(IPPROTO_ICMPV6) +
	    sum_pkt(ctx, sizeof(*eth) + sizeof(*ip6), len);
	if (csum_fold(s) != 0)
		return OUT(XDP_PASS, WHY(RT_REASON_LOCAL));
	res = answer_here(ctx, 6, in_port);
	if (res)
		return res;
	eth = xdp_ptr(ctx, 0, sizeof(*eth) + sizeof(*ip6) + sizeof(*ic));
	if (!eth)
		return OUT(XDP_DROP, NF_REASON_TRUNCATED);
	ip6 = (void *)(eth + 1);
	ic = (void *)(ip6 + 1);
	old = *(__u16 *)ic;
	ic->icmp6_type = ICMPV6_ECHO_REPLY;
	/* Swapping the addresses leaves the pseudo-header sum unchanged. */
	ic->icmp6_cksum = csum_replace16(ic->icmp6_cksum, old, *(__u16 *)ic);
	t = ip6->saddr;
	ip6->saddr = ip6->daddr;
	ip6->daddr = t;
	ip6->hop_limit = 64;
	swap_macs(eth);
	count_icmp(in_port);
	return OUT(XDP_TX, WHY(RT_REASON_ECHO));
}

/* ---- forwarding -------------------------------------------------------------------------------- */
struct fwd {
	__u32 port;
	__u32 mtu;      /* set with RT_TOO_BIG */
	__u8 dmac[8];   /* 6 used; 8 keeps smac word-aligned on the stack (mac_copy) */
	__u8 smac[8];
};

/* resolve() result: the egress port's MTU is below the packet (f->mtu says how far). */
#define RT_TOO_BIG (-1)

/* Choose the hop of a group for this flow, check the egress MTU against the packet's IP length
 * `l3len` (before the neighbour, as Linux's ip_forward does) and resolve the neighbour.
 * 0 = ok, RT_TOO_BIG, else a reason. */
static __always_inline int resolve(struct rt_group *g, __u32 hash, __u8 family, const __u8 *dst,
				   __u32 l3len, struct fwd *f)
{
	struct rt_neigh_key k = { .family = family };
	struct rt_neigh *n;
	struct rt_port *op;
	struct rt_hop *h;
	__u32 idx = 0, cnt = g->count;

	if (cnt > 1) {
		if (cnt > RT_ECMP_MAX)
			cnt = RT_ECMP_MAX;
		idx = (__u32)(((__u64)hash * cnt) >> 32);
	}
	h = &g->hops[idx & (RT_ECMP_MAX - 1)];
	k.port = h->port;
	op = bpf_map_lookup_elem(&rt_ports, &k.port);
	if (!op || !op->up)
		return WHY(RT_REASON_NO_ROUTE);
	if (op->mtu && l3len > op->mtu) {
		f->mtu = op->mtu;
		return RT_TOO_BIG;
	}
	if (g->kind == RT_KIND_CONNECTED)
		addr_copy(k.addr, dst, family);
	else
		addr_copy(k.addr, h->gw, family);
	{
		const __u32 *a = (const __u32 *)k.addr;
		__u64 gen = neigh_gen();
		__u32 ci = ((a[0] ^ a[1] ^ a[2] ^ a[3] ^ k.port) * 0x9e3779b1u) >> (32 - RT_NCACHE_BITS);
		struct rt_ncache *c = bpf_map_lookup_elem(&rt_ncache, &ci);

		if (c && c->valid && c->gen == gen && c->port == k.port && c->family == family &&
		    addr16_eq(c->addr, k.addr)) {
			mac_copy(f->dmac, c->mac);
		} else {
			n = bpf_map_lookup_elem(&rt_neigh, &k);
			if (!n) {
				__u64 now = bpf_ktime_get_ns();

				bpf_map_update_elem(&rt_neigh_miss, &k, &now, BPF_ANY);
				return WHY(RT_REASON_NEIGH_MISS);
			}
			mac_copy(f->dmac, n->mac);
			if (c) {
				c->gen = gen;
				c->port = k.port;
				c->family = family;
				addr_copy(c->addr, k.addr, 6);
				mac_copy(c->mac, n->mac);
				c->valid = 1;
			}
		}
	}
	f->port = k.port;
	mac_copy(f->smac, op->mac);
	return 0;
}

static __always_inline __u32 transmit(struct ethhdr *eth, struct fwd *f, __u32 cls, __u32 bytes)
{

	mac_copy(eth->h_dest, f->dmac);
	mac_copy(eth->h_source, f->smac);
	count_class(cls, bytes);
	count_tx(f->port, bytes);
	return OUT(bpf_redirect_map(&rt_tx, f->port, XDP_DROP), NF_REASON_NONE);
}

/* fib_resolve() result for the kernel's prohibit routes (not a group kind: mode fib only). */
#define FIB_KIND_PROHIBIT 0x10

/* Kernel-FIB mode: fill `f` from bpf_fib_lookup. Returns the group kind it amounts to, -1 for
 * the kernel's: "not forwarded" is a local, broadcast or anycast destination or no route at
 * all, which only the kernel tells apart; no neighbour, forwarding off, fragmentation needed. */
static __always_inline int fib_resolve(struct xdp_md *ctx, struct bpf_fib_lookup *p, struct fwd *f)
{
	long rc = bpf_fib_lookup(ctx, p, sizeof(*p), 0);

	switch (rc) {
	case BPF_FIB_LKUP_RET_SUCCESS:
		if (port_of_ifindex(p->ifindex, &f->port))
			return -1; /* egress is not a router port: the kernel's job */
		__builtin_memcpy(f->dmac, p->dmac, 6); /* at offset 58: only 2-byte aligned */
		mac_copy(f->smac, p->smac);
		return RT_KIND_FORWARD;
	case BPF_FIB_LKUP_RET_BLACKHOLE:
		return RT_KIND_BLACKHOLE;
	case BPF_FIB_LKUP_RET_UNREACHABLE:
		return RT_KIND_UNREACHABLE;
	case BPF_FIB_LKUP_RET_PROHIBIT:
		return FIB_KIND_PROHIBIT;
	default:
		return -1;
	}
}

/* What the forward path shared by both families needs of an IP header (filled by handle_v4 /
 * handle_v6 after their checks). */
struct l3 {
	void *hdr;          /* struct iphdr or struct ipv6hdr, in the packet */
	const __u8 *dst;    /* destination address bytes (IPv6: a stack copy) */
	__u32 dst4;         /* IPv4 destination, host order */
	__u32 len;          /* IP total length */
	__u32 bytes;        /* frame length once trimmed to the IP length (tx counters) */
	__u8 proto;         /* IPv4 protocol / IPv6 first next header */
};

/* Linux (icmp_send) sends no error about an ICMP error, nor about a type it does not know
 * (above 18, NR_ICMP_TYPES): those may be errors too. */
static __always_inline int is_icmp4_error(struct xdp_md *ctx, struct iphdr *ip)
{
	__u8 *t;

	if (ip->protocol != IPPROTO_ICMP)
		return 0;
	t = xdp_ptr(ctx, sizeof(struct ethhdr) + ip->ihl * 4, 1);
	if (!t)
		return 1; /* cannot tell: stay silent */
	return *t == ICMP_DEST_UNREACH || *t == ICMP_SOURCE_QUENCH || *t == ICMP_REDIRECT ||
	       *t == ICMP_TIME_EXCEEDED || *t == ICMP_PARAMETERPROB || *t > 18;
}

/* No ICMPv6 error about an ICMPv6 error (RFC 4443 2.4(e)), found as Linux's is_ineligible()
 * finds it: past the extension headers; an ICMPv6 type cut off counts as an error unless the
 * packet is a fragment. A non-first fragment may get errors (its upper layer is not there).
 * 1: no error, 0: an error may be sent, -1: more headers than walked (the kernel decides). */
#define V6_EXT_WALK 8
static __always_inline int icmp6_ineligible(struct xdp_md *ctx, __u8 nh)
{
	__u32 off = sizeof(struct ethhdr) + sizeof(struct ipv6hdr);
	__u16 frag = 0;
	__u8 h[4];

	for (int i = 0; i < V6_EXT_WALK; i++) {
		switch (nh) {
		case 0:    /* hop-by-hop */
		case 43:   /* routing */
		case 44:   /* fragment */
		case 51:   /* authentication */
		case 60:   /* destination options */
			if (bpf_xdp_load_bytes(ctx, off, h, 4))
				return 0;
			if (nh == 44) {
				frag = ((__u16)h[2] << 8) | h[3];
				if (frag & ~7)
					return 0;
				off += 8;
			} else {
				off += nh == 51 ? ((__u32)h[1] + 2) * 4 : ((__u32)h[1] + 1) * 8;
			}
			nh = h[0];
			continue;
		case IPPROTO_ICMPV6:
			if (bpf_xdp_load_bytes(ctx, off, h, 1))
				return frag == 0;
			return h[0] < 128;
		default:   /* no next header, an upper layer */
			return 0;
		}
	}
	return -1;
}

/* The ICMP errors the router sends, in family-neutral terms. */
enum ip_err {
	ERR_NO_ROUTE,   /* v4 3/0 net unreachable, v6 1/0 no route */
	ERR_UNREACH,    /* unreachable route, as Linux's: v4 3/1 host unreachable, v6 1/0 */
	ERR_ADMIN,      /* prohibited: v4 3/13 administratively filtered, v6 1/1 */
	ERR_TTL,        /* v4 11/0, v6 3/0: TTL / hop limit exceeded in transit */
	ERR_TOO_BIG,    /* v4 3/4 fragmentation needed (MTU in the low 16 bits of the second word,
			 * RFC 1191 4), v6 2/0 packet too big (MTU, RFC 4443 3.2) */
};

/* Error `e` about the packet, sent where Linux sends it: never about an ICMP error, nor (IPv4) a
 * non-first fragment (RFC 1122 3.2.2, RFC 4443 2.4(e)); only back out of the ingress port to the
 * frame's sender (reverse_path): with no way back Linux sends nothing, anywhere else the kernel
 * routes it. */
static __always_inline __u32 ip_error(struct xdp_md *ctx, const __u8 family, __u32 in_port,
				      struct rt_port *inp, struct l3 *p, enum ip_err e, __u32 mtu)
{
	__u32 why = WHY(e == ERR_TTL ? RT_REASON_TTL : RT_REASON_NO_ROUTE);

	if (family == 4) {
		struct iphdr *ip = p->hdr;

		if ((ip->frag_off & bpf_htons(0x1fff)) || is_icmp4_error(ctx, ip))
			return OUT(XDP_DROP, why);
	} else {
		int r = icmp6_ineligible(ctx, p->proto);

		if (r)
			return OUT(r > 0 ? XDP_DROP : XDP_PASS, why);
	}
	switch (reverse_path(ctx, family, in_port)) {
	case REV_TX:
		break;
	case REV_NONE:
		return OUT(XDP_DROP, why);
	default:
		return OUT(XDP_PASS, why);
	}
	if (family == 4)
		return icmp4_error(ctx, in_port, inp,
				   e == ERR_TTL ? ICMP_TIME_EXCEEDED : ICMP_DEST_UNREACH,
				   e == ERR_UNREACH ? ICMP_HOST_UNREACH :
				   e == ERR_ADMIN ? ICMP_PKT_FILTERED :
				   e == ERR_TOO_BIG ? ICMP_FRAG_NEEDED : 0 /* net unreach, TTL */,
				   bpf_htonl(mtu & 0xffff), why);
	return icmp6_error(ctx, in_port, inp,
			   e == ERR_TTL ? ICMPV6_TIME_EXCEED :
			   e == ERR_TOO_BIG ? ICMPV6_PKT_TOOBIG : ICMPV6_DEST_UNREACH,
			   e == ERR_ADMIN ? ICMPV6_ADM_PROHIBITED : 0 /* no route, hop limit */,
			   bpf_htonl(mtu), why);
}

/* ECMP flow hash of the packet; IPv4 fragments hash without ports (only the first has them). */
static __always_inline __u32 ecmp_hash(struct xdp_md *ctx, const __u8 family, struct l3 *p)
{
	struct iphdr *ip = p->hdr;
	struct ipv6hdr *ip6 = p->hdr;
	__u32 ports = 0;

	if ((p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP) &&
	    !(family == 4 && (ip->frag_off & bpf_htons(0x3fff)))) {
		__u32 *l4 = xdp_ptr(ctx, sizeof(struct ethhdr) +
					 (family == 4 ? sizeof(*ip) : sizeof(*ip6)), 4);

		if (l4)
			ports = bpf_ntohl(*l4);
	}
	if (family == 4)
		return flow_hash(bpf_ntohl(ip->saddr), p->dst4, ports, p->proto);
	return flow_hash(fold6(ip6->saddr.in6_u.u6_addr8), fold6(p->dst), ports, p->proto);
}

/* Route, then forward / answer / send an error: the same steps for both families (`family` is a
 * constant in each inlined copy, so the other family's branches compile away). */
static __always_inline __u32 forward_ip(struct xdp_md *ctx, const __u8 family, __u32 in_port,
					struct rt_port *inp, struct ethhdr *eth, struct l3 *p)
{
	struct iphdr *ip = p->hdr;
	struct ipv6hdr *ip6 = p->hdr;
	struct rt_group *g = NULL;
	struct fwd f = {};
	__u32 kind, cls, hash = 0, mtu = 0;
	enum ip_err e;
	int why;

	if (cfg.mode == RT_MODE_FIB) {
		struct bpf_fib_lookup fl = {};
		int k;

		fl.l4_protocol = p->proto;
		fl.tot_len = p->len;
		fl.ifindex = ctx->ingress_ifindex;
		if (family == 4) {
			fl.family = AF_INET;
			fl.tos = ip->tos;
			fl.ipv4_src = ip->saddr;
			fl.ipv4_dst = ip->daddr;
		} else {
			fl.family = AF_INET6;
			fl.flowinfo = *(__be32 *)ip6 & bpf_htonl(0x0fffffff);
			addr_copy(fl.ipv6_src, &ip6->saddr, 6);
			addr_copy(fl.ipv6_dst, p->dst, 6);
		}
		k = fib_resolve(ctx, &fl, &f);
		if (k < 0)
			return OUT(XDP_PASS, WHY(RT_REASON_NEIGH_MISS));
		kind = k;
		cls = RT_CLASS_KERNEL;
	} else {
		__u32 bank = bank_now();

		g = group_of(bank, family == 4 ? lookup4(bank, p->dst4) : lookup6(bank, p->dst));
		if (!g || g->kind == RT_KIND_NONE) {
			count_class(RT_CLASS_NOROUTE, p->bytes);
			e = ERR_NO_ROUTE;
			goto error;
		}
		kind = g->kind;
		cls = g->cls & (RT_CLASSES - 1);
	}

	switch (kind) {
	case RT_KIND_LOCAL:
		count_class(RT_CLASS_LOCAL, p->bytes);
		return family == 4 ? local4(ctx, in_port, p->len) : local6(ctx, in_port, p->len);
	case RT_KIND_KERNEL:
		count_class(cls, p->bytes);
		return OUT(XDP_PASS, WHY(RT_REASON_LOCAL));
	case RT_KIND_BLACKHOLE:
		count_class(cls, p->bytes);
		return OUT(XDP_DROP, WHY(RT_REASON_BLACKHOLE));
	case RT_KIND_UNREACHABLE:
		count_class(cls, p->bytes);
		/* mode fib: the kernel's route type says which (FIB_KIND_PROHIBIT below) */
		e = cfg.mode != RT_MODE_FIB && (cfg.flags & RT_F_UNREACH_ADMIN) ? ERR_ADMIN : ERR_UNREACH;
		goto error;
	case FIB_KIND_PROHIBIT:
		count_class(cls, p->bytes);
		e = ERR_ADMIN;
		goto error;
	case RT_KIND_FORWARD:
	case RT_KIND_CONNECTED:
		break;
	default:
		return OUT(XDP_DROP, NF_REASON_CONFIG);
	}

	if ((family == 4 ? ip->ttl : ip6->hop_limit) <= 1) {
		e = ERR_TTL;
		goto error;
	}

	if (g) {
		if (g->count > 1)
			hash = ecmp_hash(ctx, family, p);
		why = resolve(g, hash, family, p->dst, p->len, &f);
		if (why == RT_TOO_BIG) {
			/* IPv4 without DF: the kernel fragments (XDP cannot) */
			if (family == 4 && !(ip->frag_off & bpf_htons(0x4000)))
				return OUT(XDP_PASS, WHY(RT_REASON_NOT_FOR_US));
			e = ERR_TOO_BIG;
			mtu = f.mtu;
			goto error;
		}
		if (why)
			return OUT(XDP_PASS, why); /* the kernel resolves it; the controller mirrors it */
	}

	if (family == 4 && f.port == in_port) {
		/* out of the port it came in by: Linux checks the source in full (fib_validate_source,
		 * send_redirects on): a broadcast or local source is a martian there */
		int r = reverse_path(ctx, 4, in_port);

		if (r == REV_SELF)
			return OUT(XDP_DROP, NF_REASON_MALFORMED);
		if (r == REV_UNSURE)
			return OUT(XDP_PASS, WHY(RT_REASON_NOT_FOR_US));
		eth = xdp_ptr(ctx, 0, sizeof(*eth) + sizeof(*ip));
		if (!eth)
			return OUT(XDP_DROP, NF_REASON_TRUNCATED);
		ip = (void *)(eth + 1);
	}

	if (family == 4) {
		/* TTL decrement; the checksum follows the 16-bit word (ttl, protocol) (RFC 1624) */
		__u16 old = *(__u16 *)&ip->ttl;

		ip->ttl -= 1;
		ip->check = csum_replace16(ip->check, old, *(__u16 *)&ip->ttl);
	} else {
		ip6->hop_limit -= 1; /* no header checksum in IPv6 */
	}
	return transmit(eth, &f, cls, p->bytes);
error:
	/* one copy of the (large) error builder per family, whatever the error */
	return ip_error(ctx, family, in_port, inp, p, e, mtu);
}

/* Cut a frame of `bytes` to Ethernet + the IP packet's own length `tot`: what follows the packet
 * is not part of it, and Linux forwards and answers without it (ip_rcv_core trims). Returns the
 * frame (`eth`, checked for the Ethernet and `hdr` IP header bytes), read again after a cut;
 * NULL when the cut failed. (Re-read from the frame's start: a packet pointer loaded after its
 * bounds check has no verified range.) */
static __always_inline struct ethhdr *trim_to(struct xdp_md *ctx, __u32 bytes, __u32 tot,
					      struct ethhdr *eth, __u32 hdr)
{
	if (bytes <= sizeof(*eth) + tot)
		return eth;
	if (bpf_xdp_adjust_tail(ctx, (int)(sizeof(*eth) + tot) - (int)bytes))
		return NULL;
	return xdp_ptr(ctx, 0, sizeof(*eth) + hdr);
}

static __always_inline __u32 handle_v4(struct xdp_md *ctx, __u32 in_port, struct rt_port *inp,
				      __u32 bytes)
{
	struct ethhdr *eth = xdp_data(ctx);
	struct iphdr *ip = xdp_ptr(ctx, sizeof(*eth), sizeof(*ip));
	struct l3 p = {};
	__u32 dst, src, tot;

	if (!ip || (void *)(eth + 1) > xdp_data_end(ctx))
		return OUT(XDP_DROP, NF_REASON_TRUNCATED);
	if (ip->version != 4 || ip->ihl < 5)
		return OUT(XDP_DROP, NF_REASON_MALFORMED);
	tot = bpf_ntohs(ip->tot_len);
	if (tot < sizeof(*ip) || tot > bytes - sizeof(*eth))
		return OUT(XDP_DROP, NF_REASON_MALFORMED);
	if (ip->ihl != 5) {
		/* options: the header sum covers them */
		if (tot < ip->ihl * 4 || ip4_opt_csum(ctx, ip->ihl * 4) != 0)
			return OUT(XDP_DROP, NF_REASON_MALFORMED);
	} else if (ip4_hdr_csum(ip) != 0) {
		return OUT(XDP_DROP, NF_REASON_MALFORMED);
	}
	dst = bpf_ntohl(ip->daddr);
	src = bpf_ntohl(ip->saddr);
	if ((dst >> 28) == 0xe || dst == 0xffffffff)
		return OUT(XDP_PASS, WHY(RT_REASON_NOT_FOR_US));
	/* martians, as Linux's ip_route_input_slow finds them (RFC 1812 5.3.7): multicast, limited
	 * broadcast, 0.0.0.0 or loopback sources, 0.0.0.0 or loopback destinations (the rest of
	 * 0/8 and 240/4 are routed, since Linux 5.3 and 2.6.25); and our own addresses as source */
	if ((src >> 28) == 0xe || src == 0xffffffff || src == 0 || (src >> 24) == 127 ||
	    dst == 0 || (dst >> 24) == 127 || is_local4(ip->saddr))
		return OUT(XDP_DROP, NF_REASON_MALFORMED);
	/* options: the kernel checks them (Parameter Problem), processes them (record route,
	 * source routes, timestamps...) and echoes them in its ICMP errors: all of it its job */
	if (ip->ihl != 5)
		return OUT(XDP_PASS, WHY(RT_REASON_NOT_FOR_US));
	eth = trim_to(ctx, bytes, tot, eth, sizeof(*ip));
	if (!eth)
		return OUT(XDP_DROP, NF_REASON_TRUNCATED);
	ip = (void *)(eth + 1);

	p.hdr = ip;
	p.bytes = sizeof(*eth) + tot;
	p.dst = (const __u8 *)&ip->daddr;
	p.dst4 = dst;
	p.len = tot;
	p.proto = ip->protocol;
	return forward_ip(ctx, 4, in_port, inp, eth, &p);
}

static __always_inline __u32 handle_v6(struct xdp_md *ctx, __u32 in_port, struct rt_port *inp,
				      __u32 bytes)
{
	struct ethhdr *eth = xdp_data(ctx);
	struct ipv6hdr *ip6 = xdp_ptr(ctx, sizeof(*eth), sizeof(*ip6));
	struct l3 p = {};
	__u32 dst[4]; /* words: see mac_copy */
	const __u8 *d = (const __u8 *)dst;
	const __u32 *s;
	__u32 tot;

	if (!ip6 || (void *)(eth + 1) > xdp_data_end(ctx))
		return OUT(XDP_DROP, NF_REASON_TRUNCATED);
	if (ip6->version != 6)
		return OUT(XDP_DROP, NF_REASON_MALFORMED);
	tot = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	if (tot > bytes - sizeof(*eth))
		return OUT(XDP_DROP, NF_REASON_MALFORMED);
	addr_copy(dst, &ip6->daddr, 6);
	s = ip6->saddr.in6_u.u6_addr32;
	/* multicast and link-local destinations are the kernel's */
	if (d[0] == 0xff || (d[0] == 0xfe && (d[1] & 0xc0) == 0x80))
		return OUT(XDP_PASS, WHY(RT_REASON_NOT_FOR_US));
	if (ip6->saddr.in6_u.u6_addr8[0] == 0xff)
		return OUT(XDP_DROP, NF_REASON_MALFORMED);
	/* ::1 either way is dropped on receipt (RFC 4291 2.5.3, ip6_rcv_core) */
	if (((s[0] | s[1] | s[2]) == 0 && s[3] == bpf_htonl(1)) ||
	    ((dst[0] | dst[1] | dst[2]) == 0 && dst[3] == bpf_htonl(1)))
		return OUT(XDP_DROP, NF_REASON_MALFORMED);
	/* the kernel's: unspecified and link-local sources (Linux forwards them only back out of
	 * the ingress port, and answers a link-local one from its own link-local address), the
	 * unspecified destination, hop-by-hop options (processed before forwarding, like IPv4
	 * options), a zero payload length (a jumbogram's) */
	if ((s[0] | s[1] | s[2] | s[3]) == 0 ||
	    (ip6->saddr.in6_u.u6_addr8[0] == 0xfe && (ip6->saddr.in6_u.u6_addr8[1] & 0xc0) == 0x80) ||
	    (dst[0] | dst[1] | dst[2] | dst[3]) == 0 || ip6->nexthdr == 0 || ip6->payload_len == 0)
		return OUT(XDP_PASS, WHY(RT_REASON_NOT_FOR_US));
	eth = trim_to(ctx, bytes, tot, eth, sizeof(*ip6));
	if (!eth)
		return OUT(XDP_DROP, NF_REASON_TRUNCATED);
	ip6 = (void *)(eth + 1);

	p.hdr = ip6;
	p.bytes = sizeof(*eth) + tot;
	p.dst = d;
	p.len = tot;
	p.proto = ip6->nexthdr;
	return forward_ip(ctx, 6, in_port, inp, eth, &p);
}

SEC("xdp")
int xdp_router(struct xdp_md *ctx)
{
	struct ethhdr *eth = xdp_ptr(ctx, 0, sizeof(*eth));
	__u32 ifindex = ctx->ingress_ifindex, port, res;
	struct rt_port_stats *ps = NULL;
	struct rt_port *p;
	__u64 bytes = ctx->data_end - ctx->data;
	__u32 act;
	__be16 proto;

	if (!eth) {
		res = OUT(XDP_DROP, NF_REASON_TRUNCATED);
		goto out;
	}
	/* one 16-bit load (struct ethhdr is packed: eth->h_proto is read byte by byte) */
	proto = *(__be16 *)((void *)eth + 12);
	if (port_of_ifindex(ifindex, &port)) {
		res = OUT(XDP_PASS, WHY(RT_REASON_NOT_FOR_US));
		goto out;
	}
	p = bpf_map_lookup_elem(&rt_ports, &port);
	if (!p) {
		res = OUT(XDP_PASS, WHY(RT_REASON_NOT_FOR_US));
		goto out;
	}
	ps = port_stats(port);
	if (ps) {
		ps->rx_packets += 1;
		ps->rx_bytes += bytes;
	}

	if (proto == bpf_htons(ETH_P_ARP)) {
		if (cfg.flags & RT_F_LEARN)
			learn_arp(ctx, port, p);
		res = OUT(XDP_PASS, WHY(RT_REASON_NOT_FOR_US));
	} else {
		if (proto == bpf_htons(ETH_P_IPV6) && (cfg.flags & RT_F_LEARN)) {
			struct ipv6hdr *ip6 = xdp_ptr(ctx, sizeof(*eth), sizeof(*ip6));

			if (ip6)
				learn_na(ctx, port, p, ip6);
		}
		eth = xdp_ptr(ctx, 0, sizeof(*eth));
		if (!eth)
			res = OUT(XDP_DROP, NF_REASON_TRUNCATED);
		else if ((eth->h_dest[0] & 1) || !mac_eq(eth->h_dest, p->mac))
			res = OUT(XDP_PASS, WHY(RT_REASON_NOT_FOR_US));
		else if (proto == bpf_htons(ETH_P_IP))
			res = handle_v4(ctx, port, p, bytes);
		else if (proto == bpf_htons(ETH_P_IPV6))
			res = handle_v6(ctx, port, p, bytes);
		else
			res = OUT(XDP_PASS, WHY(RT_REASON_NOT_FOR_US));
	}
out:
	act = res & 0xff;
	if (ps && (act == XDP_DROP || act == XDP_ABORTED))
		ps->drops += 1;
	/* masked: the 6.12 verifier does not carry the stats.h bound check back to this register */
	return xdp_exit_why(ctx, &rt_stats, act, (res >> 8) & (NF_STATS_REASONS - 1));
}

/* ---- batch lookup (tests, benchmark) ------------------------------------------------------------ */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, RT_PROBES);
	__type(key, __u32);
	__type(value, struct rt_probe);
} rt_probes SEC(".maps");

struct probe_ctx {
	__u32 bank;
};

static long probe_one(__u32 i, void *data)
{
	struct probe_ctx *c = data;
	struct rt_probe *p = bpf_map_lookup_elem(&rt_probes, &i);

	if (!p)
		return 1;
	if (p->family == 4)
		p->result = lookup4(c->bank, bpf_ntohl(*(__u32 *)p->addr));
	else if (p->family == 6)
		p->result = lookup6(c->bank, p->addr);
	else
		p->result = 0; /* family 0: the loop alone, the benchmark's baseline */
	return 0;
}

SEC("xdp")
int xdp_lookup_batch(struct xdp_md *ctx)
{
	__u32 *n = xdp_ptr(ctx, 0, 4);
	struct probe_ctx c = { .bank = bank_now() };

	if (!n || *n > RT_PROBES)
		return XDP_ABORTED;
	bpf_loop(*n, probe_one, &c, 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
