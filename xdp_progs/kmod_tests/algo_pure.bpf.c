// SPDX-License-Identifier: GPL-2.0
/*
 * Pure-eBPF algorithms of xdp_progs/include/algo/ driven by a struct kt_req packet, so the
 * tests compare them with nf.algo on the host kernel (tier 1, no module).  Hash lengths go
 * through a switch so each algo_* call sees a compile-time constant length, exactly as the
 * NFs call them.
 */
#include "common.h"
#include "algo/xxh32.h"
#include "algo/crc32c.h"
#include "algo/find.h"
#include "kmod_tests.h"

#define L8(m, b) m(b + 0) m(b + 1) m(b + 2) m(b + 3) m(b + 4) m(b + 5) m(b + 6) m(b + 7)
#define L64(m) L8(m, 0) L8(m, 8) L8(m, 16) L8(m, 24) L8(m, 32) L8(m, 40) L8(m, 48) L8(m, 56)

#define XXH_CASE(n) case n: h = algo_xxh32(r->key, n, r->seed); break;
#define CRC_CASE(n) case n: h = algo_crc32c(r->key, n, r->seed); break;

static __noinline __u32 do_xxh(struct kt_req *r)
{
	__u32 h = 0;

	if (!r)
		return 0;
	switch (r->len) {
	L64(XXH_CASE)
	XXH_CASE(64)
	}
	return h;
}

static __noinline __u32 do_crc(struct kt_req *r)
{
	__u32 h = 0;

	if (!r)
		return 0;
	switch (r->len) {
	L64(CRC_CASE)
	CRC_CASE(64)
	}
	return h;
}

/* One subprogram per d: each has its own stack frame (all rows share the key products). */
#define MULTI_FN(dd)								\
static __noinline int multi_##dd(struct kt_req *r)				\
{										\
	if (r)									\
		algo_xxh32_multi(r->key, 16, r->seed, dd, r->out);		\
	return 0;								\
}
MULTI_FN(1) MULTI_FN(2) MULTI_FN(3) MULTI_FN(4) MULTI_FN(5) MULTI_FN(6) MULTI_FN(7) MULTI_FN(8)
MULTI_FN(9) MULTI_FN(10) MULTI_FN(11) MULTI_FN(12) MULTI_FN(13) MULTI_FN(14) MULTI_FN(15)
MULTI_FN(16)

static __noinline int multi_13x8(struct kt_req *r)
{
	if (r)
		algo_xxh32_multi(r->key, 13, r->seed, 8, r->out);
	return 0;
}

static __noinline int multi_64x4(struct kt_req *r)
{
	if (r)
		algo_xxh32_multi(r->key, 64, r->seed, 4, r->out);
	return 0;
}

#define MULTI_CASE(dd) case dd: return multi_##dd(r);

static __noinline int multi_rows(struct kt_req *r)
{
	if (!r)
		return 0;
	switch (r->arg) {
	MULTI_CASE(1) MULTI_CASE(2) MULTI_CASE(3) MULTI_CASE(4) MULTI_CASE(5) MULTI_CASE(6)
	MULTI_CASE(7) MULTI_CASE(8) MULTI_CASE(9) MULTI_CASE(10) MULTI_CASE(11) MULTI_CASE(12)
	MULTI_CASE(13) MULTI_CASE(14) MULTI_CASE(15) MULTI_CASE(16)
	}
	return 0;
}

SEC("xdp")
int algo_pure(struct xdp_md *ctx)
{
	struct kt_req *r = xdp_data(ctx);
	int i;

	if ((void *)(r + 1) > xdp_data_end(ctx))
		return XDP_ABORTED;
	if (r->len > 64)
		return XDP_DROP;
	switch (r->op) {
	case KT_XXH32:
		r->out[0] = do_xxh(r);
		break;
	case KT_CRC32C:
		r->out[0] = do_crc(r);
		break;
	case KT_MULTI:
		/* 16-byte keys, the flow-key size the NFs hash; len = 1: row by row with
		 * algo_xxh32, otherwise all rows at once with algo_xxh32_multi */
		if (r->len == 1) {
			for (i = 0; i < 16; i++)
				if (i < r->arg)
					r->out[i] = algo_xxh32(r->key, 16, ALGO_ROW_SEED(r->seed, i));
		} else {
			multi_rows(r);
		}
		break;
	case KT_MULTI + 100:	/* 13-byte keys (IPv4 5-tuple), all rows at once, d = 8 */
		multi_13x8(r);
		break;
	case KT_MULTI + 101:	/* 64-byte keys, d = 4 */
		multi_64x4(r);
		break;
	case KT_FIND16:
		r->out[0] = algo_find16_u16((const __u16 *)r->key, r->arg);
		r->out[1] = algo_match16_u16((const __u16 *)r->key, r->arg);
		break;
	case KT_FIND32:
		r->out[0] = algo_find8_u32((const __u32 *)r->key, r->arg);
		r->out[1] = algo_match8_u32((const __u32 *)r->key, r->arg);
		break;
	case KT_MIN:
		r->out[0] = r->len == 8 ? algo_min_idx_u32((const __u32 *)r->key, 8)
					: algo_min_idx_u32((const __u32 *)r->key, 16);
		break;
	default:
		return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
