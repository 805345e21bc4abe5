// SPDX-License-Identifier: GPL-2.0
/*
 * Random pools: per-CPU pools of pre-drawn geometric skip counts for a probability p fixed at
 * creation, and of uniform u32.
 *
 * p is fixed point: p_fp / 2^32, p_fp in [1, 2^32] (2^32 = 1.0); kfunc arguments cannot be
 * floating point.  A skip count K is the number of packets NOT sampled before the next sampled
 * one: P(K = k) = (1 - p)^k p.  It is drawn by inversion, K = floor(log2(U) / log2(1 - p)) with
 * U uniform in (0, 1], entirely in integer fixed point (Q32 log2 by repeated squaring), a pool
 * of ENETSTL_RP_POOL at a time per CPU, so the per-packet path is an index and a load.
 *
 * Per-CPU state, so no lock: a program on CPU n only touches CPU n's pool.  A softirq
 * interrupting test_run on the same CPU could interleave two draws; indices are re-checked
 * before every use, so that can only repeat a value, never read out of bounds.
 * Sharing between CPUs: same handle scheme as list buckets (enetstl_rp_get(handle)).
 */
#include <linux/kernel.h>
#include <linux/slab.h>
#include <linux/percpu.h>
#include <linux/random.h>
#include <linux/math64.h>
#include <linux/bitops.h>
#include "internal.h"

struct rp_cpu {
	u32 skip[ENETSTL_RP_POOL];
	u32 uni[ENETSTL_RP_POOL];
	u32 si, ui;	/* next unused index; POOL = empty */
	u32 left;	/* packets still to skip before the next sample */
	u32 primed;	/* `left` holds a drawn value */
};

struct enetstl_rp {
	struct enetstl_obj obj;
	u64 p_fp;
	u64 neglog_q;	/* -log2(1 - p) in Q32; 0 means p == 1 */
	struct rp_cpu __percpu *pc;
};

/* -log2(m / 2^32) in Q32 for m in [1, 2^32]: the integer part exactly, 32 fraction bits by
 * squaring the mantissa (each squaring yields one bit). */
static u64 neglog2_q32(u64 m)
{
	u32 n = fls64(m) - 1;	/* m in [2^n, 2^(n+1)) */
	u64 x = n >= 31 ? m >> (n - 31) : m << (31 - n);	/* Q1.31 mantissa in [1, 2) */
	u64 frac = 0;
	int b;

	for (b = 31; b >= 0; b--) {
		x = (x * x) >> 31;
		if (x >= (2ull << 31)) {
			x >>= 1;
			frac |= 1ull << b;
		}
	}
	/* log2(m) = n + frac; -log2(m / 2^32) = 32 - n - frac */
	return ((u64)(32 - n) << 32) - frac;
}

static u32 draw_skip(const struct enetstl_rp *rp)
{
	u64 k;

	if (!rp->neglog_q)
		return 0;
	k = div64_u64(neglog2_q32((u64)get_random_u32() + 1), rp->neglog_q);
	return k > U32_MAX ? U32_MAX : k;
}

static u32 next_skip(struct enetstl_rp *rp, struct rp_cpu *c)
{
	u32 i = READ_ONCE(c->si);

	if (i >= ENETSTL_RP_POOL) {
		for (i = 0; i < ENETSTL_RP_POOL; i++)
			c->skip[i] = draw_skip(rp);
		i = 0;
	}
	WRITE_ONCE(c->si, i + 1);
	return c->skip[i];
}

static void rp_free(struct enetstl_obj *o)
{
	struct enetstl_rp *rp = container_of(o, struct enetstl_rp, obj);

	free_percpu(rp->pc);
	kfree(rp);
	atomic_long_dec(&enetstl_live_rp);
}

__bpf_kfunc_start_defs();

/* New pool for probability p_fp / 2^32, p_fp in [1, 2^32]; NULL on a bad p or no memory. */
__bpf_kfunc struct enetstl_rp *enetstl_rp_new(u64 p_fp)
{
	struct enetstl_rp *rp;
	int cpu;

	if (!p_fp || p_fp > ENETSTL_RP_ONE)
		return NULL;
	rp = kzalloc(sizeof(*rp), GFP_ATOMIC | __GFP_NOWARN);
	if (!rp)
		return NULL;
	rp->pc = alloc_percpu_gfp(struct rp_cpu, GFP_ATOMIC | __GFP_NOWARN);
	if (!rp->pc) {
		kfree(rp);
		return NULL;
	}
	for_each_possible_cpu(cpu) {
		struct rp_cpu *c = per_cpu_ptr(rp->pc, cpu);

		c->si = c->ui = ENETSTL_RP_POOL;	/* drawn on first use, on that CPU */
	}
	rp->p_fp = p_fp;
	if (p_fp < ENETSTL_RP_ONE) {
		rp->neglog_q = neglog2_q32(ENETSTL_RP_ONE - p_fp);
		if (!rp->neglog_q)	/* p below the Q32 resolution of log2 */
			rp->neglog_q = 1;
	}
	if (enetstl_obj_init(&rp->obj, ENETSTL_OBJ_RP, NULL, rp_free)) {
		free_percpu(rp->pc);
		kfree(rp);
		return NULL;
	}
	atomic_long_inc(&enetstl_live_rp);
	return rp;
}

__bpf_kfunc struct enetstl_rp *enetstl_rp_get(u32 handle)
{
	struct enetstl_obj *o = enetstl_obj_get(handle, ENETSTL_OBJ_RP);

	return o ? container_of(o, struct enetstl_rp, obj) : NULL;
}

__bpf_kfunc void enetstl_rp_release(struct enetstl_rp *rp)
{
	enetstl_obj_put(&rp->obj);
}

__bpf_kfunc void enetstl_rp_release_dtor(void *rp)
{
	enetstl_rp_release(rp);
}

__bpf_kfunc u32 enetstl_rp_handle(struct enetstl_rp *rp)
{
	return rp->obj.handle;
}

/* Next geometric skip count from this CPU's pool. */
__bpf_kfunc u32 enetstl_rp_skip(struct enetstl_rp *rp)
{
	return next_skip(rp, this_cpu_ptr(rp->pc));
}

/* Next uniform u32 from this CPU's pool. */
__bpf_kfunc u32 enetstl_rp_u32(struct enetstl_rp *rp)
{
	struct rp_cpu *c = this_cpu_ptr(rp->pc);
	u32 i = READ_ONCE(c->ui);

	if (i >= ENETSTL_RP_POOL) {
		for (i = 0; i < ENETSTL_RP_POOL; i++)
			c->uni[i] = get_random_u32();
		i = 0;
	}
	WRITE_ONCE(c->ui, i + 1);
	return c->uni[i];
}

/* 1 if this packet is to be sampled (each packet independently with probability p), else 0. */
__bpf_kfunc int enetstl_rp_sample(struct enetstl_rp *rp)
{
	struct rp_cpu *c = this_cpu_ptr(rp->pc);

	if (unlikely(!c->primed)) {
		c->left = next_skip(rp, c);
		c->primed = 1;
	}
	if (c->left) {
		c->left--;
		return 0;
	}
	c->left = next_skip(rp, c);
	return 1;
}

__bpf_kfunc_end_defs();
