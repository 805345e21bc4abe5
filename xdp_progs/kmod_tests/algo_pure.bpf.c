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
		/* 16-byte keys, the flow-key size the NFs hash */
		for (i = 0; i < 16; i++)
			if (i < r->arg)
				r->out[i] = algo_xxh32(r->key, 16, ALGO_ROW_SEED(r->seed, i));
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
