/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Data-only request layout of the kmod test programs (mirrored by tests/kmod/common.py).
 * The test sends one struct kt_req as the "packet" through BPF_PROG_TEST_RUN; the program
 * runs `op` and writes the results into `out` / `ret`, which come back in data_out.
 */
#ifndef KMOD_TESTS_H
#define KMOD_TESTS_H

#include <linux/types.h>

enum kt_op {
	KT_XXH32 = 1,	/* out[0] = xxh32(key, len, seed) */
	KT_CRC32C = 2,	/* out[0] = crc32c(key, len, seed) */
	KT_MULTI = 3,	/* out[0..arg) = multi-hash of key with arg seeds; ret = kfunc result */
	KT_FIND16 = 4,	/* key = 16 u16 lanes (first `len` used); out[0] = find, out[1] = mask */
	KT_FIND32 = 5,	/* key = 8 u32 lanes (first `len` used) */
	KT_MIN = 6,	/* out[0] = index of the min of the first `len` u32 of key */
	KT_BITS = 7,	/* out[0..8) = ffs32 fls32 popcnt32 ctz32 ffs64 fls64 popcnt64 ctz64 of x */
	KT_KEYEQ = 8,	/* ret = key_eq(key[0..len), key[32..32+arg)) */
	KT_CM = 9,	/* ret = cm_add(key, len, table map, inc = arg); seed & 1: atomic */
	KT_LONG = 10,	/* long input from the kt_long map: arg 0 xxh32, 1 crc32c (len <= 2048),
			 * 2 multi-hash with d = 16 into out (len <= 256) */
};

#define KT_LONG_MAX 2048

#define KT_ABSENT 0xab5e	/* ret when the kfunc is missing (bpf_ksym_exists() false) */

struct kt_req {
	__u32 op;
	__u32 len;
	__u32 seed;
	__u32 arg;
	__u64 x;
	__s64 ret;
	__u8 key[64];		/* offset 32: 8-byte aligned */
	__u32 out[16];
};

/* Count-min table of the KT_CM test: header + up to 16 x 64 counters. */
#define KT_CM_MAX 1024
struct kt_cm_table {
	__u32 d;
	__u32 w;
	__u32 seed;
	__u32 flags;
	__u32 cnt[KT_CM_MAX];
};

/*
 * Object tests (objects.bpf.c): list buckets, random pools, memory wrapper.  Owning references
 * live in the kt_objs map (one kptr of each kind per index); programs use handles.
 */
enum ko_op {
	KO_LB_NEW = 1,		/* a = slots, b = capacity, x = value_size, idx -> ret = handle */
	KO_LB_FREE,		/* drop the owning reference at idx; ret = 0 or -ENOENT */
	KO_LB_PUSH,		/* handle, a = slot, b = size, vals -> ret */
	KO_LB_POP,		/* handle, a = slot, b = size -> ret, vals */
	KO_LB_PEEK,
	KO_LB_LEN,		/* handle, a = slot -> ret */
	KO_LB_PUSH_SEQ,		/* handle, a = slot: push (cpu << 32 | per-CPU seq), 8-byte value */
	KO_RP_NEW,		/* x = p_fp, idx -> ret = handle */
	KO_RP_FREE,
	KO_RP_SKIP,		/* handle: hist[min(skip, KO_HIST - 1)]++ ; ret = skip */
	KO_RP_SAMPLE,		/* handle: hist[sampled]++ */
	KO_RP_U32,		/* handle: ret = u32 */
	KO_MW_NEW,		/* a = max_nodes, idx -> ret = handle */
	KO_MW_FREE,
	KO_MW_BUILD,		/* handle, a = n, b = edge slot: append n nodes (key = last + 1) to
				 * the chain that starts at the root's edge b */
	KO_MW_WALK,		/* handle, b = slot -> vals[0] = nodes, vals[1] = sum of keys,
				 * vals[2] = last key, vals[3] = last id */
	KO_MW_REMOVE,		/* handle, a = k, b = slot: remove the k-th node (1-based); ret = 1
				 * if the predecessor's edge then reads NULL */
	KO_MW_COUNT,		/* handle -> ret */
	KO_BAD = 99,
};

#define KO_HIST 64
#define KO_IDX_MAX 16
#define KO_MW_WALK_MAX 1100

struct ko_req {
	__u32 op;
	__u32 handle;
	__u32 a;
	__u32 b;
	__u32 idx;
	__u32 pad;
	__u64 x;
	__s64 ret;
	__u64 vals[8];
};

/* Skip-list key-value store (skiplist.bpf.c), same request struct: x = key, vals[0] = value. */
enum sl_op {
	SL_NEW = 1,	/* a = max nodes -> ret = container handle (owned by the program's map) */
	SL_FREE,	/* drop the container: frees every node */
	SL_INSERT,	/* handle, x, vals[0] -> ret 1 inserted, 0 updated, < 0 error */
	SL_LOOKUP,	/* handle, x -> ret 1 + vals[0] = value, or 0 */
	SL_DELETE,	/* handle, x -> ret 1 deleted, 0 absent */
	SL_COUNT,	/* handle -> ret = nodes */
};
#define SL_LEVELS 10
#define SL_MAX_STEPS 400

#endif /* KMOD_TESTS_H */
