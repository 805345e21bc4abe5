/* SPDX-License-Identifier: GPL-2.0 */
/* Shared by the module's translation units; not part of the BPF-facing API. */
#ifndef ENETSTL_INTERNAL_H
#define ENETSTL_INTERNAL_H

#include <linux/types.h>
#include <linux/percpu.h>
#include <linux/atomic.h>
#include <linux/refcount.h>
#include <linux/rcupdate.h>
#include <linux/btf.h>
#include <linux/btf_ids.h>
#include "include/enetstl.h"

extern bool enetstl_force_scalar;	/* module param, writable at run time */
extern bool enetstl_has_avx2;		/* detected at init */
extern bool enetstl_has_sse42;

/* Per-CPU call counters: which code path ran.  Summed by the sysfs readers. */
enum enetstl_ctr {
	CTR_HASH_SIMD,		/* multi-hash / count-min calls that used AVX2 */
	CTR_HASH_SCALAR,	/* ... that used the scalar path */
	CTR_CRC_HW,		/* crc32c calls using the SSE4.2 instruction */
	CTR_CRC_SW,		/* ... using the table */
	CTR_FPU_BUSY,		/* SIMD wanted but irq_fpu_usable() said no */
	CTR_CUCKOO,		/* enetstl_cuckoo_cand calls (its hash and compares are inside) */
	CTR_BT,			/* enetstl_bt_find calls */
	CTR_NR,
};
DECLARE_PER_CPU(u64, enetstl_ctrs[CTR_NR]);
static inline void enetstl_count(enum enetstl_ctr c)
{
	this_cpu_inc(enetstl_ctrs[c]);
}

/* Live objects (allocations not yet freed). */
extern atomic_long_t enetstl_live_lb, enetstl_live_rp, enetstl_live_mw, enetstl_live_mw_nodes;

/*
 * `return fn(p, len, ...)` with len a constant for the usual flow-key lengths, so that an
 * __always_inline fn is specialised per length (key words in registers, no loop control);
 * other lengths take the generic instance.  One list for the scalar and the AVX2 count-min.
 */
#define ENETSTL_RETURN_BY_KEY_LEN(fn, p, len, ...)		\
	switch (len) {						\
	case 4: return fn(p, 4, __VA_ARGS__);			\
	case 8: return fn(p, 8, __VA_ARGS__);			\
	case 13: return fn(p, 13, __VA_ARGS__);			\
	case 16: return fn(p, 16, __VA_ARGS__);			\
	case 32: return fn(p, 32, __VA_ARGS__);			\
	case 37: return fn(p, 37, __VA_ARGS__);			\
	case 40: return fn(p, 40, __VA_ARGS__);			\
	default: return fn(p, len, __VA_ARGS__);		\
	}

/* hash.c <-> hash_simd.c (hash_simd.c is the only unit compiled with -mavx2; callers bracket) */
void enetstl_xxh32x8_avx2(const u8 *key, u32 len, u32 seed, u32 first, u32 *out);
u32 enetstl_xxh32_scalar(const u8 *p, u32 len, u32 seed);
/* count-min, w a power of two, d in 1..16, si = seed | inc << 32, inside the caller's FPU
 * bracket; returns the min */
u32 enetstl_cm_avx2(const u8 *key, u32 len, u32 *cnt, u32 d, u32 w, u64 si);
u32 enetstl_cm_avx2_atomic(const u8 *key, u32 len, u32 *cnt, u32 d, u32 w, u64 si);

void enetstl_hash_init(void);

/*
 * Shared-object header of list buckets, random pools and memory-wrapper containers.
 * Each object has a refcount and an integer handle in one xarray; enetstl_obj_get() resolves a
 * handle under RCU and takes a reference only if the object is still alive, so programs on any
 * CPU can use an object another program created (the map kptr holds the owning reference).
 */
enum enetstl_obj_type { ENETSTL_OBJ_LB = 1, ENETSTL_OBJ_RP, ENETSTL_OBJ_MW };

struct enetstl_obj {
	refcount_t ref;
	u32 handle;
	u8 type;
	struct rcu_head rcu;
	void (*release)(struct enetstl_obj *o);	/* ref hit 0, handle gone; may sleep: no */
	void (*free)(struct enetstl_obj *o);	/* after an RCU grace period */
};

int enetstl_obj_init(struct enetstl_obj *o, u8 type, void (*release)(struct enetstl_obj *),
		     void (*free)(struct enetstl_obj *));
struct enetstl_obj *enetstl_obj_get(u32 handle, u8 type);
void enetstl_obj_put(struct enetstl_obj *o);

/* Per-family registration, called from main.c. */
int enetstl_mw_init(void);
void enetstl_mw_exit(void);

/* Destructors of the kptr types (registered together: the kernel takes one call per module). */
void enetstl_lb_release_dtor(void *lb);
void enetstl_rp_release_dtor(void *rp);
void enetstl_mw_release_dtor(void *c);
/* The kfunc id set and the dtor list are defined in main.c. */
#endif
