/* SPDX-License-Identifier: GPL-2.0 */
/*
 * enetstl: kfuncs and kptr types exported by kmod/enetstl.ko.
 *
 * One header for both sides.  Built into the module (__KERNEL__) it declares the kfunc
 * prototypes; included by BPF C (__bpf__) it declares every kfunc `extern __weak __ksym`,
 * so a program loads without the module and tests bpf_ksym_exists(enetstl_xxx) at run time.
 * Data-only: constants and the structs both sides must agree on, no logic.
 * The table of kfuncs, their flags and errors is in kmod/README.md.
 */
#ifndef ENETSTL_H
#define ENETSTL_H

#if defined(__bpf__) || defined(__BPF__)
#include <linux/types.h>
#elif defined(__KERNEL__)
#include <linux/types.h>
#else
#include <linux/types.h>	/* user space (ctypes mirrors) */
#endif

/* ---- limits (also checked inside every kfunc) ---- */
#define ENETSTL_MAX_KEY		256	/* key bytes of a multi-hash / count-min call */
#define ENETSTL_MAX_DATA	65535	/* bytes of one enetstl_crc32c / enetstl_xxh32 call */
#define ENETSTL_MAX_D		16	/* seeds / rows of a multi-hash */
#define ENETSTL_SIMD_MIN_D	3	/* enetstl_hash_multi: AVX2 from this many rows (keys <= 64 B) */
#define ENETSTL_CM_SIMD_MIN_D	6	/* enetstl_cm_add*: AVX2 from this many rows (keys <= 64 B) */
#define ENETSTL_SEED_STEP	0x9E3779B1u	/* seed_i = seed + i * STEP (mod 2^32) */
#define ENETSTL_LB_MAX_SLOTS	65536
#define ENETSTL_LB_MAX_CAP	4096	/* values per slot */
#define ENETSTL_LB_MAX_VALUE	64	/* bytes per value */
#define ENETSTL_LB_MAX_BYTES	(4u << 20)	/* slots * cap * value_size */
#define ENETSTL_RP_ONE		(1ull << 32)	/* probability 1.0 in fixed point */
#define ENETSTL_RP_POOL		64	/* pre-drawn values per CPU and kind */
#define ENETSTL_MW_DATA		64	/* bytes of data per node */
#define ENETSTL_MW_EDGES	16	/* outgoing edge slots per node */
#define ENETSTL_MW_MAX_NODES	(1u << 20)

/*
 * Count-min table passed to enetstl_cm_add[_atomic]: a header then d rows of w u32 counters,
 * row-major (counter[i][j] at cnt[i * w + j]).  Lives in a map value the caller owns; the
 * kfunc checks sizeof(hdr) + d * w * 4 <= table__sz before touching a counter.
 */
struct enetstl_cm_hdr {
	__u32 d;	/* rows (hash seeds), 1..ENETSTL_MAX_D */
	__u32 w;	/* counters per row, >= 1 */
	__u32 seed;	/* base seed; row i hashes with seed + i * ENETSTL_SEED_STEP */
	__u32 flags;	/* must be 0 */
};

/*
 * Cuckoo table of enetstl_cuckoo_cand (DPDK rte_hash style): a BPF_MAP_TYPE_ARRAY of buckets,
 * n_buckets = max_entries a power of two >= 2, each bucket 16 (u16 signature, u32 key index)
 * slots, signature 0 = empty (the key store is the caller's).  Placement of a key with hash h:
 *   sig = h >> 16, or 1 if that is 0;   b1 = h & (n_buckets - 1);
 *   b2 = b1 ^ ((mix(sig) & (n_buckets - 1)) | 1),  mix(s) = x ^ x >> 16 with x = s * SIG_MIX
 * The hash is keyed (struct enetstl_ck_hash, the table's secret): the key is read as
 * little-endian u64 words w[i] (length a multiple of 8, at most ENETSTL_CK_WORDS words) and
 *   MUL64:  a = sum w[i] * k[i] (mod 2^64); a ^= a >> 32; a *= ENETSTL_MUL64_FIN;
 *           a ^= a >> 32; h = low 32 bits of a
 *   CRC32C: h = CRC-32C (initial value 0, as enetstl_crc32c with seed 0) of the words
 *           w[i] * k[i] (mod 2^64), little-endian
 * with k[i] odd and secret: which keys share a bucket pair depends on the whole key and on k,
 * so keys cannot be aimed at a bucket pair without k (a fixed multiplier would let anyone
 * build any number of keys with one hash; CRC-32C alone is linear, so collisions it has under
 * one seed it has under every seed).
 * Result: bits 0..29 the key index in the first slot whose signature matches (primary bucket
 * first, the alternate read only when the primary has no match; 0 = no slot matches: the key
 * is absent), bit 30 ENETSTL_CK_MORE (a key mismatch there is not yet a miss: the candidate is
 * in the primary bucket, or other slots of the alternate match too), bit 31 ENETSTL_CK_ERR (bad
 * argument), bits 32..63 the hash h (a miss still yields the placement for an insert).
 */
#define ENETSTL_CK_SLOTS	16
#define ENETSTL_CK_SIG_MIX	0x9E3779B1u
#define ENETSTL_CK_WORDS	5	/* u64 words of the longest key (40 bytes) */
#define ENETSTL_CK_HASH_CRC32C	0	/* CRC-32C of the keyed words (SSE4.2 in the module) */
#define ENETSTL_CK_HASH_MUL64	1	/* sum of the keyed words, folded (see above) */
#define ENETSTL_MUL64_FIN	0x9E3779B97F4A7C15ull
#define ENETSTL_CK_IDX		((1u << 30) - 1)
#define ENETSTL_CK_MORE		(1u << 30)
#define ENETSTL_CK_ERR		(1u << 31)

/* The keyed hash of a cuckoo table: which function, and its secret odd multipliers. */
struct enetstl_ck_hash {
	__u32 kind;	/* ENETSTL_CK_HASH_* */
	__u32 pad;
	__u64 k[ENETSTL_CK_WORDS];
};

struct enetstl_ck_bucket {
	__u16 sig[ENETSTL_CK_SLOTS];
	__u32 idx[ENETSTL_CK_SLOTS];
};

/*
 * Bucket table of enetstl_bt_find (the L2 switch's eNetSTL FDB): a BPF_MAP_TYPE_ARRAY of
 * buckets, n_buckets = max_entries a power of two, each bucket a seqcount, 16 u16 signatures
 * (0 = free way) and 16 entries of 32 bytes: the key (a u64), the value a lookup copies
 * (ENETSTL_BT_VAL bytes) and 8 bytes only the writers use.
 * Placement of key k under the table's seed s: h = fmix64(k ^ s) (murmur3's finaliser:
 *   h ^= h >> 33; h *= MIX1; h ^= h >> 33; h *= MIX2; h ^= h >> 33),
 *   bucket = h & (n_buckets - 1), signature = h >> 48, or 1 if that is 0.
 * Writers (BPF programs) take a bucket with cmpxchg(seq, even, even + 1) and release it with an
 * atomic add; a reader reads seq (odd: a writer is in, try again), finds and copies, and
 * re-reads seq (changed: try again), three tries at most.
 */
#define ENETSTL_BT_WAYS		16
#define ENETSTL_BT_MIX1		0xff51afd7ed558ccdull
#define ENETSTL_BT_MIX2		0xc4ceb9fe1a85ec53ull
#define ENETSTL_BT_TRIES	3
#define ENETSTL_BT_VAL		16

struct enetstl_bt_val {
	__u64 w[ENETSTL_BT_VAL / 8];
};

struct enetstl_bt_entry {
	__u64 key;
	struct enetstl_bt_val val;
	__u64 priv;
};

struct enetstl_bt_bucket {
	__u32 seq;
	__u32 pad;
	__u16 sig[ENETSTL_BT_WAYS];
	struct enetstl_bt_entry e[ENETSTL_BT_WAYS];
};

/*
 * Memory-wrapper node: BPF reads `data` directly (constant offsets) through the pointer
 * the acquire kfuncs return and writes it with enetstl_mw_node_write().  The kernel-private
 * part of the node follows `id` and is not visible here.
 */
#ifndef __KERNEL__	/* the module's definition (memwrap.c) extends this prefix */
struct enetstl_mw_node {
	__u8 data[ENETSTL_MW_DATA] __attribute__((aligned(8)));	/* u64 loads, not 2 x u32 */
	__u32 id;	/* unique per container, 0 = the container's root node */
};
#endif

#if defined(__bpf__) || defined(__BPF__)
/* Opaque to BPF; the kptr field types `struct enetstl_lb __kptr *` need the names. */
struct enetstl_lb { int __opaque; };
struct enetstl_rp { int __opaque; };
struct enetstl_mw { int __opaque; };

#ifndef __ksym
#define __ksym __attribute__((section(".ksyms")))
#endif
#ifndef __weak
#define __weak __attribute__((weak))
#endif
#define ENETSTL_DECL(ret, name, ...) extern ret name(__VA_ARGS__) __weak __ksym
#else
struct enetstl_lb;
struct enetstl_rp;
struct enetstl_mw;
#define ENETSTL_DECL(ret, name, ...) ret name(__VA_ARGS__)
#endif

/* hash.c */
ENETSTL_DECL(__u32, enetstl_crc32c, const void *data, __u32 data__sz, __u32 seed);
ENETSTL_DECL(__u32, enetstl_xxh32, const void *data, __u32 data__sz, __u32 seed);
ENETSTL_DECL(int, enetstl_hash_multi, const void *key, __u32 key__sz, __u32 *out, __u32 out__sz,
	     __u32 seed);
ENETSTL_DECL(__s64, enetstl_cm_add, const void *key, __u32 key__sz, void *table, __u32 table__sz,
	     __u32 inc);
ENETSTL_DECL(__s64, enetstl_cm_add_atomic, const void *key, __u32 key__sz, void *table,
	     __u32 table__sz, __u32 inc);

/* compare.c */
ENETSTL_DECL(int, enetstl_find_u16, const __u16 *arr, __u32 arr__sz, __u32 v);
ENETSTL_DECL(__u32, enetstl_match_u16, const __u16 *arr, __u32 arr__sz, __u32 v);
ENETSTL_DECL(__u32, enetstl_match2_u16, const __u16 *a, __u32 a__sz, const __u16 *b,
	     __u32 b__sz, __u32 sigs);
ENETSTL_DECL(int, enetstl_find_u32, const __u32 *arr, __u32 arr__sz, __u32 v);
ENETSTL_DECL(__u32, enetstl_match_u32, const __u32 *arr, __u32 arr__sz, __u32 v);
ENETSTL_DECL(int, enetstl_key_eq, const void *a, __u32 a__sz, const void *b, __u32 b__sz);
ENETSTL_DECL(__u64, enetstl_cuckoo_cand, void *buckets__map, const void *key, __u32 key__sz,
	     const void *hash, __u32 hash__sz);
ENETSTL_DECL(int, enetstl_bt_find, void *buckets__map, __u64 key, __u64 seed,
	     struct enetstl_bt_val *val);
ENETSTL_DECL(int, enetstl_min_idx_u32, const __u32 *vals, __u32 vals__sz);

/* bits.c */
ENETSTL_DECL(__u32, enetstl_ffs32, __u32 x);
ENETSTL_DECL(__u32, enetstl_fls32, __u32 x);
ENETSTL_DECL(__u32, enetstl_popcnt32, __u32 x);
ENETSTL_DECL(__u32, enetstl_ctz32, __u32 x);
ENETSTL_DECL(__u32, enetstl_ffs64, __u64 x);
ENETSTL_DECL(__u32, enetstl_fls64, __u64 x);
ENETSTL_DECL(__u32, enetstl_popcnt64, __u64 x);
ENETSTL_DECL(__u32, enetstl_ctz64, __u64 x);

/* listbucket.c */
ENETSTL_DECL(struct enetstl_lb *, enetstl_lb_new, __u32 slots, __u32 capacity, __u32 value_size);
ENETSTL_DECL(struct enetstl_lb *, enetstl_lb_get, __u32 handle);
ENETSTL_DECL(void, enetstl_lb_release, struct enetstl_lb *lb);
ENETSTL_DECL(__u32, enetstl_lb_handle, struct enetstl_lb *lb);
ENETSTL_DECL(int, enetstl_lb_push, struct enetstl_lb *lb, __u32 slot, const void *val,
	     __u32 val__sz);
ENETSTL_DECL(int, enetstl_lb_pop, struct enetstl_lb *lb, __u32 slot, void *out, __u32 out__sz);
ENETSTL_DECL(int, enetstl_lb_peek, struct enetstl_lb *lb, __u32 slot, void *out, __u32 out__sz);
ENETSTL_DECL(int, enetstl_lb_len, struct enetstl_lb *lb, __u32 slot);

/* randpool.c */
ENETSTL_DECL(struct enetstl_rp *, enetstl_rp_new, __u64 p_fp);
ENETSTL_DECL(struct enetstl_rp *, enetstl_rp_get, __u32 handle);
ENETSTL_DECL(void, enetstl_rp_release, struct enetstl_rp *rp);
ENETSTL_DECL(__u32, enetstl_rp_handle, struct enetstl_rp *rp);
ENETSTL_DECL(__u32, enetstl_rp_skip, struct enetstl_rp *rp);
ENETSTL_DECL(__u32, enetstl_rp_u32, struct enetstl_rp *rp);
ENETSTL_DECL(int, enetstl_rp_sample, struct enetstl_rp *rp);

/* memwrap.c */
ENETSTL_DECL(struct enetstl_mw *, enetstl_mw_new, __u32 max_nodes);
ENETSTL_DECL(struct enetstl_mw *, enetstl_mw_get, __u32 handle);
ENETSTL_DECL(void, enetstl_mw_release, struct enetstl_mw *c);
ENETSTL_DECL(__u32, enetstl_mw_handle, struct enetstl_mw *c);
ENETSTL_DECL(__u32, enetstl_mw_count, struct enetstl_mw *c);
ENETSTL_DECL(struct enetstl_mw_node *, enetstl_mw_root, struct enetstl_mw *c);
ENETSTL_DECL(struct enetstl_mw_node *, enetstl_mw_node_new, struct enetstl_mw *c);
ENETSTL_DECL(void, enetstl_mw_node_release, struct enetstl_mw_node *n);
ENETSTL_DECL(int, enetstl_mw_node_write, struct enetstl_mw_node *n, __u32 off, const void *src,
	     __u32 src__sz);
ENETSTL_DECL(int, enetstl_mw_node_remove, struct enetstl_mw *c, struct enetstl_mw_node *n);
ENETSTL_DECL(int, enetstl_mw_edge_set, struct enetstl_mw *c, struct enetstl_mw_node *from,
	     __u32 slot, struct enetstl_mw_node *to);
ENETSTL_DECL(int, enetstl_mw_edge_clear, struct enetstl_mw *c, struct enetstl_mw_node *from,
	     __u32 slot);
ENETSTL_DECL(struct enetstl_mw_node *, enetstl_mw_edge_get, struct enetstl_mw *c,
	     struct enetstl_mw_node *from, __u32 slot);

#undef ENETSTL_DECL
#endif /* ENETSTL_H */
