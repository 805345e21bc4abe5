// SPDX-License-Identifier: GPL-2.0
/*
 * Random pools: per-CPU pools of pre-drawn geometric skip counts for a probability p fixed at
 * creation, and of uniform u32.
 *
 * p is fixed point: p_fp / 2^32, p_fp in [1, 2^32] (2^32 = 1.0); kfunc arguments cannot be
 * floating point.  A skip count K is the number of packets NOT sampled before the next sampled
 * one: P(K = k) = (1 - p)^k p.  It is drawn by inversion, K = floor(log2(U) / log2(1 - p)) with
 * U uniform in (0, 1], entirely in integer fixed point, a pool of ENETSTL_RP_POOL at a time per
 * CPU, so the per-packet path is an index and a load.
 *
 * Cost of a draw (what the pool refill pays per value): U comes from a per-CPU LFSR113 state
 * (prandom_u32_state, the generator behind bpf_get_prandom_u32, seeded by prandom_seed_full_state
 * when the pool is made), and log2(U) from the bit length plus a 1025-entry Q32 table of
 * log2(1 + i/1024) with linear interpolation (error < 2e-7 in log2 units), then one division.
 * The first version drew U with get_random_u32 (~190 instructions a call: ChaCha batches) and
 * computed log2 by 32 squarings (~350): ~575 guest instructions per skip, the pool amortising
 * nothing since every value is drawn once.  The squaring log2 now only fills the table (once)
 * and computes -log2(1 - p) at pool creation.
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
#include <linux/prandom.h>
#include <linux/once.h>
#include <linux/math64.h>
#include <linux/bitops.h>
#include "internal.h"

struct rp_cpu {
	u32 skip[ENETSTL_RP_POOL];
	u32 uni[ENETSTL_RP_POOL];
	u32 si, ui;	/* next unused index; POOL = empty */
	u32 left;	/* packets still to skip before the next sample */
	u32 primed;	/* `left` holds a drawn value */
	struct rnd_state rnd;	/* this CPU's generator (LFSR113) */
};

struct enetstl_rp {
	struct enetstl_obj obj;
	u64 p_fp;
	u64 neglog_q;	/* -log2(1 - p) in Q32; 0 means p == 1 */
	struct rp_cpu __percpu *pc;
};

/* log2 of a Q1.31 mantissa x in [1, 2), Q32 fraction: 32 bits by squaring (one bit each). */
static u64 log2_frac_q32(u64 x)
{
	u64 frac = 0;
	int b;

	for (b = 31; b >= 0; b--) {
		x = (x * x) >> 31;
		if (x >= (2ull << 31)) {
			x >>= 1;
			frac |= 1ull << b;
		}
	}
	return frac;
}

/* -log2(m / 2^32) in Q32 for m in [1, 2^32], exactly (pool creation only). */
static u64 neglog2_q32(u64 m)
{
	u32 n = fls64(m) - 1;	/* m in [2^n, 2^(n+1)) */
	u64 x = n >= 31 ? m >> (n - 31) : m << (31 - n);	/* Q1.31 mantissa in [1, 2) */

	/* log2(m) = n + frac; -log2(m / 2^32) = 32 - n - frac */
	return ((u64)(32 - n) << 32) - log2_frac_q32(x);
}

#define LG_BITS 10
/* lg_tab[i] = log2(1 + i / 2^LG_BITS) in Q32, i = 0..2^LG_BITS (the last is 1.0 = 2^32). */
static u64 lg_tab[(1 << LG_BITS) + 1] __read_mostly;

static void lg_tab_init(void)
{
	u32 i;

	for (i = 0; i < (1u << LG_BITS); i++)
		lg_tab[i] = log2_frac_q32((u64)((1u << LG_BITS) + i) << (31 - LG_BITS));
	lg_tab[1u << LG_BITS] = 1ull << 32;
}

/* The per-draw -log2(m / 2^32), m in [1, 2^32]: bit length, table, linear interpolation. */
static __always_inline u64 neglog2_fast(u64 m)
{
	u32 n = fls64(m) - 1;
	u64 x = m << (63 - n);				/* Q1.63, top bit set */
	u32 i = (x >> (63 - LG_BITS)) & ((1u << LG_BITS) - 1);
	u64 rem = (x >> (31 - LG_BITS)) & 0xffffffffull;	/* next 32 bits: Q32 weight */
	u64 lo = lg_tab[i], frac = lo + (((lg_tab[i + 1] - lo) * rem) >> 32);

	return ((u64)(32 - n) << 32) - frac;
}

static u32 draw_skip(const struct enetstl_rp *rp, struct rp_cpu *c)
{
	u64 k;

	if (!rp->neglog_q)
		return 0;
	k = div64_u64(neglog2_fast((u64)prandom_u32_state(&c->rnd) + 1), rp->neglog_q);
	return k > U32_MAX ? U32_MAX : k;
}

static u32 next_skip(struct enetstl_rp *rp, struct rp_cpu *c)
{
	u32 i = READ_ONCE(c->si);

	if (i >= ENETSTL_RP_POOL) {
		for (i = 0; i < ENETSTL_RP_POOL; i++)
			c->skip[i] = draw_skip(rp, c);
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
	DO_ONCE(lg_tab_init);
	for_each_possible_cpu(cpu) {
		struct rp_cpu *c = per_cpu_ptr(rp->pc, cpu);

		c->si = c->ui = ENETSTL_RP_POOL;	/* drawn on first use, on that CPU */
	}
	/* every CPU's LFSR113: get_random_bytes, the generator's minimum seeds, warm-up */
	prandom_seed_full_state(&rp->pc->rnd);
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

/* Next uniform u32 from this CPU's pool (LFSR113, like bpf_get_prandom_u32: not for secrets). */
__bpf_kfunc u32 enetstl_rp_u32(struct enetstl_rp *rp)
{
	struct rp_cpu *c = this_cpu_ptr(rp->pc);
	u32 i = READ_ONCE(c->ui);

	if (i >= ENETSTL_RP_POOL) {
		for (i = 0; i < ENETSTL_RP_POOL; i++)
			c->uni[i] = prandom_u32_state(&c->rnd);
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
