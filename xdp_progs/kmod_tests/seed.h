/* SPDX-License-Identifier: GPL-2.0 */
/* Data-only layout shared by the seed-check programs and nf/kmod.py (seedcheck). */
#ifndef KMOD_SEED_H
#define KMOD_SEED_H

#include <linux/types.h>

/* The flow key both checks hash: 16 bytes, 8-byte aligned. */
struct seed_flow {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

#define SEED_CM_D 8
#define SEED_CM_W 1024
#define SEED_CM_SEED 0x5eed

struct seed_cm_table {
	__u32 d, w, seed, flags;	/* struct enetstl_cm_hdr */
	__u32 cnt[SEED_CM_D * SEED_CM_W];
};

/* Result record of either check (one array element); zero = not run. */
struct seed_result {
	__u32 stage;		/* last stage reached, SEED_ST_* */
	__u32 hashes_equal;	/* module hash(es) == pure-eBPF scalar hash(es) */
	__s64 est;		/* count-min estimate / cuckoo slot found */
	__u32 mismatch_row;	/* first differing row (count-min), or 0xffffffff */
	__u32 pad;
};

enum seed_stage {
	SEED_ST_PARSED = 1,
	SEED_ST_NO_MODULE,
	SEED_ST_HASHED,
	SEED_ST_UPDATED,
	SEED_ST_DONE,
};

#define SEED_CK_BUCKETS 256
#define SEED_CK_SLOTS 4096
struct seed_ck_bucket {
	__u16 sig[16];	/* 0 = free lane */
	__u32 slot[16];	/* index into the key array */
};

#endif /* KMOD_SEED_H */
