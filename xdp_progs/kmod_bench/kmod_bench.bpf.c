// SPDX-License-Identifier: GPL-2.0
/*
 * Kfunc microbenchmark: one XDP program per measured call, each making exactly that call on
 * fixed inputs in global data and storing the result to `sink` (so it is not dead code).
 * `b_nop` does the same store without a call: per-call cost = program - b_nop, counted in the
 * guest by nf/vm/insncount.py (tests/kmod/test_kfunc_bench.py).  Object kfuncs work on objects
 * made once by `b_setup` (owning references kept in bench_objs); `*_get_release` programs give
 * the get + release pair that the `*_op` programs subtract.
 */
#include "common.h"
#include "enetstl.h"

#define W 64	/* count-min width: the instruction path does not depend on it */

__u8 key[64] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
		 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40 };
__u8 key2[64] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
		  21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40 };
/* signature 7 at slot 11 only: a lookup's typical one hit */
__u16 sig[16] = { 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 7, 13, 14, 15, 16 };
__u32 v32[16] = { 9, 8, 7, 6, 5, 4, 3, 2, 1, 10, 11, 12, 13, 14, 15, 16 };
__u32 hout[16];
__u32 lbval[4];
__u64 sink;
__u32 h_lb, h_rp, h_mw;

#define CMT(D) struct { struct enetstl_cm_hdr hdr; __u32 cnt[(D) * W]; }
CMT(1) cm1 = { .hdr = { 1, W, 7, 0 } };
CMT(2) cm2 = { .hdr = { 2, W, 7, 0 } };
CMT(4) cm4 = { .hdr = { 4, W, 7, 0 } };
CMT(8) cm8 = { .hdr = { 8, W, 7, 0 } };
CMT(16) cm16 = { .hdr = { 16, W, 7, 0 } };

struct bench_obj {
	struct enetstl_lb __kptr *lb;
	struct enetstl_rp __kptr *rp;
	struct enetstl_mw __kptr *mw;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_obj);
} bench_objs SEC(".maps");

SEC("xdp")
int b_setup(struct xdp_md *ctx)
{
	struct bench_obj *o;
	struct enetstl_lb *lb;
	struct enetstl_rp *rp;
	struct enetstl_mw *mw;
	__u32 z = 0;

	o = bpf_map_lookup_elem(&bench_objs, &z);
	if (!o)
		return XDP_ABORTED;
	lb = enetstl_lb_new(4, 64, sizeof(lbval));
	if (!lb)
		return XDP_ABORTED;
	h_lb = enetstl_lb_handle(lb);
	lb = bpf_kptr_xchg(&o->lb, lb);
	if (lb)
		enetstl_lb_release(lb);
	rp = enetstl_rp_new(1ull << 28);	/* p = 1/16 in 32.32 fixed point */
	if (!rp)
		return XDP_ABORTED;
	h_rp = enetstl_rp_handle(rp);
	rp = bpf_kptr_xchg(&o->rp, rp);
	if (rp)
		enetstl_rp_release(rp);
	mw = enetstl_mw_new(16);
	if (!mw)
		return XDP_ABORTED;
	h_mw = enetstl_mw_handle(mw);
	mw = bpf_kptr_xchg(&o->mw, mw);
	if (mw)
		enetstl_mw_release(mw);
	return XDP_PASS;
}

SEC("xdp")
int b_nop(struct xdp_md *ctx)
{
	sink = 0;
	return XDP_PASS;
}

#define BENCH(name, expr)				\
	SEC("xdp") int b_##name(struct xdp_md *ctx)	\
	{						\
		sink = (expr);				\
		return XDP_PASS;			\
	}

/* hash */
BENCH(crc32c_13, enetstl_crc32c(key, 13, 1))
BENCH(crc32c_16, enetstl_crc32c(key, 16, 1))
BENCH(crc32c_40, enetstl_crc32c(key, 40, 1))
BENCH(xxh32_16, enetstl_xxh32(key, 16, 1))
BENCH(xxh32_40, enetstl_xxh32(key, 40, 1))
BENCH(hash_multi_16_d1, enetstl_hash_multi(key, 16, hout, 4, 1))
BENCH(hash_multi_16_d2, enetstl_hash_multi(key, 16, hout, 8, 1))
BENCH(hash_multi_16_d4, enetstl_hash_multi(key, 16, hout, 16, 1))
BENCH(hash_multi_16_d8, enetstl_hash_multi(key, 16, hout, 32, 1))
BENCH(hash_multi_16_d16, enetstl_hash_multi(key, 16, hout, 64, 1))
BENCH(cm_add_16_d1, enetstl_cm_add(key, 16, &cm1, sizeof(cm1), 1))
BENCH(cm_add_16_d2, enetstl_cm_add(key, 16, &cm2, sizeof(cm2), 1))
BENCH(cm_add_16_d4, enetstl_cm_add(key, 16, &cm4, sizeof(cm4), 1))
BENCH(cm_add_16_d8, enetstl_cm_add(key, 16, &cm8, sizeof(cm8), 1))
BENCH(cm_add_16_d16, enetstl_cm_add(key, 16, &cm16, sizeof(cm16), 1))
BENCH(cm_add_40_d8, enetstl_cm_add(key, 40, &cm8, sizeof(cm8), 1))
BENCH(cm_add_atomic_16_d8, enetstl_cm_add_atomic(key, 16, &cm8, sizeof(cm8), 1))

/* compare */
BENCH(find_u16_16, enetstl_find_u16(sig, 32, 7))
BENCH(match_u16_16, enetstl_match_u16(sig, 32, 7))
BENCH(match_u16_8, enetstl_match_u16(sig, 16, 7))
BENCH(find_u32_8, enetstl_find_u32(v32, 32, 3))
BENCH(match_u32_8, enetstl_match_u32(v32, 32, 3))
BENCH(key_eq_16, enetstl_key_eq(key, 16, key2, 16))
BENCH(key_eq_40, enetstl_key_eq(key, 40, key2, 40))
BENCH(key_eq_13, enetstl_key_eq(key, 13, key2, 13))
BENCH(min_idx_u32_8, enetstl_min_idx_u32(v32, 32))
BENCH(min_idx_u32_16, enetstl_min_idx_u32(v32, 64))

/* bits */
BENCH(ffs32, enetstl_ffs32((__u32)sink | 0x100))
BENCH(fls32, enetstl_fls32((__u32)sink | 0x100))
BENCH(popcnt32, enetstl_popcnt32((__u32)sink | 0x100))
BENCH(ctz32, enetstl_ctz32((__u32)sink | 0x100))
BENCH(ffs64, enetstl_ffs64(sink | 0x100))
BENCH(fls64, enetstl_fls64(sink | 0x100))
BENCH(popcnt64, enetstl_popcnt64(sink | 0x100))
BENCH(ctz64, enetstl_ctz64(sink | 0x100))

/* objects: get + release, then get + one op + release */
SEC("xdp") int b_lb_get_release(struct xdp_md *ctx)
{
	struct enetstl_lb *lb = enetstl_lb_get(h_lb);

	if (!lb)
		return XDP_ABORTED;
	enetstl_lb_release(lb);
	sink = 0;
	return XDP_PASS;
}

SEC("xdp") int b_lb_push_pop(struct xdp_md *ctx)
{
	struct enetstl_lb *lb = enetstl_lb_get(h_lb);
	int r;

	if (!lb)
		return XDP_ABORTED;
	r = enetstl_lb_push(lb, 1, lbval, sizeof(lbval));
	r += enetstl_lb_pop(lb, 1, lbval, sizeof(lbval));
	enetstl_lb_release(lb);
	sink = r;
	return r ? XDP_ABORTED : XDP_PASS;
}

SEC("xdp") int b_lb_len(struct xdp_md *ctx)
{
	struct enetstl_lb *lb = enetstl_lb_get(h_lb);

	if (!lb)
		return XDP_ABORTED;
	sink = enetstl_lb_len(lb, 1);
	enetstl_lb_release(lb);
	return XDP_PASS;
}

SEC("xdp") int b_rp_get_release(struct xdp_md *ctx)
{
	struct enetstl_rp *rp = enetstl_rp_get(h_rp);

	if (!rp)
		return XDP_ABORTED;
	enetstl_rp_release(rp);
	sink = 0;
	return XDP_PASS;
}

#define RP_OP(op)						\
	SEC("xdp") int b_rp_##op(struct xdp_md *ctx)		\
	{							\
		struct enetstl_rp *rp = enetstl_rp_get(h_rp);	\
								\
		if (!rp)					\
			return XDP_ABORTED;			\
		sink = enetstl_rp_##op(rp);			\
		enetstl_rp_release(rp);				\
		return XDP_PASS;				\
	}
RP_OP(skip)
RP_OP(u32)
RP_OP(sample)

SEC("xdp") int b_mw_get_release(struct xdp_md *ctx)
{
	struct enetstl_mw *mw = enetstl_mw_get(h_mw);

	if (!mw)
		return XDP_ABORTED;
	enetstl_mw_release(mw);
	sink = 0;
	return XDP_PASS;
}

SEC("xdp") int b_mw_count(struct xdp_md *ctx)
{
	struct enetstl_mw *mw = enetstl_mw_get(h_mw);

	if (!mw)
		return XDP_ABORTED;
	sink = enetstl_mw_count(mw);
	enetstl_mw_release(mw);
	return XDP_PASS;
}

SEC("xdp") int b_mw_root(struct xdp_md *ctx)
{
	struct enetstl_mw *mw = enetstl_mw_get(h_mw);
	struct enetstl_mw_node *n;

	if (!mw)
		return XDP_ABORTED;
	n = enetstl_mw_root(mw);
	if (n) {
		sink = 1;
		enetstl_mw_node_release(n);
	}
	enetstl_mw_release(mw);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
